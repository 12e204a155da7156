"""Human approval of a deploy, at runtime, on a real scheduler.

With `approval.required` in the spec, a run whose gate said deploy parks in
`approve_deploy` (Airflow's `ApprovalOperator`, state `awaiting_input`) until an
operator answers in the UI, which calls the api-server's public REST API; this
module answers through that same API, as the `operator` user. Five runs of one
DAG go through it at once: one approved, one rejected, the nightly run, which
nobody answers, so the default (Reject) applies when its short timeout passes, a
dry run of the approved run's day (its own records, never asks, never deploys),
and one approved only after the operator rolled the agent back while it waited
(its decision no longer holds, so it must not ship).

The gate is made permissive so that every run's decision is "deploy": here only
the operator (or the lack of an answer) may keep the champion. The gate itself
is tested in test_champion_challenger.py.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import simulate
from agent_retraining.manifest import history, read_manifest
from agent_retraining.models.artifacts import model_version
from agent_retraining.release.deploy import deploy, rollback
from agent_retraining.storage import read_json_or_none
from tests.conftest import spec_variant
from tests.e2e.airflow_cluster import OPERATOR, drop_cluster, start_cluster
from tests.include.test_manifest import _decision

AGENT = "hitl-bot"
DAG_ID = f"retrain_{AGENT}"
TODAY = datetime.now(UTC).date()
NIGHTLY_DAY = TODAY - timedelta(days=1)  # the scheduler's own run; nobody answers it
APPROVED = ("operator-approves", TODAY - timedelta(days=3))  # (run id, day of logs)
REJECTED = ("operator-rejects", TODAY - timedelta(days=2))
DRY_RUN = ("dry-run-same-day", APPROVED[1])  # a manual dry run of the approved run's day, at the same time
ROLLED_BACK = ("rollback-while-waiting", REJECTED[1])  # its deploy waits for approval while the operator rolls back
ROLLBACK_RUN_ID = "operator-rollback"
MANUAL_RUNS = [(*APPROVED, 0, {}), (*REJECTED, 0, {}), (*DRY_RUN, 1, {"dry_run": True}), (*ROLLED_BACK, 2, {})]
TIMEOUT_HOURS = 0.01  # 36 s
PERMISSIVE_GATE = {
    "primary_metric": "roc_auc",
    "floors": {"min_roc_auc": 0.0, "max_log_loss": 100.0, "max_brier": 1.0, "max_calibration_error": 1.0},
    "max_regression": {"roc_auc": 1.0, "log_loss": 100.0, "brier": 1.0, "calibration_error": 1.0},
    "policy_value_margin": 1.0,
    "policy_value": {"min_difference": -1.0},
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
    # A model of an older feature encoding is live: every run is judged against its manifest (ETag), without it.
    deploy(s3, buckets, AGENT, _decision(s3, buckets, AGENT, "lightgbm", "2026-01-01", encoding="old"), "install-v0")
    # The scheduler resolves timed-out approvals every few seconds instead of every 15.
    cluster = start_cluster(tmp_path_factory.mktemp("approval-home"), spec,
                            AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL="2")  # fmt: skip
    try:
        cluster.wait_for(DAG_ID, lambda runs: runs, "the scheduler's nightly run (the DAG is parsed)")
        for run_id, day, hour, conf in MANUAL_RUNS:
            # As the UI's trigger form does; `airflow dags trigger` would give every manual run the latest day.
            # Two runs of one day need two logical dates (it is unique per DAG); the interval is what they share.
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            logical = start + timedelta(hours=hour)
            cluster.api("POST", f"dags/{DAG_ID}/dagRuns", {
                "dag_run_id": run_id, "logical_date": logical.isoformat(), "data_interval_start": start.isoformat(),
                "data_interval_end": (start + timedelta(days=1)).isoformat(), "conf": conf,
            })  # fmt: skip
        yield cluster
    finally:
        drop_cluster(cluster)


def _task_state(airflow, run_id: str, task_id: str) -> str | None:
    return airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]


def _approval(airflow, run_id: str) -> dict:
    return airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy/-1/hitlDetails")


@pytest.fixture(scope="module")
def operator(airflow, s3, buckets):
    """Answers each manual run's request some seconds after it is asked, as a person would, within the timeout.

    Not at once: an answer given while the worker is still parking the task races
    Airflow 3.3.2, which then takes the parked try's exit for a task killed
    externally, retries it and loses the answer (seen here, even after 5 s on a
    loaded machine). So, like a person who sees the request again in the UI, the
    operator answers each try that asks, until the approval task has finished.

    One request is answered only after the approved run has deployed and the
    operator has rolled the agent back meanwhile: its approval must not ship.
    """
    pending = {APPROVED[0]: "Approve", REJECTED[0]: "Reject", ROLLED_BACK[0]: "Approve"}
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
            if run_id == ROLLED_BACK[0]:  # it waits (judged already); answer once the rollback happened meanwhile
                if APPROVED[0] in pending or _task_state(airflow, APPROVED[0], "deploy") != "success":
                    continue
                rollback(s3, buckets, AGENT, "previous", "answers went wrong after the deploy", ROLLBACK_RUN_ID)
            asked = asked_at.setdefault((run_id, task["try_number"]), time.monotonic())
            if time.monotonic() - asked >= 5 and not _approval(airflow, run_id)["response_received"]:
                path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy/-1/hitlDetails"
                airflow.api("PATCH", path, {"chosen_options": [option], "params_input": {}})
        return not pending

    airflow.wait_until(answer_what_is_asked, "every manual run's request to be answered", every=1)


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


def _records(s3, buckets, run_id: str, day) -> dict:
    prefix = run_prefix(AGENT, day, run_id)
    return {name: read_json_or_none(s3, buckets.artifacts, prefix + f"{name}.json") for name in
            ("decision", "deployment", "report")}  # fmt: skip


def test_an_approved_deploy_moves_the_manifest(airflow, operator, s3, buckets):
    """Approve: `deploy` runs after the answer and the manifest names this run's model."""
    run_id, day = APPROVED
    approval = _finished_and_answered(airflow, run_id, "Approve")
    assert approval["responded_by_user"]["name"] == OPERATOR
    records = _records(s3, buckets, run_id, day)
    assert approval["body"] == records["decision"]["reason"]  # the operator decides on the gate's own reasoning
    assert _task_state(airflow, run_id, "deploy") == "success"
    assert records["deployment"]["deployed"]
    assert records["report"]["outcome"] == "deployed"
    assert records["deployment"]["version"] == model_version(records["decision"]["winner"])  # exactly its winner
    deployed = next(e for e in history(read_manifest(s3, buckets, AGENT)[0]) if e["run_id"] == run_id)
    assert (deployed["version"], deployed["trained_on"]["last"]) == (records["deployment"]["version"], day.isoformat())
    assert deployed["previous_version"] == records["decision"]["judged_against"]["version"]


def test_a_rollback_while_a_deploy_waits_for_approval_stops_that_deploy(airflow, operator, s3, buckets):
    """Approved after the operator rolled back: the decision was judged against another manifest, so nothing ships."""
    run_id, day = ROLLED_BACK
    assert _finished(airflow, run_id)["state"] == "failed"
    assert _approval(airflow, run_id)["chosen_options"] == ["Approve"]
    assert _task_state(airflow, run_id, "deploy") == "failed"
    records = _records(s3, buckets, run_id, day)
    assert records["decision"]["deploy"]
    live, _ = read_manifest(s3, buckets, AGENT)
    assert (live["run_id"], live["deployed_by"]) == (ROLLBACK_RUN_ID, "rollback")  # the rollback stands
    refused = records["deployment"]["refused"]
    assert refused.startswith(f"live model changed from {records['decision']['judged_against']['version']} to ")
    assert f"to {live['version']} (set by rollback run {ROLLBACK_RUN_ID})" in refused
    assert refused.endswith("re-run to judge against it")
    assert records["report"]["outcome"] == "deploy refused"


def test_a_dry_run_of_the_same_day_keeps_its_own_records_and_never_deploys(airflow, operator, s3, buckets):
    run_id, day = DRY_RUN
    assert _finished(airflow, run_id)["state"] == "success"
    records = _records(s3, buckets, run_id, day)
    assert records["decision"]["reason"].startswith("dry run, manifest left alone")
    assert not records["decision"]["deploy"]
    assert _task_state(airflow, run_id, "approve_deploy") == "skipped"  # never even asked
    assert records["deployment"] is None
    approved = _records(s3, buckets, APPROVED[0], day)
    assert approved["decision"]["deploy"]  # the approved run's own decision, not overwritten by the dry run's
    assert run_id not in {entry["run_id"] for entry in history(read_manifest(s3, buckets, AGENT)[0])}


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
    """The gate said deploy, yet the run deployed nothing: no model in the manifest's history came from it."""
    records = _records(s3, buckets, run_id, day)
    assert records["decision"]["deploy"]  # the gate would have deployed: the answer is what kept the champion
    assert _task_state(airflow, run_id, "deploy") == "skipped"
    assert records["deployment"] is None
    assert records["report"]["outcome"] == "kept champion: the deploy was not approved or did not run"
    assert run_id not in {entry["run_id"] for entry in history(read_manifest(s3, buckets, AGENT)[0])}
