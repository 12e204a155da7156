"""The distributed path without Docker: CeleryExecutor, two workers, the machine's Postgres and Redis.

Each worker runs in its own working directory and records its own name as the
task hostname, so the test can see that the run's tasks were spread over both.
A run that succeeds that way relies on no task reading another's local disk:
everything passes through S3.
"""

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from agent_retraining.dev.simulate import simulate
from agent_retraining.manifest import read_manifest
from tests.conftest import spec_variant
from tests.e2e.airflow_cluster import day_of, drop_cluster, start_cluster

AGENT = "celery-bot"
DAG_ID = f"retrain_{AGENT}"
YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)
REDIS_DB = 11  # a Redis database of its own, checked empty before and emptied after


def _redis(*args: str) -> str:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(REDIS_DB), *args], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def celery_cluster(support_bot, s3, buckets, tmp_path_factory):
    if _redis("DBSIZE") != "0":
        pytest.fail(f"Redis database {REDIS_DB} is in use; the Celery test needs it empty")
    spec = spec_variant(support_bot, agent_id=AGENT, training={"window_days": 3, "holdout_days": 1, "seed": 5})
    # The scheduler runs yesterday's interval, so the data differ every calendar day: enough events that the first
    # deploy's paired interval clears the gate on any day (at 600 a day, 2026-12-08's missed the margin by 0.0002).
    simulate(s3, buckets.logs, spec, YESTERDAY - timedelta(days=3), 4, events_per_day=4000, seed=13)
    home = tmp_path_factory.mktemp("celery-home")
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    cluster = start_cluster(
        home, spec, executor="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=broker,
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        AIRFLOW__CORE__HOSTNAME_CALLABLE="retraining_runtime.worker_hostname",
    )  # fmt: skip
    for name in ("worker-1", "worker-2"):
        workdir = home / name
        workdir.mkdir()
        cluster.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", cwd=workdir, WORKER_NAME=name)
    yield cluster
    drop_cluster(cluster)
    _redis("FLUSHDB")


def test_a_run_on_two_celery_workers_succeeds_with_tasks_on_both(celery_cluster, s3, buckets):
    run = celery_cluster.finished_scheduled_run(DAG_ID)
    assert run["state"] == "success"
    assert day_of(run) == YESTERDAY
    hosts = celery_cluster.sql(
        f"SELECT task_id, hostname FROM task_instance WHERE dag_id = '{DAG_ID}' AND run_id = '{run['run_id']}' "
        "AND state = 'success'"
    )
    workers = {host for _, host in hosts}
    assert workers == {"worker-1", "worker-2"}, hosts
    assert [task for task, _ in hosts].count("validate_day") == 3  # one mapped task per day of the window
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["run_id"] == run["run_id"]
