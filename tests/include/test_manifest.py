import hashlib
import threading

import pytest

from agent_retraining.contract import manifest_key
from agent_retraining.manifest import history, judged_against, read_manifest
from agent_retraining.models.artifacts import ArtifactError, fetch_verified
from agent_retraining.models.encoding import fingerprint
from agent_retraining.release.deploy import (
    DeployRefused,
    LiveModelChanged,
    RollbackRefused,
    deploy,
    deploy_run,
    rollback,
)
from agent_retraining.storage import (
    PreconditionFailed,
    delete,
    get_bytes,
    list_keys,
    put_bytes,
    put_if_absent,
    put_if_match,
    read_json,
    write_json,
)


def an_encoding(name: str) -> dict:
    """A feature encoding of its own: the manifest carries it, and its fingerprint is the entry's encoding_id."""
    return {"context": [], "actions": [name]}


def _decision(s3, buckets, agent_id, name, last_day, body=None, encoding="e"):
    """A decision that says deploy `name` (of encoding `an_encoding(encoding)`), judged against the manifest as it
    is now (as `evaluate` records it)."""
    body = body or f"model {name} {last_day}".encode()
    key = f"{agent_id}/runs/dt={last_day}/candidates/{name}/model.txt"
    put_bytes(s3, buckets.artifacts, key, body)
    portable = b"onnx of " + body  # the manifest names and pins it; nothing here loads it
    put_bytes(s3, buckets.artifacts, key + ".onnx", portable)
    described = encoding if isinstance(encoding, dict) else an_encoding(encoding)
    winner = {
        "candidate": name,
        "framework": "lightgbm",
        "params": {},
        "artifact_key": key,
        "sha256": hashlib.sha256(body).hexdigest(),
        "encoding_id": fingerprint(described),
        "encoding": described,
        "onnx": {"key": key + ".onnx", "sha256": hashlib.sha256(portable).hexdigest()},
        "trained_on": {"first": "2026-01-01", "last": last_day},
    }
    judged = judged_against(*read_manifest(s3, buckets, agent_id))
    return {
        "agent_id": agent_id, "window": {"first": "2026-01-01", "last": last_day}, "holdout_rows": 800,
        "primary_metric": "roc_auc", "winner": winner, "metrics": {name: {"roc_auc": 0.8}}, "reason": "test",
        "deploy": True, "judged_against": judged, "champion": {"version": judged["version"], "note": "test"},
        "rules": [], "run_type": "manual",
    }  # fmt: skip


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
    assert again["reason"] == f"{first['version']} is live already"
    assert second["deployed"]
    manifest, _ = read_manifest(s3, buckets, "hist-bot")
    assert manifest["version"] == second["version"]
    assert manifest["previous_version"] == first["version"]
    assert [h["version"] for h in manifest["history"]] == [first["version"]]
    body = fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    assert body == b"model torch_mlp 2026-02-02"


def test_a_decision_that_says_keep_is_never_deployed(s3, buckets):
    decision = {**_decision(s3, buckets, "keep-bot", "lightgbm", "2026-02-01"), "deploy": False, "reason": "keep it"}
    with pytest.raises(DeployRefused, match="does not say deploy: keep it"):
        deploy(s3, buckets, "keep-bot", decision, "run-1")
    assert read_manifest(s3, buckets, "keep-bot") == (None, None)


def test_a_deploy_judged_against_another_manifest_is_refused(s3, buckets):
    """A cold-start decision may only land while there is still no manifest; a later one only on the same ETag."""
    cold = _decision(s3, buckets, "moved-bot", "lightgbm", "2026-02-01")
    also_cold = _decision(s3, buckets, "moved-bot", "torch_mlp", "2026-02-01")
    live = deploy(s3, buckets, "moved-bot", cold, "run-a")["version"]
    _, etag = read_manifest(s3, buckets, "moved-bot")
    with pytest.raises(LiveModelChanged, match=f"live model changed from none to {live} .*re-run to judge against it"):
        deploy(s3, buckets, "moved-bot", also_cold, "run-b")
    assert read_manifest(s3, buckets, "moved-bot")[1] == etag


def test_rollback_while_a_deploy_waits_for_approval_stops_that_deploy(s3, buckets):
    agent = "approve-bot"
    v1 = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-02-01"), "run-1")["version"]
    v2 = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "torch_mlp", "2026-02-02"), "run-2")["version"]
    run_dir = f"{agent}/runs/dt=2026-02-03/run=waiting/"
    write_json(
        s3, buckets.artifacts, run_dir + "decision.json", _decision(s3, buckets, agent, "lightgbm", "2026-02-03")
    )
    # ... the run now waits for an operator; meanwhile someone rolls the agent back:
    assert rollback(s3, buckets, agent, "previous", "answers went wrong", "rollback-1")["version"] == v1
    _, etag = read_manifest(s3, buckets, agent)
    with pytest.raises(
        LiveModelChanged, match=f"live model changed from {v2} to {v1} \\(set by rollback run rollback-1"
    ):
        deploy_run(s3, buckets, agent, run_dir, "waiting")  # what the approval leads to
    assert read_manifest(s3, buckets, agent)[1] == etag
    assert "live model changed" in read_json(s3, buckets.artifacts, run_dir + "deployment.json")["refused"]


def test_a_deploy_retried_after_its_swap_landed_reports_the_truth(s3, buckets):
    agent = "retry-bot"
    run_dir = f"{agent}/runs/dt=2026-02-01/run=retried/"
    write_json(
        s3, buckets.artifacts, run_dir + "decision.json", _decision(s3, buckets, agent, "lightgbm", "2026-02-01")
    )
    first = deploy_run(s3, buckets, agent, run_dir, "retried")
    delete(s3, buckets.artifacts, run_dir + "deployment.json")  # as if the record write had failed after the swap
    _, etag = read_manifest(s3, buckets, agent)
    retry = deploy_run(s3, buckets, agent, run_dir, "retried")
    assert retry["deployed"]
    assert retry["version"] == first["version"]
    assert "had landed on an earlier try" in retry["reason"]
    assert read_manifest(s3, buckets, agent)[1] == etag  # not swapped a second time
    assert read_json(s3, buckets.artifacts, run_dir + "deployment.json")["deployed"]


def test_a_tampered_artifact_is_refused(s3, buckets):
    deploy(s3, buckets, "tamper-bot", _decision(s3, buckets, "tamper-bot", "lightgbm", "2026-02-01"), "run-1")
    manifest, _ = read_manifest(s3, buckets, "tamper-bot")
    put_bytes(s3, buckets.models, manifest["artifact_key"], b"evil")
    with pytest.raises(ArtifactError, match="has sha256 .* the manifest says"):
        fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])


def test_a_retry_after_the_deployed_model_was_replaced_still_reports_that_it_deployed(s3, buckets):
    agent = "superseded-bot"
    first = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-02-01"), "run-1")
    decision = _decision(s3, buckets, agent, "torch_mlp", "2026-02-02")
    landed = deploy(s3, buckets, agent, decision, "run-2")
    rollback(s3, buckets, agent, "previous", "too eager", "rb-1")  # before run-2's deploy task is retried
    _, etag = read_manifest(s3, buckets, agent)
    retry = deploy(s3, buckets, agent, decision, "run-2")
    assert retry["deployed"]
    assert retry["version"] == landed["version"]
    assert retry["reason"].endswith(f"the live model has been {first['version']} since")
    assert read_manifest(s3, buckets, agent)[1] == etag


def test_racing_deploys_judged_against_the_same_manifest_land_exactly_once(s3, buckets):
    agent, rounds = "race-bot", 4
    for day in range(1, rounds + 1):
        decisions = {
            name: _decision(s3, buckets, agent, name, f"2026-04-{day:02d}", f"{name}-{day}".encode())
            for name in ("lightgbm", "torch_mlp")
        }
        _, judged_etag = read_manifest(s3, buckets, agent)
        outcomes = {}

        def worker(name: str, decisions=decisions, outcomes=outcomes, day=day) -> None:
            try:
                outcomes[name] = deploy(s3, buckets, agent, decisions[name], f"{name}-{day}")
            except LiveModelChanged as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=worker, args=(n,)) for n in decisions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        won = [name for name, result in outcomes.items() if isinstance(result, dict) and result["deployed"]]
        lost = [name for name, result in outcomes.items() if isinstance(result, LiveModelChanged)]
        assert len(won) == 1, outcomes
        assert len(lost) == 1, outcomes
        manifest, etag = read_manifest(s3, buckets, agent)
        assert etag != judged_etag
        assert manifest["version"] == outcomes[won[0]]["version"]
    chain = history(read_manifest(s3, buckets, agent)[0])
    assert len(chain) == rounds  # every landed swap is in the chain, none twice
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
        from agent_retraining.release import deploy
        from agent_retraining.storage import buckets_from_env, s3_client_from_env
        deploy.put_if_match = lambda *args, **kwargs: os._exit(137)  # the worker dies right here
        deploy.deploy(s3_client_from_env(), buckets_from_env(), "kill-bot", {decision!r}, "run-2")
    """)
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 137

    assert read_manifest(s3, buckets, "kill-bot")[1] == etag_before
    orphan = [o["key"] for o in list_keys(s3, buckets.models, "kill-bot/models/") if "torch_mlp" in o["key"]]
    assert len(orphan) == 2  # the artifact and its ONNX export were written, but nothing points at them
    result = deploy(s3, buckets, "kill-bot", decision, "run-2-retry")
    assert result["deployed"]
    assert result["previous_version"] == manifest_before["version"]


def _three_versions(s3, buckets, agent):
    return [
        deploy(s3, buckets, agent, _decision(s3, buckets, agent, name, f"2026-03-0{i}"), f"run-{i}")["version"]
        for i, name in enumerate(("lightgbm", "torch_mlp", "logistic_regression"), start=1)
    ]


def test_rollback_to_previous_and_to_a_named_version(s3, buckets):
    versions = _three_versions(s3, buckets, "roll-bot")
    result = rollback(s3, buckets, "roll-bot", "previous", "bad answers in prod", "rollback-1")
    assert (result["version"], result["previous_version"]) == (versions[1], versions[2])
    manifest, _ = read_manifest(s3, buckets, "roll-bot")
    assert manifest["deployed_by"] == "rollback"
    assert manifest["reason"] == "rollback: bad answers in prod"
    assert manifest["run_id"] == "rollback-1"
    assert manifest["history"][0]["rolled_back_by"] == "rollback-1"
    assert rollback(s3, buckets, "roll-bot", versions[0], "go further back", "rollback-2")["version"] == versions[0]
    assert [h["version"] for h in history(read_manifest(s3, buckets, "roll-bot")[0])] == [
        versions[0], versions[1], versions[2], versions[1], versions[0],
    ]  # fmt: skip


def test_two_previous_rollbacks_in_a_row_walk_back_never_forth(s3, buckets):
    versions = _three_versions(s3, buckets, "walk-bot")
    assert rollback(s3, buckets, "walk-bot", "previous", "first step back", "rb-1")["version"] == versions[1]
    assert rollback(s3, buckets, "walk-bot", "previous", "second step back", "rb-2")["version"] == versions[0]
    _, etag = read_manifest(s3, buckets, "walk-bot")
    with pytest.raises(RollbackRefused, match="every earlier version was rolled away from already"):
        rollback(s3, buckets, "walk-bot", "previous", "no further", "rb-3")
    assert read_manifest(s3, buckets, "walk-bot")[1] == etag


def test_a_rollback_retried_after_its_swap_landed_does_not_roll_back_twice(s3, buckets):
    versions = _three_versions(s3, buckets, "reroll-bot")
    first = rollback(s3, buckets, "reroll-bot", "previous", "bad", "rb-once")
    _, etag = read_manifest(s3, buckets, "reroll-bot")
    retry = rollback(s3, buckets, "reroll-bot", "previous", "bad", "rb-once")
    assert first["version"] == retry["version"] == versions[1]
    assert "had landed on an earlier try" in retry["reason"]
    assert read_manifest(s3, buckets, "reroll-bot")[1] == etag


def test_rollback_refuses_a_model_of_another_feature_encoding(s3, buckets):
    agent = "encoding-bot"
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01", encoding="old"), "run-1")
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "torch_mlp", "2026-03-02", encoding="new"), "run-2")
    _, etag = read_manifest(s3, buckets, agent)
    old, new = fingerprint(an_encoding("old")), fingerprint(an_encoding("new"))
    refused = f"trained for feature encoding {old}, the agent's spec now encodes {new}"
    with pytest.raises(RollbackRefused, match=refused):
        rollback(s3, buckets, agent, "previous", "try", "rb-1", encoding_id=new)
    assert read_manifest(s3, buckets, agent)[1] == etag


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
    delete(s3, buckets.models, artifact)
    with pytest.raises(RollbackRefused, match="is missing"):
        rollback(s3, buckets, "refuse-bot", first["version"], "nope", "r3")
    assert read_manifest(s3, buckets, "refuse-bot")[1] == etag
