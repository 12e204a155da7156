"""Human approval of a deploy, at runtime, on a real scheduler.

With `approval.required` in the spec, a run whose gate said deploy parks in
`approve_deploy` (Airflow's `ApprovalOperator`, state `awaiting_input`) until an
operator answers in the UI, which calls the api-server's public REST API; this
module answers through that same API, as the `operator` user. Three runs of one
DAG go through it at once: one approved, one rejected, and the nightly run, which
nobody answers, so the default (Reject) applies when its short timeout passes.

The gate is made permissive so that every run's decision is "deploy": here only
the operator (or the lack of an answer) may keep the champion. The gate itself
is tested in test_champion_challenger.py.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from agent_retraining.contract import run_prefix
from agent_retraining.manifest import read_manifest
from agent_retraining.simulate import simulate
from agent_retraining.storage import read_json_or_none
from tests.conftest import spec_variant
from tests.e2e.airflow_cluster import OPERATOR, drop_cluster, start_cluster

AGENT = "hitl-bot"
DAG_ID = f"retrain_{AGENT}"
TODAY = datetime.now(UTC).date()
NIGHTLY_DAY = TODAY - timedelta(days=1)  # the scheduler's own run; nobody answers it
APPROVED = ("operator-approves", TODAY - timedelta(days=3))  # (run id, day of logs)
REJECTED = ("operator-rejects", TODAY - timedelta(days=2))
TIMEOUT_HOURS = 0.01  # 36 s
PERMISSIVE_GATE = {
    "primary_metric": "roc_auc",
    "floors": {"min_roc_auc": 0.0, "max_log_loss": 100.0, "max_brier": 1.0, "max_calibration_error": 1.0},
    "max_regression": {"roc_auc": 1.0, "log_loss": 100.0, "brier": 1.0, "calibration_error": 1.0},
    "policy_value_margin": 1.0,
    "slices": {"max_auc_drop": 1.0},
}


@pytest.fixture(scope="module")
def airflow(support_bot, s3, buckets, tmp_path_factory):
    """A running Airflow (LocalExecutor) with the hitl-bot's DAG: the nightly run and two manual runs started."""
    spec = spec_variant(
        support_bot, agent_id=AGENT, candidates=["logistic_regression"], gate=PERMISSIVE_GATE,
        training={"window_days": 2, "holdout_days": 1, "seed": 3},
        approval={"required": True, "timeout_hours": TIMEOUT_HOURS},
    )  # fmt: skip
    simulate(s3, buckets.logs, spec, TODAY - timedelta(days=4), 4, events_per_day=600, seed=5)
    # The scheduler resolves timed-out approvals every few seconds instead of every 15.
    cluster = start_cluster(tmp_path_factory.mktemp("approval-home"), spec,
                            AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL="2")  # fmt: skip
    try:
        cluster.wait_for(DAG_ID, lambda runs: runs, "the scheduler's nightly run (the DAG is parsed)")
        for run_id, day in (APPROVED, REJECTED):
            # As the UI's trigger form does; `airflow dags trigger` would give every manual run the latest day.
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            cluster.api("POST", f"dags/{DAG_ID}/dagRuns", {
                "dag_run_id": run_id, "logical_date": start.isoformat(), "data_interval_start": start.isoformat(),
                "data_interval_end": (start + timedelta(days=1)).isoformat(),
            })  # fmt: skip
        yield cluster
    finally:
        drop_cluster(cluster)


def _task_state(airflow, run_id: str, task_id: str) -> str | None:
    return airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]


def _approval(airflow, run_id: str) -> dict:
    return airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy/-1/hitlDetails")


@pytest.fixture(scope="module")
def operator(airflow):
    """Answers each manual run's request some seconds after it is asked, as a person would, within the timeout.

    Not at once: an answer given while the worker is still parking the task races
    Airflow 3.3.2, which then takes the parked try's exit for a task killed
    externally, retries it and loses the answer (seen here, even after 5 s on a
    loaded machine). So, like a person who sees the request again in the UI, the
    operator answers each try that asks, until the approval task has finished.
    """
    pending = {APPROVED[0]: "Approve", REJECTED[0]: "Reject"}
    asked_at = {}  # (run id, try number) -> when it was first seen waiting

    def answer_what_is_asked() -> bool:
        for run_id, option in list(pending.items()):
            task = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy")
            assert task["state"] not in ("upstream_failed", "failed"), f"{run_id} never asked: {task['state']}"
            if task["state"] in ("success", "skipped"):
                del pending[run_id]
                continue
            if task["state"] != "awaiting_input":
                continue
            asked = asked_at.setdefault((run_id, task["try_number"]), time.monotonic())
            if time.monotonic() - asked >= 5 and not _approval(airflow, run_id)["response_received"]:
                path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy/-1/hitlDetails"
                airflow.api("PATCH", path, {"chosen_options": [option], "params_input": {}})
        return not pending

    airflow.wait_until(answer_what_is_asked, "both manual runs to be answered", every=1)


def _finished(airflow, run_id: str) -> dict:
    def done():
        run = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    return airflow.wait_until(done, f"run {run_id} to finish", every=2)


def _nightly_run_id(airflow) -> str:
    runs = airflow.api("GET", f"dags/{DAG_ID}/dagRuns?run_type=scheduled")["dag_runs"]
    assert [run["data_interval_start"][:10] for run in runs] == [NIGHTLY_DAY.isoformat()]
    return runs[0]["dag_run_id"]


def _finished_and_answered(airflow, run_id: str, option: str) -> dict:
    """The run succeeded and its approval request ended with `option`; returns the request's record."""
    assert _finished(airflow, run_id)["state"] == "success"
    approval = _approval(airflow, run_id)
    assert approval["chosen_options"] == [option]
    return approval


def _records(s3, buckets, day) -> dict:
    prefix = run_prefix(AGENT, day)
    return {name: read_json_or_none(s3, buckets.artifacts, prefix + f"{name}.json") for name in
            ("decision", "deployment", "report")}  # fmt: skip


def test_an_approved_deploy_moves_the_manifest(airflow, operator, s3, buckets):
    """Approve: `deploy` runs after the answer and the manifest names this run's model."""
    run_id, day = APPROVED
    approval = _finished_and_answered(airflow, run_id, "Approve")
    assert approval["responded_by_user"]["name"] == OPERATOR
    records = _records(s3, buckets, day)
    assert approval["body"] == records["decision"]["reason"]  # the operator decides on the gate's own reasoning
    assert _task_state(airflow, run_id, "deploy") == "success"
    assert records["deployment"]["deployed"]
    assert records["report"]["outcome"] == "deployed"
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert (manifest["run_id"], manifest["trained_on"]["last"]) == (run_id, day.isoformat())


def test_a_rejected_deploy_keeps_the_champion(airflow, operator, s3, buckets):
    """Reject: the gate said deploy, but `deploy` is skipped, the manifest stays and the report still runs."""
    run_id, day = REJECTED
    approval = _finished_and_answered(airflow, run_id, "Reject")
    assert approval["responded_by_user"]["name"] == OPERATOR
    _assert_champion_kept(airflow, s3, buckets, run_id, day)


def test_no_answer_in_time_keeps_the_champion(airflow, operator, s3, buckets):
    """No answer within `approval.timeout_hours`: the scheduler applies the default, Reject, and the champion stays."""
    run_id = _nightly_run_id(airflow)
    approval = _finished_and_answered(airflow, run_id, "Reject")
    assert approval["responded_by_user"] is None  # nobody answered: the default was applied
    waited = datetime.fromisoformat(approval["responded_at"]) - datetime.fromisoformat(approval["created_at"])
    assert waited >= timedelta(hours=TIMEOUT_HOURS)
    _assert_champion_kept(airflow, s3, buckets, run_id, NIGHTLY_DAY)


def _assert_champion_kept(airflow, s3, buckets, run_id: str, day) -> None:
    """The gate said deploy, yet the run deployed nothing and the champion is still the approved run's model."""
    _finished(airflow, APPROVED[0])
    records = _records(s3, buckets, day)
    assert records["decision"]["deploy"]  # the gate would have deployed: the answer is what kept the champion
    assert _task_state(airflow, run_id, "deploy") == "skipped"
    assert records["deployment"] is None
    assert records["report"]["outcome"] == "kept champion"
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["run_id"] == APPROVED[0]
