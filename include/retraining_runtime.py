"""What the retraining tasks need from Airflow: the S3 client from the connection, the run's inputs, retries.

Kept out of the `agent_retraining` package so that package stays importable
without Airflow (the agent-side client uses it). Endpoint and credentials live in the Airflow
connection `agent_s3` (`AIRFLOW_CONN_AGENT_S3`, `endpoint_url` in its extra);
bucket names come from the environment.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Asset, AssetAlias, BaseSensorOperator, ExceptionRetryPolicy, RetryAction, RetryRule

if TYPE_CHECKING:  # types only: the DAG files import this module when they are parsed
    from agent_retraining.spec import AgentSpec
    from agent_retraining.storage import Buckets
    from agent_retraining.window import Window

S3_CONN_ID = "agent_s3"
# Every task's retries: S3 throttling, 5xx and the network (include/agent_retraining/storage.py raises
# S3Unavailable for exactly those) with backoff; anything else fails at once, because a 403, an unexpected
# 404 or 412, a data-gate refusal or a bad parameter will not get better by retrying.
S3_RETRIES = {
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "retry_policy": ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception="agent_retraining.storage.S3Unavailable",
                action=RetryAction.RETRY,
                reason="S3 unavailable (throttling, 5xx or the network); retrying with backoff",
            )
        ],
        default=RetryAction.FAIL,
    ),
}


# Every DAG's start date: any day that has logs can be run, however old (backfills of last year's logs); catchup
# stays off.
ANY_DAY = pendulum.datetime(1970, 1, 1, tz="UTC")


def manifest_asset(agent_id: str) -> Asset:
    """What every task that moves an agent's manifest emits (deploy, canary promotion or abort, rollback)."""
    return Asset(name=f"{agent_id}_model_manifest")


# What the rollback DAG's task emits through: the agent whose manifest it moves is known only when it runs.
MANIFEST_MOVED = AssetAlias(name="agent_model_manifest_moved")


def manifest_event(agent_id: str, outcome: str, result: dict, run_id: str) -> dict:
    """The `extra` of the manifest Asset's event: what a DAG scheduled on an agent's manifest needs to act on a
    move without reading the manifest itself. `outcome` is deployed, canary_started, canary_promoted,
    canary_aborted or rolled_back, or `unchanged` when the task found nothing to move (a canary that is live
    already); `version` is the live model after the move, `canary_version` the canary a canary event is about."""
    moved = result.get("deployed") or result.get("aborted")
    canary_event = outcome in ("canary_started", "canary_aborted")
    return {
        "agent_id": agent_id,
        "outcome": outcome if moved else "unchanged",
        "version": result.get("live_version") if canary_event else result.get("version"),
        "canary_version": result.get("version") if canary_event else None,
        "previous_version": result.get("previous_version"),
        "run_id": run_id,
    }


@contextmanager
def final(*errors: type[Exception], prefix: str = ""):
    """These errors fail the task at once: the same inputs would fail the same way, so a retry cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as exc:
        raise AirflowFailException(f"{prefix}{exc}") from exc


def s3_client():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=S3_CONN_ID).get_conn()


def run_day(data_interval_start: datetime) -> date:
    """The day of logs a run owns: the UTC date its data interval starts on."""
    return data_interval_start.astimezone(UTC).date()


@dataclass(frozen=True)
class RunInputs:
    spec: AgentSpec  # the agent spec with this run's form overrides applied
    window: Window
    s3: Any  # a boto3 S3 client from the `agent_s3` connection
    buckets: Buckets
    run_dir: str  # this run's own folder in the artifacts bucket


def current_run(spec: AgentSpec) -> RunInputs:
    """Everything a task of one run works from, read from the task's Airflow context the same way in every task."""
    from airflow.sdk import get_current_context

    from agent_retraining.contract import run_prefix
    from agent_retraining.spec import with_run_params
    from agent_retraining.storage import buckets_from_env
    from agent_retraining.window import Window

    context = get_current_context()
    run_spec = with_run_params(spec, context["params"])
    day = run_day(context["data_interval_start"])
    run_dir = run_prefix(spec.agent_id, day, context["run_id"])
    return RunInputs(run_spec, Window.ending(day, run_spec), s3_client(), buckets_from_env(), run_dir)


class DayLogsSensor(BaseSensorOperator):
    """Waits, without holding a worker slot between pokes, for the `_SUCCESS` marker of the run's day; fails
    with a clear message once `wait_for_logs_hours` have passed since the day ended. A run whose trigger form
    sets one of `operator_params` does not wait at all.

    A sensor class rather than `@task.sensor`: the decorator imports the standard provider's PythonSensor
    module when the DAG file is parsed (which also warns of a deprecated import), a cost every scheduler
    parse of every agent's DAG would pay.
    """

    def __init__(self, *, spec, operator_params: tuple[str, ...] = (), **kwargs):
        super().__init__(
            mode="reschedule",
            poke_interval=300,
            timeout=(spec.wait_for_logs_hours + 1) * 3600,  # backstop; the sensor fails itself at the deadline
            **kwargs,
        )
        self.spec = spec
        self.operator_params = operator_params

    def poke(self, context) -> bool:
        from agent_retraining.contract import success_key
        from agent_retraining.storage import buckets_from_env, exists

        if any(context["params"].get(name) for name in self.operator_params):
            return True  # an operator acts now (abort a canary during an outage): the day's logs are not needed
        from agent_retraining.window import Window

        day, logs_bucket = run_day(context["data_interval_start"]), buckets_from_env().logs
        day = Window.ending(day, self.spec).last  # the newest decisions the run judges
        marker = success_key(self.spec.agent_id, day)
        if exists(s3_client(), logs_bucket, marker):
            return True
        if datetime.now(UTC) > context["data_interval_end"] + timedelta(hours=self.spec.wait_for_logs_hours):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"s3://{logs_bucket}/{marker} is still missing {self.spec.wait_for_logs_hours}h after "
                f"{day} ended: the agent's logs for that day are not complete"
            )
        return False


def worker_hostname() -> str:
    """The host name Airflow records for a task (`[core] hostname_callable`).

    WORKER_NAME when set, so that several Celery workers on one host can be told
    apart in the UI; otherwise the fully qualified domain name, Airflow's default.
    """
    import os
    import socket

    return os.environ.get("WORKER_NAME") or socket.getfqdn()
