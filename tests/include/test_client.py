"""The agent-side client against the real local S3 server: it keeps serving whatever happens to S3."""

import gzip
import hashlib
import json
from datetime import date

import boto3
import numpy as np
import pytest

from agent_retraining.contract import day_prefix, manifest_key
from agent_retraining.datagate.reading import parse_log_object
from agent_retraining.dev.simulate import World, day_events, simulate
from agent_retraining.manifest import judged_against, read_manifest
from agent_retraining.models.candidates import CANDIDATES
from agent_retraining.models.encoding import encoding_of
from agent_retraining.models.features import encode, encoding_id
from agent_retraining.models.training import fit, hyperparameters
from agent_retraining.release.deploy import deploy
from agent_retraining.serving.client import AgentModelClient, NoModel
from agent_retraining.storage import get_bytes, list_keys, put_bytes, put_if_match
from tests.conftest import spec_variant

DAY = date(2026, 6, 1)


def _deploy_model(s3, buckets, spec, name: str, last_day: str, seed: int, canary_share: float | None = None) -> str:
    """Train a real candidate on simulated rows and deploy it (as a canary, with a share); returns its version."""
    events = day_events(World.for_spec(spec, 0), DAY, 400, seed)
    table = parse_log_object("x.jsonl", "".join(json.dumps(e) + "\n" for e in events).encode(), spec, DAY).table
    matrix, labels = encode(spec, table)
    artifact, params = fit(name, matrix, labels, seed, hyperparameters(spec, name))
    portable = CANDIDATES[name].to_onnx(artifact, params, matrix.shape[1])
    key = f"{spec.agent_id}/candidates/{name}-{seed}"
    put_bytes(s3, buckets.artifacts, key, artifact)
    put_bytes(s3, buckets.artifacts, key + ".onnx", portable)
    winner = {
        "candidate": name, "framework": CANDIDATES[name].framework, "params": params, "artifact_key": key,
        "sha256": hashlib.sha256(artifact).hexdigest(), "encoding_id": encoding_id(spec),
        "encoding": encoding_of(spec), "onnx": {"key": key + ".onnx", "sha256": hashlib.sha256(portable).hexdigest()},
        "trained_on": {"first": last_day, "last": last_day},
    }  # fmt: skip
    judged = judged_against(*read_manifest(s3, buckets, spec.agent_id))
    decision = {
        "winner": winner, "metrics": {name: {"roc_auc": 0.8}}, "reason": "test", "deploy": True,
        "judged_against": judged, "champion": {"version": judged["version"]},
    }  # fmt: skip
    return deploy(s3, buckets, spec.agent_id, decision, f"run-{seed}", canary_share)["version"]


@pytest.fixture
def agent_spec(support_bot, request):
    return spec_variant(support_bot, agent_id=f"client-{request.node.name[5:25].replace('_', '-')}")


def _contexts(spec, rows=5):
    return [e["context"] for e in day_events(World.for_spec(spec, 0), DAY, rows, 1)]


def test_before_any_deploy_there_is_no_model(agent_spec, s3, buckets):
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    assert client.poll() is False
    assert "NoSuchKey" in client.last_error
    with pytest.raises(NoModel):
        client.scores(_contexts(agent_spec))


def test_serves_the_live_model_and_picks_up_a_new_one_on_the_next_poll(agent_spec, s3, buckets):
    first = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models, exploration=0.2)
    assert client.poll()
    assert client.version == first
    assert client.poll() is False  # same ETag: nothing to reload
    probabilities, versions = client.serve(_contexts(agent_spec), [f"s{n}" for n in range(5)])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.isclose(probabilities.max(axis=1), 0.8 + 0.2 / len(agent_spec.actions)).all()
    assert versions == [first] * 5
    action, propensity, version = client.choose(_contexts(agent_spec, 1)[0], "s0", np.random.default_rng(0))
    assert action in agent_spec.actions
    assert 0 < propensity <= 1
    assert version == first

    second = _deploy_model(s3, buckets, agent_spec, "lightgbm", "2026-06-02", 2)
    assert client.poll()
    assert client.version == second


def test_keeps_serving_through_an_s3_outage(agent_spec, s3, buckets):
    version = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    client.poll()
    before = client.scores(_contexts(agent_spec))
    client.s3 = boto3.client(  # nothing listens there: connection refused, as when S3 is down
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="x", aws_secret_access_key="y",
        region_name="us-east-1", config=boto3.session.Config(retries={"max_attempts": 0}, connect_timeout=1),
    )  # fmt: skip
    assert client.poll() is False
    assert "Could not connect" in client.last_error
    assert client.version == version
    assert np.array_equal(client.scores(_contexts(agent_spec)), before)


def test_keeps_serving_when_the_new_artifact_is_corrupted(agent_spec, s3, buckets):
    version = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    client.poll()
    newer = _deploy_model(s3, buckets, agent_spec, "lightgbm", "2026-06-02", 2)
    manifest, _ = read_manifest(s3, buckets, agent_spec.agent_id)
    good, _ = get_bytes(s3, buckets.models, manifest["onnx"]["key"])
    put_bytes(s3, buckets.models, manifest["onnx"]["key"], b"tree\nbut not really")
    assert client.poll() is False
    assert "has sha256" in client.last_error
    assert client.version == version
    assert newer != version
    # a refused file is not fetched again at every poll: only a change of the manifest tries it again
    put_bytes(s3, buckets.models, manifest["onnx"]["key"], good)
    assert client.poll() is False
    assert client.version == version
    rewritten, etag = read_manifest(s3, buckets, agent_spec.agent_id)
    put_if_match(s3, buckets.models, manifest_key(agent_spec.agent_id), json.dumps(rewritten).encode(), etag)
    assert client.poll()
    assert client.version == newer


def test_simulated_logs_carry_the_deployed_model_version(agent_spec, s3, buckets):
    version = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    simulate(s3, buckets.logs, agent_spec, DAY, 1, events_per_day=200, seed=4, agent=client)
    keys = [
        o["key"] for o in list_keys(s3, buckets.logs, day_prefix(agent_spec.agent_id, DAY)) if o["key"].endswith(".gz")
    ]
    events = [
        json.loads(line) for key in keys for line in gzip.decompress(get_bytes(s3, buckets.logs, key)[0]).splitlines()
    ]
    assert {e["model_version"] for e in events} == {version}
    greedy = 1 - client.exploration + client.exploration / len(agent_spec.actions)
    assert {round(e["propensity"], 6) for e in events} <= {round(greedy, 6), round(client.exploration / 5, 6)}


def test_a_canary_serves_a_stable_share_of_sessions_and_every_event_names_its_model(agent_spec, s3, buckets):
    champion = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    canary = _deploy_model(s3, buckets, agent_spec, "lightgbm", "2026-06-02", 2, canary_share=0.25)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    assert client.poll()
    assert (client.version, client.canary.version, client.canary_share) == (champion, canary, 0.25)
    contexts, sessions = _contexts(agent_spec, 2000), [f"session-{n // 2}" for n in range(2000)]
    probabilities, versions = client.serve(contexts, sessions)
    by_session = dict(zip(sessions, versions, strict=True))
    assert all(by_session[s] == v for s, v in zip(sessions, versions, strict=True))  # a session keeps its arm
    assert set(versions) == {champion, canary}
    assert abs(versions.count(canary) / 2000 - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 1000)  # 1000 sessions
    served = np.array(versions) == canary
    # each arm acts greedily on its own model: the canary's rows follow the canary's scores
    only_canary = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    only_canary.live = client.canary
    expected = only_canary.serve([c for c, x in zip(contexts, served, strict=True) if x], ["k"] * int(served.sum()))[0]
    assert np.allclose(probabilities[served], expected)
    action, propensity, version = client.choose(contexts[0], sessions[0], np.random.default_rng(1))
    assert version == versions[0]


def test_a_canary_that_knows_one_more_action_serves_it_and_the_live_arm_never_does(agent_spec, s3, buckets):
    """The spec gained an action and its first model is a canary: each arm acts over the actions its own model
    knows, and the propensities of one request say which (0 for an action its arm does not know)."""
    _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    grown = spec_variant(agent_spec, actions=[*agent_spec.actions, "call_back_later"])
    canary = _deploy_model(s3, buckets, grown, "logistic_regression", "2026-06-02", 2, canary_share=0.5)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    client.poll()
    assert client.actions == grown.actions
    contexts, sessions = _contexts(agent_spec, 400), [f"session-{n}" for n in range(400)]
    probabilities, versions = client.serve(contexts, sessions)
    assert probabilities.shape == (400, len(grown.actions))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    on_canary = np.array(versions) == canary
    assert 0 < on_canary.sum() < 400
    assert (probabilities[~on_canary, -1] == 0).all()
    assert (probabilities[on_canary, -1] >= client.exploration / len(grown.actions) - 1e-12).all()
    picked = {client.choose(c, k, np.random.default_rng(n))[0] for n, (c, k) in enumerate(zip(contexts, sessions,
                                                                                           strict=True))}  # fmt: skip
    assert picked <= set(grown.actions)


def test_a_canary_whose_artifact_fails_its_checksum_is_never_served(agent_spec, s3, buckets):
    champion = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    canary = _deploy_model(s3, buckets, agent_spec, "lightgbm", "2026-06-02", 2, canary_share=0.5)
    manifest, _ = read_manifest(s3, buckets, agent_spec.agent_id)
    good, _ = get_bytes(s3, buckets.models, manifest["canary"]["onnx"]["key"])
    put_bytes(s3, buckets.models, manifest["canary"]["onnx"]["key"], b"tree\nbut not really")
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    client.poll()
    assert client.version == champion
    assert client.canary is None
    assert "canary" in client.last_error
    assert "has sha256" in client.last_error
    _, versions = client.serve(_contexts(agent_spec, 200), [f"s{n}" for n in range(200)])
    assert set(versions) == {champion}
    # a bad artifact is not fetched again at every poll: only a change of the manifest tries it again
    put_bytes(s3, buckets.models, manifest["canary"]["onnx"]["key"], good)
    assert client.poll() is False
    assert client.canary is None
    rewritten, etag = read_manifest(s3, buckets, agent_spec.agent_id)
    put_if_match(s3, buckets.models, manifest_key(agent_spec.agent_id), json.dumps(rewritten).encode(), etag)
    assert client.poll()
    assert client.canary.version == canary


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.update(schema_version=3), "manifest schema_version 3: this client reads up to 2"),
        (lambda m: m.pop("schema_version"), "manifest schema_version 1 was written before portable models"),
        (lambda m: m["canary"].update(share="0.1"), "canary.share: '0.1' is not of type 'number'"),
        (lambda m: m.update(sha256=7), "sha256: 7 is not of type 'string'"),
        (lambda m: m.pop("onnx"), "the manifest: 'onnx' is a required property"),
    ],
)
def test_a_manifest_the_client_cannot_fully_understand_leaves_the_current_model_serving(agent_spec, s3, buckets,
                                                                                       change, why):  # fmt: skip
    agent_spec = spec_variant(agent_spec, agent_id=f"client-manifest-{hashlib.sha256(why.encode()).hexdigest()[:8]}")
    live = _deploy_model(s3, buckets, agent_spec, "logistic_regression", "2026-06-01", 1)
    _deploy_model(s3, buckets, agent_spec, "lightgbm", "2026-06-02", 2, canary_share=0.3)
    client = AgentModelClient(agent_spec.agent_id, s3, buckets.models)
    assert client.poll()
    assert client.canary is not None
    manifest, etag = read_manifest(s3, buckets, agent_spec.agent_id)
    assert manifest["schema_version"] == 2
    change(manifest)
    put_if_match(s3, buckets.models, manifest_key(agent_spec.agent_id), json.dumps(manifest).encode(), etag)
    assert client.poll() is False
    assert why in client.last_error
    assert client.version == live
    probabilities, versions = client.serve(_contexts(agent_spec), [f"s{n}" for n in range(5)])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert set(versions) <= {live, client.canary.version}  # what served before still serves
    assert client.poll() is False  # the same bad manifest is not acted on again
