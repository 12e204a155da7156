import hashlib
import threading

import pytest

from agent_retraining.contract import manifest_key
from agent_retraining.manifest import ArtifactError, deploy, fetch_verified, read_manifest
from agent_retraining.storage import PreconditionFailed, get_bytes, put_bytes, put_if_absent, put_if_match


def _decision(s3, buckets, agent_id, name, last_day, body=None):
    body = body or f"model {name} {last_day}".encode()
    key = f"{agent_id}/runs/dt={last_day}/candidates/{name}/model.txt"
    put_bytes(s3, buckets.artifacts, key, body)
    winner = {
        "candidate": name,
        "framework": "lightgbm",
        "params": {},
        "artifact_key": key,
        "sha256": hashlib.sha256(body).hexdigest(),
        "encoding_id": "e",
        "trained_on": {"first": "2026-01-01", "last": last_day},
    }
    return {"winner": winner, "metrics": {name: {"roc_auc": 0.8}}, "reason": "test"}


def test_conditional_writes_are_enforced_by_the_server(s3, buckets):
    put_if_absent(s3, buckets.models, "cond/once", b"1")
    with pytest.raises(PreconditionFailed):
        put_if_absent(s3, buckets.models, "cond/once", b"2")
    etag = put_if_match(s3, buckets.models, "cond/m", b"a", None)
    put_if_match(s3, buckets.models, "cond/m", b"b", etag)
    with pytest.raises(PreconditionFailed):
        put_if_match(s3, buckets.models, "cond/m", b"c", etag)
    assert get_bytes(s3, buckets.models, "cond/m")[0] == b"b"


def test_deploy_writes_the_artifact_once_and_keeps_history(s3, buckets):
    first = deploy(s3, buckets, "hist-bot", _decision(s3, buckets, "hist-bot", "lightgbm", "2026-02-01"), "run-1")
    again = deploy(s3, buckets, "hist-bot", _decision(s3, buckets, "hist-bot", "lightgbm", "2026-02-01"), "run-1b")
    second = deploy(s3, buckets, "hist-bot", _decision(s3, buckets, "hist-bot", "torch_mlp", "2026-02-02"), "run-2")
    assert first["deployed"]
    assert not again["deployed"]
    assert second["deployed"]
    manifest, _ = read_manifest(s3, buckets, "hist-bot")
    assert manifest["version"] == second["version"]
    assert manifest["previous_version"] == first["version"]
    assert [h["version"] for h in manifest["history"]] == [first["version"]]
    body = fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    assert body == b"model torch_mlp 2026-02-02"


def test_a_model_from_older_data_never_replaces_a_newer_live_one(s3, buckets):
    deploy(s3, buckets, "old-bot", _decision(s3, buckets, "old-bot", "lightgbm", "2026-02-05"), "run-new")
    _, etag = read_manifest(s3, buckets, "old-bot")
    result = deploy(s3, buckets, "old-bot", _decision(s3, buckets, "old-bot", "lightgbm", "2026-02-03"), "run-old")
    assert not result["deployed"]
    assert "newer data" in result["reason"]
    assert read_manifest(s3, buckets, "old-bot")[1] == etag


def test_a_tampered_artifact_is_refused(s3, buckets):
    deploy(s3, buckets, "tamper-bot", _decision(s3, buckets, "tamper-bot", "lightgbm", "2026-02-01"), "run-1")
    manifest, _ = read_manifest(s3, buckets, "tamper-bot")
    put_bytes(s3, buckets.models, manifest["artifact_key"], b"evil")
    with pytest.raises(ArtifactError, match="has sha256 .* the manifest says"):
        fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])


def test_racing_deploys_lose_no_update(s3, buckets):
    agent, rounds = "race-bot", 6
    errors, deployed = [], []

    def worker(name: str) -> None:
        try:
            for day in range(1, rounds + 1):
                decision = _decision(s3, buckets, agent, name, f"2026-04-{day:02d}", f"{name}-{day}".encode())
                result = deploy(s3, buckets, agent, decision, f"{name}-{day}")
                if result["deployed"]:
                    deployed.append(result["version"])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("lightgbm", "torch_mlp")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    manifest, _ = read_manifest(s3, buckets, agent)
    versions = [manifest["version"], *(h["version"] for h in manifest["history"])]
    assert sorted(versions) == sorted(deployed)  # every successful swap is in the chain, none twice
    chain = [manifest, *manifest["history"]]
    for newer, older in zip(chain, chain[1:], strict=False):
        assert newer["trained_on"]["last"] >= older["trained_on"]["last"]
    assert manifest["trained_on"]["last"] == f"2026-04-{rounds:02d}"
    fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    assert get_bytes(s3, buckets.models, manifest_key(agent))[0]
