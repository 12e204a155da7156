"""Every DAG file imports cleanly, cheaply, and carries what operators rely on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import STAGES_TO_THE_DECISION

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["pandas", "sklearn", "torch", "lightgbm", "great_expectations"]


@pytest.fixture(scope="module")
def dag_bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors_and_one_dag_per_spec(dag_bag, support_bot):
    assert dag_bag.import_errors == {}
    assert support_bot.dag_id in dag_bag.dag_ids


def test_every_dag_has_tags_retries_and_docs(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.doc_md.strip().startswith("##"), dag_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id
        assert dag.catchup is False, dag_id


def test_the_retraining_dag_has_every_stage(dag_bag, support_bot):
    dag = dag_bag.get_dag(support_bot.dag_id)
    stages = {*STAGES_TO_THE_DECISION, "choose", "deploy", "skip_deploy", "report"}
    assert stages <= set(dag.task_ids)
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.start_date.year == 1970  # a backfill of any past day with logs has tasks to run
    assert dag.timetable.expression == support_bot.schedule
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"  # a run owns a whole day of data


def test_the_canary_dag_judges_then_promotes_aborts_or_waits(dag_bag, support_bot):
    dag = dag_bag.get_dag(f"canary_{support_bot.agent_id}")
    assert {"wait_for_logs", "judge", "act", "promote", "abort", "keep_waiting"} == set(dag.task_ids)
    assert dag.get_task("act").downstream_task_ids == {"promote", "abort", "keep_waiting"}
    assert {"promote_now", "abort_now", "reason"} <= set(dag.params)
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"  # after each day's logs land
    assert dag.get_task("promote").outlets == dag.get_task("abort").outlets  # both move the manifest asset


def _import_in_fresh_interpreter(dag_file: str) -> subprocess.CompletedProcess:
    """Run a DAG file the way the DAG processor does, in a clean interpreter; prints JSON facts."""
    code = f"""
import json, sys, time, warnings
import airflow.sdk  # Airflow's own import cost is paid by the DAG processor once, not per file
before = set(sys.modules)
start = time.perf_counter()
import runpy
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    runpy.run_path({str(REPO / "dags" / dag_file)!r})
print(json.dumps({{"seconds": time.perf_counter() - start,
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules],
                  "providers": sorted(m for m in set(sys.modules) - before if m.startswith("airflow.providers")),
                  "warnings": [f"{{w.category.__name__}}: {{w.message}}" for w in caught]}}))
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO / "dags").glob("*.py")))
def test_importing_a_dag_file_loads_no_heavy_library(dag_file):
    result = _import_in_fresh_interpreter(dag_file)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.splitlines()[-1])
    assert facts["heavy"] == []
    assert facts["warnings"] == []  # e.g. the standard provider's sensor module warns of a deprecated import
    assert not [m for m in facts["providers"] if ".sensors." in m], facts["providers"]
    print(f"dags/{dag_file} parsed in {facts['seconds']:.3f}s after airflow.sdk was imported")


def test_one_broken_spec_among_three_hides_only_that_agent(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import write_specs_with_one_broken

    broken = write_specs_with_one_broken(tmp_path)
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))

    bag = DagBag(dag_folder=str(REPO / "dags" / "retrain_agents.py"))
    assert bag.import_errors == {}
    assert {"retrain_alpha-bot", "retrain_beta-bot"} <= set(bag.dag_ids)
    assert "train" in bag.get_dag("retrain_beta-bot").task_ids
    placeholder = bag.get_dag("retrain_gamma-bot")
    error = f"{broken}: field 'gate.floors.min_roc_auc'"
    assert error in placeholder.description  # what the UI's DAG list shows
    assert error in placeholder.doc_md
    assert "broken-spec" in placeholder.tags
    assert placeholder.task_ids == ["spec_error"]


def test_a_spec_that_parses_but_cannot_be_built_hides_only_that_agent(tmp_path, monkeypatch):
    """Whatever goes wrong while one agent's DAG is built (here: its sensor refuses to be made) turns into that
    agent's placeholder, never an import error that takes every agent's DAG away."""
    from airflow.dag_processing.dagbag import DagBag

    import retraining_runtime
    from tests.conftest import write_specs_with_one_broken

    write_specs_with_one_broken(tmp_path)
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))
    real_sensor = retraining_runtime.DayLogsSensor

    def sensor(*args, spec, **kwargs):
        if spec.agent_id == "beta-bot":
            raise OverflowError("date value out of range")
        return real_sensor(*args, spec=spec, **kwargs)

    monkeypatch.setattr(retraining_runtime, "DayLogsSensor", sensor)
    bag = DagBag(dag_folder=str(REPO / "dags" / "retrain_agents.py"))
    assert bag.import_errors == {}
    assert "train" in bag.get_dag("retrain_alpha-bot").task_ids
    placeholder = bag.get_dag("retrain_beta-bot")
    assert placeholder.task_ids == ["spec_error"]
    assert "date value out of range" in placeholder.description


def test_the_retry_policy_retries_what_is_transient_and_fails_the_rest_at_once(dag_bag, support_bot):
    from airflow.sdk import RetryAction
    from botocore.exceptions import ClientError

    from agent_retraining.storage import ObjectMissing, S3Refused, S3Unavailable

    policy = dag_bag.get_dag(support_bot.dag_id).get_task("validate_day").retry_policy
    unavailable = S3Unavailable("GetObject", "logs", "a/b", 503, "SlowDown", "slow down")
    assert policy.evaluate(unavailable, 1, 4).action == RetryAction.RETRY
    for permanent in (
        S3Refused("GetObject", "logs", "a/b", 403, "AccessDenied", "no"),
        ObjectMissing("GetObject", "models", "a/model.txt", 404, "NoSuchKey", "gone"),
        S3Refused("PutObject", "models", "a/manifest.json", 412, "PreconditionFailed", "changed"),
        ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject"),  # one that escaped storage.py
        ValueError("a bug"),
    ):
        assert policy.evaluate(permanent, 1, 4).action == RetryAction.FAIL, permanent
    for task_id in ("wait_for_logs", "validate", "evaluate", "deploy"):
        assert dag_bag.get_dag(support_bot.dag_id).get_task(task_id).retries >= 1, task_id


def test_a_spec_that_asks_for_approval_puts_an_operator_between_the_decision_and_the_deploy(support_bot):
    from tests.conftest import load_dag_file, spec_variant

    dag = load_dag_file("retrain_agents.py").build_retraining_dag(
        spec_variant(support_bot, approval={"required": True, "timeout_hours": 2})
    )
    approval = dag.get_task("approve_deploy")
    assert type(approval).__name__ == "ApprovalOperator"
    assert approval.defaults == ["Reject"]  # a timeout keeps the champion
    assert approval.response_timeout.total_seconds() == 7200
    assert dag.get_task("choose").downstream_task_ids == {"approve_deploy", "skip_deploy"}
    assert dag.get_task("deploy").upstream_task_ids == {"approve_deploy"}
    # On Reject the operator skips all its direct downstream tasks: that must not include `report` or the watcher.
    assert approval.downstream_task_ids == {"deploy"}


def test_both_dags_of_an_agent_carry_the_access_its_spec_grants(support_bot):
    from tests.conftest import load_dag_file, spec_variant

    spec = spec_variant(support_bot, access={"support-team": "read"})
    retraining = load_dag_file("retrain_agents.py").build_retraining_dag(spec)
    canary = load_dag_file("canary_release.py").build_canary_dag(spec)
    granted = {"support-team": {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}}}
    assert retraining.access_control == canary.access_control == granted
