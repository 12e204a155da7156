"""What the retraining tasks need from Airflow: the S3 client from the connection.

Kept out of `include/` so the domain package stays importable without Airflow
(the agent-side client uses it). Endpoint and credentials live in the Airflow
connection `agent_s3` (`AIRFLOW_CONN_AGENT_S3`, `endpoint_url` in its extra);
bucket names come from the environment.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

S3_CONN_ID = "agent_s3"


def s3_client():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=S3_CONN_ID).get_conn()


def run_day(data_interval_start: datetime) -> date:
    """The day of logs a run owns: the UTC date its data interval starts on."""
    return data_interval_start.astimezone(UTC).date()
