"""The `report` and `notify` tasks and the Agent models page: what people read about the runs.

Explained in docs/views.md.
"""
