"""What runs inside the agent: the manifest read, the model verified and scored. Imports no Airflow, no Great
Expectations and no dev tool (tests/include/test_package_layers.py checks it).

Explained in docs/serving.md.
"""
