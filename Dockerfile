# Airflow image of the production stack (docker-compose.yaml).
#
# Only the Python dependencies are baked in: dags/, include/ and plugins/ are
# mounted by the compose file, so a change to the code needs no rebuild, only a
# change to requirements.txt does (`docker compose up -d --build`).
FROM apache/airflow:3.3.2-python3.11

# include/ holds the domain package (agent_retraining) and the Airflow glue
# (retraining_runtime), imported by the DAG file and by the tasks; plugins/ holds
# Airflow plugins.
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    GX_ANALYTICS_ENABLED=False

# Installed as the image's `airflow` user, as the official image expects.
# requirements.txt pins apache-airflow==3.3.2, the version of the base image, so
# pip cannot move Airflow itself. torch comes from the default index (PyPI).
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
