"""The retraining DAG run end to end with `dag.test()` against the real local S3 server.

One simulated agent walks through the paths an operator sees: first deploy with
no champion, a challenger refused by the gate (champion kept), a later day
judged against the champion, and a corrupted day stopped at validation.
"""

import hashlib
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import yaml

from agent_retraining.contract import run_prefix
from agent_retraining.manifest import read_manifest
from agent_retraining.simulate import simulate
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import get_bytes, list_keys, read_json
from tests.conftest import load_dag_file, spec_variant

AGENT = "e2e-bot"
FIRST_DAY = date(2026, 1, 1)
CORRUPT_DAY = date(2026, 1, 10)


@pytest.fixture(scope="module")
def build_dag():
    return load_dag_file("retrain_agents.py").build_retraining_dag


@pytest.fixture(scope="module")
def specs_dir(tmp_path_factory):
    """The DAG processor of `dag.test()` parses the DAG folder, so the test agent needs a spec file."""
    directory = tmp_path_factory.mktemp("agents")
    os.environ["AGENT_SPECS_DIR"] = str(directory)
    yield directory
    del os.environ["AGENT_SPECS_DIR"]


@pytest.fixture(scope="module")
def agent(support_bot, buckets, airflow_db, specs_dir):
    from agent_retraining.storage import s3_client_from_env

    spec = spec_variant(support_bot, agent_id=AGENT, training={"window_days": 5, "holdout_days": 1, "seed": 7})
    s3 = s3_client_from_env()
    simulate(s3, buckets.logs, spec, FIRST_DAY, 10, events_per_day=600, seed=3, corrupt_days=frozenset({CORRUPT_DAY}))
    return spec


def run_day(build_dag, spec: AgentSpec, day: date, **conf):
    """Write the spec where the DAG folder reads it, and run its DAG for `day`'s data interval."""
    (Path(os.environ["AGENT_SPECS_DIR"]) / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump()))
    logical_date = datetime.combine(day + timedelta(days=1), time(), UTC)
    return build_dag(spec).test(logical_date=logical_date, run_conf=conf or None)


def report(s3, buckets, day):
    return read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "report.json")


def test_first_run_deploys_on_the_floors_alone(build_dag, agent, s3, buckets):
    day = date(2026, 1, 6)
    dag_run = run_day(build_dag, agent, day)

    assert dag_run.state == "success"
    decision = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    assert decision["deploy"]
    assert decision["champion"]["version"] is None
    assert "first deploy" in decision["reason"]
    assert set(decision["metrics"]) == set(agent.candidates)
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["trained_on"]["last"] == day.isoformat()
    artifact, _ = get_bytes(s3, buckets.models, manifest["artifact_key"])
    assert hashlib.sha256(artifact).hexdigest() == manifest["sha256"]
    assert report(s3, buckets, day)["outcome"] == "deployed"


def test_a_challenger_below_the_floors_keeps_the_champion(build_dag, agent, s3, buckets):
    day = date(2026, 1, 7)
    _, etag_before = read_manifest(s3, buckets, AGENT)
    strict = spec_variant(
        agent, gate={**agent.gate.model_dump(), "floors": {**agent.gate.floors.model_dump(), "min_roc_auc": 0.99}}
    )
    dag_run = run_day(build_dag, strict, day)

    assert dag_run.state == "success"  # keeping the champion is a successful run
    decision = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    failed = {r["rule"] for r in decision["rules"] if not r["passed"]}
    assert "floor_roc_auc" in failed
    assert not decision["deploy"]
    assert "champion" in decision["metrics"]  # the champion was scored on the same rows
    assert {r["rule"] for r in decision["rules"]} >= {"no_regression_roc_auc", "policy_value"}
    assert read_manifest(s3, buckets, AGENT)[1] == etag_before
    assert report(s3, buckets, day)["outcome"] == "kept champion"


def test_next_day_is_judged_against_the_champion(build_dag, agent, s3, buckets):
    day = date(2026, 1, 8)
    champion_version = read_manifest(s3, buckets, AGENT)[0]["version"]
    dag_run = run_day(build_dag, agent, day)

    assert dag_run.state == "success"
    decision = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    assert decision["champion"]["version"] == champion_version
    assert decision["winner"]["candidate"] in decision["reason"]
    manifest, _ = read_manifest(s3, buckets, AGENT)
    if decision["deploy"]:
        assert manifest["previous_version"] == champion_version
        assert manifest["history"][0]["version"] == champion_version
    else:
        assert manifest["version"] == champion_version


def test_a_corrupted_day_is_stopped_at_validation(build_dag, agent, s3, buckets):
    raw_before = {o["key"]: o["etag"] for o in list_keys(s3, buckets.logs, f"{AGENT}/")}
    _, etag_before = read_manifest(s3, buckets, AGENT)
    dag_run = run_day(build_dag, agent, CORRUPT_DAY)

    assert dag_run.state == "failed"
    validation = read_json(s3, buckets.artifacts, run_prefix(AGENT, CORRUPT_DAY) + "validation.json")
    assert not validation["passed"]
    failures = "\n".join(validation["failures"])
    assert "[propensity_range:propensity] field 'propensity' expect_column_values_to_be_between" in failures
    assert "[action_in_set:action] field 'action' expect_column_values_to_be_in_set" in failures
    assert f"{AGENT}/dt={CORRUPT_DAY}/part-0000" in failures  # names the object and line
    run_objects = [o["key"] for o in list_keys(s3, buckets.artifacts, run_prefix(AGENT, CORRUPT_DAY))]
    assert not any("/candidates/" in key for key in run_objects)  # nothing was trained
    assert report(s3, buckets, CORRUPT_DAY)["outcome"] == "data rejected"
    assert read_manifest(s3, buckets, AGENT)[1] == etag_before
    assert {o["key"]: o["etag"] for o in list_keys(s3, buckets.logs, f"{AGENT}/")} == raw_before


def test_rerunning_a_day_reproduces_its_candidates_and_mints_no_new_version(build_dag, agent, s3, buckets):
    day = date(2026, 1, 8)
    before = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    models_before = {o["key"]: o["etag"] for o in list_keys(s3, buckets.models, f"{AGENT}/")}

    assert run_day(build_dag, agent, day).state == "success"

    after = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    candidates = set(agent.candidates)
    assert {k: v for k, v in after["metrics"].items() if k in candidates} == {
        k: v for k, v in before["metrics"].items() if k in candidates
    }
    assert after["winner"] == before["winner"]
    assert {o["key"] for o in list_keys(s3, buckets.models, f"{AGENT}/models/")} == {
        k for k in models_before if "/models/" in k
    }


def test_a_dry_run_evaluates_and_reports_but_never_deploys(build_dag, agent, s3, buckets):
    day = date(2026, 1, 9)
    _, etag = read_manifest(s3, buckets, AGENT)
    dag_run = run_day(build_dag, agent, day, dry_run=True)
    assert dag_run.state == "success"
    decision = read_json(s3, buckets.artifacts, run_prefix(AGENT, day) + "decision.json")
    assert not decision["deploy"]
    assert decision["reason"].startswith("dry run, manifest left alone")
    assert read_manifest(s3, buckets, AGENT)[1] == etag


def test_a_day_whose_logs_never_completed_fails_with_a_clear_message(build_dag, agent, s3, buckets):
    day = date(2026, 1, 20)  # nothing was ever written for it, and its waiting time is long over
    dag_run = run_day(build_dag, agent, day)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["wait_for_logs"] == "failed"
    assert states["snapshot"] == "upstream_failed"
