"""The Node.js client (clients/node/) against a model deployed by a real DAG run on the local S3 server: it must
serve exactly what the Python client serves, canary routing included, and refuse what the Python client refuses."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta

import numpy as np
import pytest

from agent_retraining.contract import manifest_key, run_prefix
from agent_retraining.dev.simulate import World, day_events, simulate
from agent_retraining.manifest import judged_against, read_manifest
from agent_retraining.records import TrainedCandidate, read_record
from agent_retraining.release.deploy import deploy
from agent_retraining.serving.client import AgentModelClient
from agent_retraining.serving.conformance import SCORE_TOLERANCE
from agent_retraining.serving.manifest_schema import manifest_problem
from agent_retraining.storage import list_keys, put_if_match
from tests.conftest import REPO, spec_variant

DAY = date(2026, 5, 4)
EXPLORATION = 0.1
SERVE = REPO / "clients" / "node" / "bin" / "serve.js"


def node_serve(bucket: str, agent_id: str, contexts: list[dict], keys: list[str]) -> dict:
    request = {
        "endpoint": os.environ["S3_ENDPOINT_URL"], "region": os.environ["AWS_DEFAULT_REGION"],
        "accessKeyId": os.environ["AWS_ACCESS_KEY_ID"], "secretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
        "bucket": bucket, "agentId": agent_id, "exploration": EXPLORATION, "contexts": contexts, "routingKeys": keys,
    }  # fmt: skip
    done = subprocess.run(["node", str(SERVE)], input=json.dumps(request), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def deployed(airflow_db, s3, buckets, support_bot):
    """A live model from a real nightly run, then another candidate of the same run started as its canary."""
    from agent_retraining.dev.dag_runner import run_night

    training = {**support_bot.training.model_dump(), "window_days": 3, "holdout_days": 1, "lightgbm_search": []}
    spec = spec_variant(support_bot, agent_id="node-bot", candidates=["logistic_regression", "lightgbm"],
                        training=training)  # fmt: skip
    simulate(s3, buckets.logs, spec, DAY - timedelta(days=2), 3, events_per_day=1500, seed=9)
    os.environ["AGENT_SPECS_DIR"] = str(_spec_dir(spec))
    try:
        dag_run, report = run_night(spec, DAY)
    finally:
        del os.environ["AGENT_SPECS_DIR"]
    assert dag_run.state == "success", report
    assert report["outcome"] == "deployed", report
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    run_dir = run_prefix(spec.agent_id, DAY, dag_run.run_id)
    winner = live["version"].split("-")[1]
    others = [o["key"] for o in list_keys(s3, buckets.artifacts, run_dir + "candidates/")
              if o["key"].endswith("metadata.json") and f"/{winner}/" not in o["key"]]  # fmt: skip
    other = read_record(s3, buckets.artifacts, others[0], TrainedCandidate)
    decision = {"winner": other, "metrics": {other["candidate"]: {}}, "reason": "node client test", "deploy": True,
                "judged_against": judged_against(*read_manifest(s3, buckets, spec.agent_id)),
                "champion": {"version": live["version"]}}  # fmt: skip
    started = deploy(s3, buckets, spec.agent_id, decision, "node-canary", canary_share=0.4)
    assert started["slot"] == "canary"
    return spec


def _spec_dir(spec):
    import tempfile
    from pathlib import Path

    import yaml

    folder = Path(tempfile.mkdtemp(prefix="node-specs-"))
    (folder / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
    return folder


def test_the_node_client_serves_what_the_python_client_serves(deployed, s3, buckets):
    spec = deployed
    manifest, _ = read_manifest(s3, buckets, spec.agent_id)
    assert manifest_problem(manifest) is None  # what the pipeline wrote is what the contract says
    contexts = [e["context"] for e in day_events(World.for_spec(spec, 3), DAY, 300, 4)]
    keys = [f"session-{n // 2}" for n in range(len(contexts))]
    python = AgentModelClient(spec.agent_id, s3, buckets.models, EXPLORATION)
    assert python.poll(), python.last_error
    propensities, versions = python.serve(contexts, keys)
    node = node_serve(buckets.models, spec.agent_id, contexts, keys)
    assert node["lastError"] is None
    assert (node["version"], node["canaryVersion"]) == (python.version, python.canary.version)
    assert node["versions"] == versions
    assert set(versions) == {manifest["version"], manifest["canary"]["version"]}
    live_rows = np.array(versions) == python.version
    python_scores = python.scores([c for c, live in zip(contexts, live_rows, strict=True) if live])
    assert np.abs(np.array(node["scores"])[live_rows] - python_scores).max() <= SCORE_TOLERANCE
    assert np.allclose(node["propensities"], propensities, rtol=0, atol=1e-12)


def test_a_newer_manifest_is_refused_by_both_clients_and_the_current_model_kept(deployed, s3, buckets):
    spec = deployed
    python = AgentModelClient(spec.agent_id, s3, buckets.models, EXPLORATION)
    assert python.poll()
    serving = python.version
    manifest, etag = read_manifest(s3, buckets, spec.agent_id)
    newer = {**manifest, "schema_version": 3}
    put_if_match(s3, buckets.models, manifest_key(spec.agent_id), json.dumps(newer).encode(), etag)
    try:
        assert python.poll() is False
        assert "schema_version 3: this client reads up to 2" in python.last_error
        assert python.version == serving
        node = node_serve(buckets.models, spec.agent_id, [{}], ["k"])
        assert node["polled"] is False
        assert "schema_version 3" in node["lastError"]
        assert node["version"] is None  # a fresh process had nothing to keep; the node unit tests keep a model
    finally:
        _, etag = read_manifest(s3, buckets, spec.agent_id)
        put_if_match(s3, buckets.models, manifest_key(spec.agent_id), json.dumps(manifest).encode(), etag)
