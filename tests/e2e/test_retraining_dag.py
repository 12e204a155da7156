"""The retraining DAG run end to end with `dag.test()` against the real local S3 server.

One simulated agent walks through the paths an operator sees: first deploy with
no champion, a challenger refused by the gate (champion kept), a later day
judged against the champion, and a corrupted day stopped at validation.
"""

import hashlib
import json
import os
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from markupsafe import escape

from agent_retraining.contract import latest_run_key, run_prefix
from agent_retraining.dev.simulate import simulate
from agent_retraining.manifest import read_manifest
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import delete, get_bytes, list_keys, put_bytes, read_json
from tests.conftest import REPO, load_dag_file, spec_variant
from tests.e2e.s3_faults import Fault, FaultyS3Proxy

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


def run_day(build_dag, spec: AgentSpec, day: date, hour: int = 0, retry_delay: timedelta | None = None, **conf):
    """Write the spec where the DAG folder reads it, and run its DAG for `day`'s data interval.

    A manual run covers the latest whole day before its logical date, so any `hour` of the next day runs the same
    interval. `retry_delay` shortens the wait between a task's tries, so a test can watch retries happen.
    """
    (Path(os.environ["AGENT_SPECS_DIR"]) / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump()))
    logical_date = datetime.combine(day + timedelta(days=1), time(hour), UTC)
    dag = build_dag(spec)
    for task in dag.tasks if retry_delay else []:
        task.retry_delay = retry_delay
    return dag.test(logical_date=logical_date, run_conf=conf or None)


def states(dag_run) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def record(s3, buckets, day, dag_run, name):
    """One record (`decision.json`, `report.json`, ...) from the run's own folder."""
    return read_json(s3, buckets.artifacts, run_prefix(AGENT, day, dag_run.run_id) + name)


def test_first_run_deploys_on_the_floors_alone(build_dag, agent, s3, buckets):
    day = date(2026, 1, 6)
    dag_run = run_day(build_dag, agent, day)

    assert dag_run.state == "success"
    decision = record(s3, buckets, day, dag_run, "decision.json")
    assert decision["deploy"]
    assert decision["champion"]["version"] is None
    assert "first deploy" in decision["reason"]
    assert set(decision["metrics"]) == set(agent.candidates)
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["trained_on"]["last"] == day.isoformat()
    artifact, _ = get_bytes(s3, buckets.models, manifest["artifact_key"])
    assert hashlib.sha256(artifact).hexdigest() == manifest["sha256"]
    assert record(s3, buckets, day, dag_run, "report.json")["outcome"] == "deployed"


def test_a_challenger_below_the_floors_keeps_the_champion(build_dag, agent, s3, buckets):
    day = date(2026, 1, 7)
    _, etag_before = read_manifest(s3, buckets, AGENT)
    strict = spec_variant(
        agent, gate={**agent.gate.model_dump(), "floors": {**agent.gate.floors.model_dump(), "min_roc_auc": 0.99}}
    )
    dag_run = run_day(build_dag, strict, day)

    assert dag_run.state == "success"  # keeping the champion is a successful run
    decision = record(s3, buckets, day, dag_run, "decision.json")
    failed = {r["rule"] for r in decision["rules"] if not r["passed"]}
    assert "floor_roc_auc" in failed
    assert not decision["deploy"]
    assert "champion" in decision["metrics"]  # the champion was scored on the same rows
    assert "policy_value" in {r["rule"] for r in decision["rules"]}
    # a floor of 0.99 is beyond the champion too: it is named, and no candidate that fails the floor replaces it
    assert decision["champion"]["fails_floors"]
    assert "itself fails today's floors (floor_roc_auc" in decision["reason"]
    assert read_manifest(s3, buckets, AGENT)[1] == etag_before
    assert record(s3, buckets, day, dag_run, "report.json")["outcome"] == "kept champion"


def test_next_day_is_judged_against_the_champion(build_dag, agent, s3, buckets):
    day = date(2026, 1, 8)
    champion_version = read_manifest(s3, buckets, AGENT)[0]["version"]
    dag_run = run_day(build_dag, agent, day)

    assert dag_run.state == "success"
    decision = record(s3, buckets, day, dag_run, "decision.json")
    assert decision["champion"]["version"] == champion_version
    assert decision["winner"]["candidate"] in decision["reason"]
    report = record(s3, buckets, day, dag_run, "report.json")
    assert report["verdict"].endswith(decision["reason"])
    page = get_bytes(s3, buckets.artifacts, report["report_html_key"])[0].decode()
    assert escape(report["verdict"]) in page[: page.index("<h2>")]  # the verdict first
    assert page.count("<svg") == 5  # trend, policy values, calibration, slices, drift: drawn on the server
    assert all(f"<th>{name}</th>" in page for name in [*agent.candidates, "champion"])  # every model's column
    assert all(f"<td>{name}</td>" in page for name in decision["metrics"]["champion"]["slices"])  # every slice
    assert all(f"<td>{rule['rule']}</td>" in page for rule in decision["rules"])
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
    validation = record(s3, buckets, CORRUPT_DAY, dag_run, "validation.json")
    assert not validation["passed"]
    failures = "\n".join(validation["failures"])
    assert "[propensity_range:propensity] field 'propensity' expect_column_values_to_be_between" in failures
    assert "[action_in_set:action] field 'action' expect_column_values_to_be_in_set" in failures
    assert f"{AGENT}/dt={CORRUPT_DAY}/part-0000" in failures  # names the object and line
    run_objects = [o["key"] for o in list_keys(s3, buckets.artifacts, run_prefix(AGENT, CORRUPT_DAY, dag_run.run_id))]
    assert not any("/candidates/" in key for key in run_objects)  # nothing was trained
    assert record(s3, buckets, CORRUPT_DAY, dag_run, "report.json")["outcome"] == "data rejected"
    assert read_manifest(s3, buckets, AGENT)[1] == etag_before
    assert {o["key"]: o["etag"] for o in list_keys(s3, buckets.logs, f"{AGENT}/")} == raw_before


def test_the_night_after_a_corrupted_day_reads_only_its_own_day_and_trains_without_it(
    build_dag, agent, s3, buckets, monkeypatch
):
    """Every day of the window was validated by an earlier night (the corrupted one refused by its own): the next
    night reads only its new day's logs, leaves the corrupted day out, trains on the rest and says so."""
    night = CORRUPT_DAY + timedelta(days=1)
    simulate(s3, buckets.logs, agent, night, 1, events_per_day=600, seed=3)
    proxy = FaultyS3Proxy(os.environ["S3_ENDPOINT_URL"], Fault(path_part="nothing", failures=0))
    with proxy as url:
        connection = json.loads(os.environ["AIRFLOW_CONN_AGENT_S3"])
        connection["extra"] = {**connection["extra"], "endpoint_url": url}
        monkeypatch.setenv("AIRFLOW_CONN_AGENT_S3", json.dumps(connection))
        dag_run = run_day(build_dag, agent, night, candidates=["logistic_regression"])

    assert dag_run.state == "success"
    read_objects = {unquote(path) for method, path in proxy.requests if method == "GET" and "?" not in path}
    log_days_read = {path.split("/dt=")[1][:10] for path in read_objects if path.startswith(f"/{buckets.logs}/")}
    assert log_days_read == {night.isoformat()}  # the four earlier days of the window came from validated days
    validation = record(s3, buckets, night, dag_run, "validation.json")
    assert [d["day"] for d in validation["days"] if d["reused"]] == [
        (night - timedelta(days=n)).isoformat() for n in range(4, 0, -1)
    ]
    assert [d["day"] for d in validation["left_out"]] == [CORRUPT_DAY.isoformat()]
    assert "[propensity_range:propensity]" in " ".join(validation["left_out"][0]["why"])
    split = read_json(s3, buckets.artifacts, run_prefix(AGENT, night, dag_run.run_id) + "features/split.json")
    assert CORRUPT_DAY.isoformat() not in split["train_days"] + split["holdout_days"]
    assert split["train_rows_in_window"] == 3 * 600
    decision = record(s3, buckets, night, dag_run, "decision.json")
    assert f"the data gate left out {CORRUPT_DAY}" in decision["reason"]
    report = record(s3, buckets, night, dag_run, "report.json")
    assert [d["day"] for d in report["validation"]["left_out"]] == [CORRUPT_DAY.isoformat()]


def latest_run(s3, buckets, day) -> dict:
    return read_json(s3, buckets.artifacts, latest_run_key(AGENT, day))


def test_rerunning_a_day_reproduces_its_candidates_and_mints_no_new_version(build_dag, agent, s3, buckets):
    day = date(2026, 1, 8)
    earlier = latest_run(s3, buckets, day)
    before = read_json(s3, buckets.artifacts, earlier["run_dir"] + "decision.json")
    models_before = {o["key"]: o["etag"] for o in list_keys(s3, buckets.models, f"{AGENT}/")}

    dag_run = run_day(build_dag, agent, day)
    assert dag_run.state == "success"

    after = record(s3, buckets, day, dag_run, "decision.json")
    assert latest_run(s3, buckets, day)["run_id"] == dag_run.run_id != earlier["run_id"]
    candidates = set(agent.candidates)
    assert {k: v for k, v in after["metrics"].items() if k in candidates} == {
        k: v for k, v in before["metrics"].items() if k in candidates
    }
    same_model = ("candidate", "sha256", "params", "trained_on", "encoding_id")  # its artifact is in its own folder
    assert {k: after["winner"][k] for k in same_model} == {k: before["winner"][k] for k in same_model}
    assert {o["key"] for o in list_keys(s3, buckets.models, f"{AGENT}/models/")} == {
        k for k in models_before if "/models/" in k
    }


def test_two_runs_of_the_same_day_keep_their_own_records_and_a_dry_run_never_deploys(build_dag, agent, s3, buckets):
    day = date(2026, 1, 9)
    _, etag = read_manifest(s3, buckets, AGENT)
    dry = run_day(build_dag, agent, day, hour=0, dry_run=True)
    dry_decision = record(s3, buckets, day, dry, "decision.json")
    dry_objects = {o["key"]: o["etag"] for o in list_keys(s3, buckets.artifacts, run_prefix(AGENT, day, dry.run_id))}
    strict = spec_variant(
        agent, gate={**agent.gate.model_dump(), "floors": {**agent.gate.floors.model_dump(), "min_roc_auc": 0.99}}
    )
    other = run_day(build_dag, strict, day, hour=6)  # the same day again, a run of its own that decides "keep"

    assert dry.state == other.state == "success"
    assert dry.run_id != other.run_id
    assert not dry_decision["deploy"]
    assert dry_decision["reason"].startswith("dry run, manifest left alone")
    # The second run of the day neither cleared nor overwrote the first one's folder.
    assert {o["key"]: o["etag"] for o in list_keys(s3, buckets.artifacts, run_prefix(AGENT, day, dry.run_id))} == (
        dry_objects
    )
    assert "floor_roc_auc" in {r["rule"] for r in record(s3, buckets, day, other, "decision.json")["rules"]}
    assert latest_run(s3, buckets, day)["run_id"] == other.run_id
    assert read_manifest(s3, buckets, AGENT)[1] == etag


def test_a_lost_or_tampered_live_artifact_fails_the_run_naming_the_object(build_dag, agent, s3, buckets, capfd):
    """Never a floors-only decision by accident: the run stops and says how to go on; the operator's override works."""
    day, quick = date(2026, 1, 9), {"candidates": ["logistic_regression"]}
    live, etag = read_manifest(s3, buckets, AGENT)
    key = live["artifact_key"]
    body, _ = get_bytes(s3, buckets.models, key)
    capfd.readouterr()
    try:
        delete(s3, buckets.models, key)
        lost = run_day(build_dag, agent, day, hour=12, **quick)
        lost_output = capfd.readouterr()
        put_bytes(s3, buckets.models, key, b"tampered")
        tampered = run_day(build_dag, agent, day, hour=13, **quick)
        tampered_output = capfd.readouterr()
        assert read_manifest(s3, buckets, AGENT)[1] == etag
        overridden = run_day(build_dag, agent, day, hour=14, judge_without_champion=True, **quick)
    finally:
        put_bytes(s3, buckets.models, key, body)

    for dag_run, output, problem in ((lost, lost_output, "is missing"), (tampered, tampered_output, "has sha256")):
        assert dag_run.state == "failed"
        assert states(dag_run)["evaluate"] == "failed"
        assert states(dag_run)["deploy"] != "success"
        text = output.out + output.err
        assert f"artifact s3://{buckets.models}/{key} {problem}" in text
        assert "roll back" in text
        assert "judge_without_champion=true" in text
        assert record(s3, buckets, day, dag_run, "report.json")["outcome"] == "failed before decision finished"
    assert overridden.state == "success"
    decision = record(s3, buckets, day, overridden, "decision.json")
    assert decision["judged_without_champion"]
    assert "the operator set judge_without_champion" in decision["champion"]["note"]
    assert "policy_value_vs_logging" in {r["rule"] for r in decision["rules"]}  # still judged against a baseline


def test_s3_failing_for_the_champion_then_recovering_is_retried(build_dag, agent, s3, buckets, monkeypatch):
    live, _ = read_manifest(s3, buckets, AGENT)
    fault = Fault(path_part=live["artifact_key"], failures=2)
    with FaultyS3Proxy(os.environ["S3_ENDPOINT_URL"], fault) as proxy:
        connection = json.loads(os.environ["AIRFLOW_CONN_AGENT_S3"])
        # No retries inside botocore: each 503 reaches the task, so Airflow's retry policy is what recovers.
        retries = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
        connection["extra"] = {**connection["extra"], "endpoint_url": proxy, "config_kwargs": retries}
        monkeypatch.setenv("AIRFLOW_CONN_AGENT_S3", json.dumps(connection))
        dag_run = run_day(
            build_dag, agent, date(2026, 1, 9), hour=15, retry_delay=timedelta(seconds=1),
            candidates=["logistic_regression"],
        )  # fmt: skip

    assert fault.injected == 2
    assert dag_run.state == "success"
    evaluate = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "evaluate")
    assert evaluate.try_number == 3  # two tries met the blip, the third read the champion
    decision = record(s3, buckets, date(2026, 1, 9), dag_run, "decision.json")
    assert decision["champion"]["version"] == live["version"]  # judged against the champion, not the floors alone
    assert "champion" in decision["metrics"]


def test_make_retrain_for_a_day_in_2019_runs_every_task_and_prints_a_line_a_task(agent, s3, buckets):
    """Historical logs are as good as new ones: a run for any day with logs works, however old. Run as `make retrain`
    runs it, in a process of its own: one line per task on the terminal, Airflow's log in a file, real run times."""
    import subprocess
    import sys

    from airflow.models.dagrun import DagRun

    (Path(os.environ["AGENT_SPECS_DIR"]) / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent.model_dump()))
    simulate(s3, buckets.logs, agent, date(2019, 3, 1), 5, events_per_day=600, seed=8)
    live = read_manifest(s3, buckets, AGENT)[0]  # earlier tests of this module deployed models trained in 2026
    before = datetime.now(UTC)
    command = [sys.executable, str(REPO / "scripts" / "retrain.py"), "--agent", AGENT, "--day", "2019-03-05"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    latest = latest_run(s3, buckets, date(2019, 3, 5))
    report = read_json(s3, buckets.artifacts, latest["report_key"])
    assert report["validation"]["window"] == {"first": "2019-03-01", "last": "2019-03-05"}
    assert report["decision"] is not None  # every stage up to the decision ran
    if live is not None:  # a 2019 model never replaces one trained on newer data
        assert "not_older_than_live" in {r["rule"] for r in report["decision"]["rules"] if not r["passed"]}
    assert f"run {latest['run_id']}: success" in done.stdout
    for task in ("wait_for_logs", "validate_day[4]", "validate", "build_features", "train[0]", "evaluate", "report"):
        assert re.search(rf"^  {re.escape(task)} +success +[0-9.]+ s$", done.stdout, re.MULTILINE), task
    assert "[DAG TEST]" not in done.stdout + done.stderr  # Airflow's own log went to the file it names
    log_file = Path(re.search(r"Airflow's log: (\S+)\)", done.stdout).group(1))
    assert "[DAG TEST] end task task_id=report" in log_file.read_text()
    (run,) = [r for r in DagRun.find(dag_id=agent.dag_id) if r.run_id == latest["run_id"]]
    assert run.start_date >= before  # not the logical date in 2019
    assert run.end_date - run.start_date < timedelta(minutes=15)


def test_a_day_whose_logs_never_completed_fails_with_a_clear_message(build_dag, agent, s3, buckets):
    day = date(2026, 1, 20)  # nothing was ever written for it, and its waiting time is long over
    dag_run = run_day(build_dag, agent, day)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["wait_for_logs"] == "failed"
    assert states["days_of_window"] == "upstream_failed"
