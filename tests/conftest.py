"""Session-wide real parts: one local S3 server, one Airflow home, test buckets.

The environment is set here, at import, because Airflow reads its configuration
when it is first imported. Tests use their own buckets on the same local S3
server as the demo, emptied at the start of each session, so a test run never
touches the demo's logs or manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins")]

from agent_retraining.dev import local_s3  # noqa: E402

local_s3.load_env()
# Another prefix lets a second test session share the S3 server without emptying this one's buckets.
# Every task a retraining run runs on its way to the decision, whatever the decision is.
STAGES_TO_THE_DECISION = ("wait_for_logs", "days_of_window", "validate_day", "validate", "build_features", "train",
                          "evaluate")  # fmt: skip
BUCKET_PREFIX = os.environ.get("TEST_BUCKET_PREFIX", "test-agent")
os.environ.update(
    LOGS_BUCKET=f"{BUCKET_PREFIX}-logs",
    MODELS_BUCKET=f"{BUCKET_PREFIX}-models",
    ARTIFACTS_BUCKET=f"{BUCKET_PREFIX}-artifacts",
    GX_ANALYTICS_ENABLED="False",
    AIRFLOW_HOME=tempfile.mkdtemp(prefix="airflow-home-"),
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    PYTHONPATH=os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
    AIRFLOW_CONN_AGENT_S3=json.dumps(
        {
            "conn_type": "aws",
            "login": os.environ["AWS_ACCESS_KEY_ID"],
            "password": os.environ["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": os.environ["S3_ENDPOINT_URL"], "region_name": os.environ["AWS_DEFAULT_REGION"]},
        }
    ),
)


def pytest_collection_modifyitems(items):
    """Each test's tier from what it needs: e2e runs DAGs, servers or a browser (tests/e2e/); integration talks to
    the local S3 server (it asks for `s3_server`, directly or through a fixture); unit needs neither
    (`make test-fast`)."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
        elif "s3_server" in item.fixturenames:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


def _empty_bucket(s3, bucket: str) -> None:
    from agent_retraining.storage import list_keys

    for obj in list_keys(s3, bucket, ""):
        s3.delete_object(Bucket=bucket, Key=obj["key"])


@pytest.fixture(scope="session")
def s3_server():
    """The real local S3 server over HTTP; started here (and stopped after) unless already up."""
    started = not local_s3.answers()
    local_s3.up()
    yield os.environ["S3_ENDPOINT_URL"]
    if started:
        local_s3.down()


@pytest.fixture(scope="session")
def buckets(s3_server):
    from agent_retraining.storage import buckets_from_env, s3_client_from_env

    names = buckets_from_env()
    s3 = s3_client_from_env()
    for bucket in (names.logs, names.models, names.artifacts):
        _empty_bucket(s3, bucket)
    return names


@pytest.fixture(scope="session")
def s3(buckets):
    from agent_retraining.storage import s3_client_from_env

    return s3_client_from_env()


@pytest.fixture(scope="session")
def airflow_db():
    """One migrated SQLite metadata DB in a temporary AIRFLOW_HOME for the whole session."""
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)
    return os.environ["AIRFLOW_HOME"]


def asset_events(run_id: str) -> dict[str, list[dict]]:
    """The Asset events a `dag.test()` run emitted, by Asset name: each event's `extra`."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)).all()
        emitted: dict[str, list[dict]] = {}
        for event in events:
            emitted.setdefault(event.asset.name, []).append(dict(event.extra))
        return emitted


@pytest.fixture(scope="session")
def support_bot():
    from agent_retraining.spec import load_agent

    return load_agent("support-bot")


@pytest.fixture
def install(airflow_db, buckets, monkeypatch, tmp_path):
    """Install specs as an operator adding agents would (AGENT_SPECS_DIR, read by the DAG files); returns each
    spec."""
    import yaml

    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))

    def install_spec(spec):
        (tmp_path / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
        return spec

    return install_spec


def spec_variant(spec, **changes):
    """A copy of a spec with top-level fields replaced (validated like a file would be)."""
    from agent_retraining.spec import AgentSpec

    return AgentSpec.model_validate({**spec.model_dump(), **changes})


def load_dag_file(filename: str):
    """Import a file of dags/ as the DAG processor does, as a module of its own, to build DAGs from it."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location(f"dag_file_{filename[:-3]}", REPO / "dags" / filename)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def write_specs_with_one_broken(directory: Path) -> Path:
    """alpha-bot and beta-bot, valid copies of the example spec, and gamma-bot with a floor that is not a number.

    Returns the broken file, whose error must name it and the field `gate.floors.min_roc_auc`.
    """
    example = (REPO / "include" / "agents" / "support-bot.yaml").read_text()
    for name in ("alpha-bot", "beta-bot"):
        (directory / f"{name}.yaml").write_text(example.replace("agent_id: support-bot", f"agent_id: {name}"))
    broken = directory / "gamma-bot.yaml"
    broken.write_text(
        example.replace("agent_id: support-bot", "agent_id: gamma-bot").replace(
            "min_roc_auc: 0.60", "min_roc_auc: high"
        )
    )
    return broken


def validate_window(s3, buckets, spec, window, run_dir: str) -> dict:
    """What the DAG's validate_day (one per day) and validate tasks do, in-process: the window's verdict."""
    from agent_retraining.datagate.validate import judge_window
    from agent_retraining.datagate.validate_day import judge_or_reuse

    checked = [judge_or_reuse(s3, buckets, spec, day) for day in window.days]
    return judge_window(s3, buckets, spec, window, checked, run_dir)
