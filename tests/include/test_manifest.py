import hashlib
import threading

import pytest

from agent_retraining.contract import manifest_key
from agent_retraining.manifest import (
    ArtifactError,
    RollbackRefused,
    deploy,
    fetch_verified,
    history,
    read_manifest,
    rollback,
)
from agent_retraining.storage import PreconditionFailed, get_bytes, list_keys, put_bytes, put_if_absent, put_if_match


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
    versions = [entry["version"] for entry in history(manifest)]
    assert sorted(versions) == sorted(deployed)  # every successful swap is in the chain, none twice
    chain = history(manifest)
    for newer, older in zip(chain, chain[1:], strict=False):
        assert newer["trained_on"]["last"] >= older["trained_on"]["last"]
    assert manifest["trained_on"]["last"] == f"2026-04-{rounds:02d}"
    fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    assert get_bytes(s3, buckets.models, manifest_key(agent))[0]


def test_a_deploy_killed_between_artifact_and_manifest_leaves_the_old_manifest(s3, buckets):
    import subprocess
    import sys
    import textwrap

    deploy(s3, buckets, "kill-bot", _decision(s3, buckets, "kill-bot", "lightgbm", "2026-02-01"), "run-1")
    manifest_before, etag_before = read_manifest(s3, buckets, "kill-bot")
    decision = _decision(s3, buckets, "kill-bot", "torch_mlp", "2026-02-02")
    code = textwrap.dedent(f"""
        import os
        from agent_retraining import manifest
        from agent_retraining.storage import buckets_from_env, s3_client_from_env
        manifest.put_if_match = lambda *args, **kwargs: os._exit(137)  # the worker dies right here
        manifest.deploy(s3_client_from_env(), buckets_from_env(), "kill-bot", {decision!r}, "run-2")
    """)
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 137

    assert read_manifest(s3, buckets, "kill-bot")[1] == etag_before
    orphan = [o["key"] for o in list_keys(s3, buckets.models, "kill-bot/models/") if "torch_mlp" in o["key"]]
    assert len(orphan) == 1  # the artifact was written, but nothing points at it
    result = deploy(s3, buckets, "kill-bot", decision, "run-2-retry")
    assert result["deployed"]
    assert result["previous_version"] == manifest_before["version"]


def test_rollback_to_previous_and_to_a_named_version(s3, buckets):
    versions = [
        deploy(s3, buckets, "roll-bot", _decision(s3, buckets, "roll-bot", name, f"2026-03-0{i}"), f"run-{i}")[
            "version"
        ]
        for i, name in enumerate(("lightgbm", "torch_mlp", "logistic_regression"), start=1)
    ]
    result = rollback(s3, buckets, "roll-bot", "previous", "bad answers in prod", "rollback-1")
    assert (result["version"], result["previous_version"]) == (versions[1], versions[2])
    manifest, _ = read_manifest(s3, buckets, "roll-bot")
    assert manifest["deployed_by"] == "rollback"
    assert manifest["reason"] == "rollback: bad answers in prod"
    assert manifest["run_id"] == "rollback-1"
    assert rollback(s3, buckets, "roll-bot", versions[0], "go further back", "rollback-2")["version"] == versions[0]
    assert [h["version"] for h in history(read_manifest(s3, buckets, "roll-bot")[0])] == [
        versions[0], versions[1], versions[2], versions[1], versions[0],
    ]  # fmt: skip


def test_rollback_refuses_unknown_missing_tampered_and_traversal_targets(s3, buckets):
    first = deploy(s3, buckets, "refuse-bot", _decision(s3, buckets, "refuse-bot", "lightgbm", "2026-03-01"), "r1")
    deploy(s3, buckets, "refuse-bot", _decision(s3, buckets, "refuse-bot", "torch_mlp", "2026-03-02"), "r2")
    _, etag = read_manifest(s3, buckets, "refuse-bot")
    with pytest.raises(RollbackRefused, match="is not an earlier version"):
        rollback(s3, buckets, "refuse-bot", "20260101-lightgbm-000000000000", "nope", "r3")
    with pytest.raises(ValueError, match="not allowed in an object key"):
        rollback(s3, buckets, "refuse-bot", "../../etc", "nope", "r3")
    older, _ = read_manifest(s3, buckets, "refuse-bot")
    artifact = older["history"][0]["artifact_key"]
    put_bytes(s3, buckets.models, artifact, b"tampered")
    with pytest.raises(RollbackRefused, match=f"refusing to roll back to {first['version']}: .* has sha256"):
        rollback(s3, buckets, "refuse-bot", "previous", "nope", "r3")
    s3.delete_object(Bucket=buckets.models, Key=artifact)
    with pytest.raises(RollbackRefused, match="cannot be read"):
        rollback(s3, buckets, "refuse-bot", first["version"], "nope", "r3")
    assert read_manifest(s3, buckets, "refuse-bot")[1] == etag
