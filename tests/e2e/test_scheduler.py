"""The retraining DAG driven by a real Airflow scheduler, not `dag.test()`.

Starts Airflow's api-server, scheduler, dag-processor and triggerer (LocalExecutor,
the machine's Postgres as metadata DB, a database of its own that is dropped after)
beside the local S3 server. The nightly schedule, a backfill created with
`airflow backfill create`, the trigger form's validation, the deadline alert (to
a local HTTP server standing in for Slack's webhook) and a downstream DAG
scheduled on the manifest Asset all go through it.
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import simulate
from agent_retraining.manifest import read_manifest
from agent_retraining.storage import list_keys, read_json
from tests.conftest import STAGES_TO_THE_DECISION, spec_variant
from tests.e2e.airflow_cluster import day_of, drop_cluster, start_cluster
from tests.e2e.webhook_sink import WebhookSink

DAGS = Path(__file__).resolve().parents[2] / "dags"
AGENT = "sched-bot"
DAG_ID = f"retrain_{AGENT}"
# The first deploy is judged against the logging policy on one day's holdout: at 600 events a day the interval of
# that difference is so wide (about +-0.13) that whether it clears the margin depends on the draw.
EVENTS_PER_DAY = 1500


def backfill_days(today: date) -> list[date]:
    return [today - timedelta(days=n) for n in (4, 3, 2)]


# A team's DAG scheduled on the agent's manifest: it keeps what each event's `extra` told it.
DOWNSTREAM_DAG = f"""
import json, os
from pathlib import Path
from airflow.sdk import Asset, dag, task

MANIFEST = Asset(name="{AGENT}_model_manifest")


@dag(dag_id="on_{AGENT.replace("-", "_")}_manifest", schedule=[MANIFEST])
def on_manifest():
    @task
    def record(triggering_asset_events=None):
        for event in triggering_asset_events[MANIFEST]:
            with Path(os.environ["AIRFLOW_HOME"], "downstream.jsonl").open("a") as out:
                out.write(json.dumps(dict(event.extra)) + "\\n")

    record()


on_manifest()
"""


@pytest.fixture(scope="module")
def slack():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def spec(support_bot):
    # A deadline of four seconds after a run is queued: every run overruns it, and its alert goes to Slack.
    notifications = {"slack": ["slack_ops"], "on": ["deadline_missed"], "deadline_hours": 4 / 3600}
    return spec_variant(support_bot, agent_id=AGENT, training={"window_days": 3, "holdout_days": 1, "seed": 3},
                        notifications=notifications)  # fmt: skip


@pytest.fixture(scope="module")
def today() -> date:
    """Taken when the cluster starts, not when the module is imported: a suite that crosses midnight UTC before
    this module runs must still give the scheduler the logs of the day before its own today."""
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def airflow(spec, s3, buckets, tmp_path_factory, today, slack):
    """A running Airflow (LocalExecutor) that sees only the sched-bot's DAG, and a week of its logs."""
    simulate(s3, buckets.logs, spec, today - timedelta(days=7), 7, events_per_day=EVENTS_PER_DAY, seed=9)
    home = tmp_path_factory.mktemp("scheduler-home")
    dags = home / "dags"  # the project's DAG files and a downstream team's
    dags.mkdir()
    for dag_file in DAGS.glob("*.py"):
        (dags / dag_file.name).symlink_to(dag_file)
    (dags / "downstream.py").write_text(DOWNSTREAM_DAG)
    cluster = start_cluster(home, spec, triggerer=True, AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                            AIRFLOW_CONN_SLACK_OPS=slack.connection())  # fmt: skip
    yield cluster
    drop_cluster(cluster)


def test_the_schedule_runs_the_latest_day_and_deploys(airflow, s3, buckets, today):
    scheduled = airflow.finished_scheduled_run(DAG_ID)
    assert scheduled["state"] == "success"
    assert day_of(scheduled) == today - timedelta(days=1)
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["trained_on"]["last"] == (today - timedelta(days=1)).isoformat()
    assert manifest["run_id"] == scheduled["run_id"]


def test_a_downstream_dag_scheduled_on_the_manifest_reads_the_deployed_version_from_the_event(airflow, s3, buckets):
    scheduled = airflow.finished_scheduled_run(DAG_ID)
    downstream = airflow.wait_for(
        f"on_{AGENT.replace('-', '_')}_manifest", lambda rs: any(r["state"] == "success" for r in rs),
        "the downstream DAG's run on the deploy's Asset event",
    )  # fmt: skip
    assert [r["run_type"] for r in downstream] == ["asset_triggered"]
    (told,) = [json.loads(line) for line in (airflow.home / "downstream.jsonl").read_text().splitlines()]
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert told == {"agent_id": AGENT, "outcome": "deployed", "version": manifest["version"], "canary_version": None,
                    "previous_version": None, "run_id": scheduled["run_id"]}  # fmt: skip


def test_a_run_past_its_deadline_is_told_on_slack_while_it_runs(airflow, slack):
    scheduled = airflow.finished_scheduled_run(DAG_ID)
    late = airflow.wait_until(
        lambda: [p["body"]["text"] for p in slack.received if scheduled["run_id"] in p["body"]["text"]],
        "the deadline alert of the scheduled run on the Slack sink", timeout=120,
    )  # fmt: skip
    assert late[0].startswith(f"[{AGENT}] run late: {scheduled['run_id']}\n")
    assert "had not finished by its deadline" in late[0]
    assert scheduled["run_id"].replace(":", "%3A").replace("+", "%2B") in late[0]  # the link to the run


def test_a_backfill_runs_each_day_and_leaves_the_manifest_alone(airflow, s3, buckets, today):
    _, etag = read_manifest(s3, buckets, AGENT)
    days = backfill_days(today)
    airflow.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", days[0].isoformat(),
        "--to-date", days[-1].isoformat(), "--max-active-runs", "3")  # fmt: skip

    def finished(rs):
        backfill = [r for r in rs if r["run_type"] == "backfill"]
        return len(backfill) == len(days) and all(r["state"] in ("success", "failed") for r in backfill)

    runs = [r for r in airflow.wait_for(DAG_ID, finished, "the backfill runs") if r["run_type"] == "backfill"]
    assert sorted(day_of(r) for r in runs) == days
    assert {r["state"] for r in runs} == {"success"}
    for run in runs:
        day = day_of(run)
        prefix = run_prefix(AGENT, day, run["run_id"])
        validation = read_json(s3, buckets.artifacts, prefix + "validation.json")
        assert validation["window"]["last"] == day.isoformat()
        assert validation["rows"] == 3 * EVENTS_PER_DAY
        decision = read_json(s3, buckets.artifacts, prefix + "decision.json")
        assert decision["run_type"] == "backfill"
        assert not decision["deploy"]
        assert decision["reason"].startswith("backfill, manifest left alone")
    assert read_manifest(s3, buckets, AGENT)[1] == etag


def test_a_trigger_with_an_invalid_param_is_refused_before_any_task_runs(airflow, s3, buckets):
    before = {r["run_id"] for r in airflow.runs(DAG_ID)}
    for conf in ({"window_days": 1}, {"candidates": ["xgboost"]}, {"dry_run": "yes"}):
        result = airflow.cli("dags", "trigger", DAG_ID, "--conf", json.dumps(conf), check=False)
        assert result.returncode != 0, conf
        assert "ParamValidationError: Invalid input for param" in result.stderr, conf
    assert {r["run_id"] for r in airflow.runs(DAG_ID)} == before


def _create_backfill(airflow, day, *options: str) -> None:
    """A backfill of `day`; Airflow allows one backfill per DAG at a time, and the scheduler closes the earlier one a
    little after its runs end, so wait for that first."""

    def created() -> bool:
        result = airflow.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", day.isoformat(),
                             "--to-date", day.isoformat(), *options, check=False)  # fmt: skip
        assert result.returncode == 0 or "AlreadyRunningBackfill" in result.stderr, result.stderr[-3000:]
        return result.returncode == 0

    airflow.wait_until(created, "the earlier backfill to complete")


def test_re_running_an_interval_adds_no_model_version_and_no_duplicate_objects(airflow, s3, buckets, today):
    day = backfill_days(today)[-1]
    first = next(r for r in airflow.runs(DAG_ID) if r["run_type"] == "backfill" and day_of(r) == day)
    run_dir = run_prefix(AGENT, day, first["run_id"])
    objects_before = {o["key"]: o["etag"] for o in list_keys(s3, buckets.artifacts, run_dir)}
    models_before = {o["key"] for o in list_keys(s3, buckets.models, f"{AGENT}/")}
    _create_backfill(airflow, day, "--reprocess-behavior", "completed")

    def rerun_finished(rs):
        rerun = [r for r in rs if day_of(r) == day and r["run_type"] == "backfill"]
        return any(r["state"] == "success" and (r["end_date"] or "") > first["end_date"] for r in rerun)

    rerun = next(r for r in airflow.wait_for(DAG_ID, rerun_finished, "the re-run") if day_of(r) == day
                 and r["run_type"] == "backfill" and r["state"] == "success")  # fmt: skip
    assert rerun["run_id"] == first["run_id"]  # the same run, cleared and run again
    objects_after = {o["key"]: o["etag"] for o in list_keys(s3, buckets.artifacts, run_dir)}
    assert set(objects_after) == set(objects_before)  # the same objects in its own folder, no second copy
    train_key = run_dir + "features/train.parquet"
    assert objects_after[train_key] == objects_before[train_key]  # the same training rows
    assert {o["key"] for o in list_keys(s3, buckets.models, f"{AGENT}/")} == models_before


def test_a_backfill_of_a_day_in_2019_runs_every_task(airflow, spec, s3, buckets):
    """Last year's logs (or older) can be backfilled: the DAG's start date does not stand in the way."""
    spec_days = [date(2019, 6, 1) + timedelta(days=n) for n in range(3)]
    simulate(s3, buckets.logs, spec, spec_days[0], 3, events_per_day=600, seed=12)
    day = spec_days[-1]

    _create_backfill(airflow, day)

    def finished(rs):
        return any(day_of(r) == day and r["state"] in ("success", "failed") for r in rs)

    run = next(r for r in airflow.wait_for(DAG_ID, finished, "the 2019 backfill") if day_of(r) == day)
    assert run["state"] == "success"
    tasks = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run['run_id']}/taskInstances")["task_instances"]
    ran = {t["task_id"] for t in tasks if t["state"] == "success"}
    assert {*STAGES_TO_THE_DECISION, "report"} <= ran
    report = read_json(s3, buckets.artifacts, run_prefix(AGENT, day, run["run_id"]) + "report.json")
    assert report["decision"]["reason"].startswith("backfill, manifest left alone")
