"""The model manifest: the one object the agent reads to know which model to run.

It is treated like a database commit. Artifacts are written once under a
versioned key (`If-None-Match: *`); the manifest is replaced only with
`If-Match: <etag it was read with>`, and a lost race re-reads and re-decides
instead of overwriting, so concurrent runs can never lose an update or point
the agent at a half-written model.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from agent_retraining.contract import manifest_key, model_prefix, run_prefix, safe_key_part
from agent_retraining.storage import (
    Buckets,
    PreconditionFailed,
    get_bytes,
    is_missing,
    put_if_absent,
    put_if_match,
    read_json,
    write_json,
)
from agent_retraining.training import ARTIFACT_NAMES, LoadedModel, load

HISTORY_LIMIT = 50
CAS_ATTEMPTS = 5


class ArtifactError(Exception):
    """An artifact that is missing or does not match its recorded checksum."""


def read_manifest(s3, buckets: Buckets, agent_id: str) -> tuple[dict | None, str | None]:
    """The live manifest and its ETag, or (None, None) before the first deploy."""
    try:
        body, etag = get_bytes(s3, buckets.models, manifest_key(agent_id))
    except ClientError as error:
        if is_missing(error):
            return None, None
        raise
    return json.loads(body), etag


def fetch_verified(s3, bucket: str, key: str, sha256: str) -> bytes:
    try:
        body, _ = get_bytes(s3, bucket, key)
    except ClientError as error:
        raise ArtifactError(f"artifact s3://{bucket}/{key} cannot be read: {error}") from error
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise ArtifactError(f"artifact s3://{bucket}/{key} has sha256 {actual}, the manifest says {sha256}")
    return body


def load_live_model(s3, buckets: Buckets, manifest: dict) -> LoadedModel:
    """The champion, verified against the manifest's checksum before it is deserialized."""
    body = fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    return load(manifest["framework"], body, manifest["params"])


def model_version(candidate: dict) -> str:
    """Content-addressed: the same artifact bytes for the same day always get the same version."""
    return f"{candidate['trained_on']['last'].replace('-', '')}-{candidate['candidate']}-{candidate['sha256'][:12]}"


def publish_artifact(s3, buckets: Buckets, agent_id: str, candidate: dict) -> tuple[str, str]:
    """Copy the winning candidate into the models bucket once; returns (version, key)."""
    body = fetch_verified(s3, buckets.artifacts, candidate["artifact_key"], candidate["sha256"])
    version = model_version(candidate)
    key = model_prefix(agent_id, version) + ARTIFACT_NAMES[candidate["framework"]]
    try:
        put_if_absent(s3, buckets.models, key, body)
    except PreconditionFailed:
        fetch_verified(s3, buckets.models, key, candidate["sha256"])  # same version: must be the same bytes
    return version, key


# What a manifest entry needs so that the agent (or a rollback) can use the model on its own.
MODEL_FIELDS = (
    "version", "framework", "artifact_key", "artifact_uri", "sha256", "params", "encoding_id", "metrics",
    "trained_on", "run_id", "reason", "deployed_at", "deployed_by", "previous_version",
)  # fmt: skip


class RollbackRefused(Exception):
    """A rollback target that does not exist, or whose artifact is missing or tampered."""


def history(manifest: dict | None) -> list[dict]:
    """Every model the manifest has named, newest first: the live one, then the ones it replaced."""
    if manifest is None:
        return []
    return [{k: manifest.get(k) for k in MODEL_FIELDS}, *manifest.get("history", [])]


def swap(s3, buckets: Buckets, agent_id: str, decide) -> dict:
    """Compare-and-swap the manifest to `decide(live)`'s entry; `decide` runs again after every lost race.

    `decide` sees the manifest as it is now and returns the new model entry, or
    a string saying why nothing should change (which is then returned as such).
    """
    for _ in range(CAS_ATTEMPTS):
        live, etag = read_manifest(s3, buckets, agent_id)
        entry = decide(live)
        if isinstance(entry, str):
            return {"deployed": False, "version": live and live["version"], "reason": entry}
        manifest = {
            "agent_id": agent_id,
            **entry,
            "deployed_at": datetime.now(UTC).isoformat(),
            "previous_version": live["version"] if live else None,
            "history": history(live)[:HISTORY_LIMIT],
        }
        try:
            put_if_match(s3, buckets.models, manifest_key(agent_id), json.dumps(manifest, indent=2).encode(), etag)
        except PreconditionFailed:
            continue  # another run moved the manifest: re-read and decide again
        return {"deployed": True, "version": manifest["version"], "previous_version": manifest["previous_version"]}
    raise RuntimeError(f"manifest of {agent_id} kept changing during {CAS_ATTEMPTS} compare-and-swap attempts")


def deploy(s3, buckets: Buckets, agent_id: str, decision: dict, run_id: str) -> dict:
    """Publish the decision's winner and swap the manifest to it, unless the live model is newer."""
    winner = decision["winner"]
    version, key = publish_artifact(s3, buckets, agent_id, winner)
    metrics = {k: v for k, v in decision["metrics"][winner["candidate"]].items() if k != "slices"}
    entry = {
        "version": version,
        "framework": winner["framework"],
        "artifact_key": key,
        "artifact_uri": f"s3://{buckets.models}/{key}",
        "sha256": winner["sha256"],
        "params": winner["params"],
        "encoding_id": winner["encoding_id"],
        "metrics": metrics,
        "trained_on": winner["trained_on"],
        "run_id": run_id,
        "reason": decision["reason"],
        "deployed_by": "retraining",
    }

    def decide(live: dict | None):
        if live and live["version"] == version:
            return f"{version} is live already"
        older = live and live["trained_on"]["last"] > winner["trained_on"]["last"]
        if older and not decision.get("older_than_live_allowed"):
            return f"live model {live['version']} was trained on newer data ({live['trained_on']['last']})"
        return entry

    return swap(s3, buckets, agent_id, decide)


def rollback(s3, buckets: Buckets, agent_id: str, target: str, reason: str, run_id: str) -> dict:
    """Point the manifest back at an earlier version ("previous" or a version name) by the same swap."""
    if target != "previous":
        safe_key_part(target, "target version")

    def decide(live: dict | None):
        earlier = history(live)[1:]
        if not earlier:
            raise RollbackRefused(f"{agent_id} has no earlier version to roll back to")
        if target == "previous":
            entry = earlier[0]
        else:
            matches = [e for e in earlier if e["version"] == target]
            if not matches:
                known = ", ".join(e["version"] for e in earlier)
                raise RollbackRefused(f"{target} is not an earlier version of {agent_id} (known: {known})")
            entry = matches[0]
        try:
            fetch_verified(s3, buckets.models, entry["artifact_key"], entry["sha256"])
        except ArtifactError as exc:
            raise RollbackRefused(f"refusing to roll back to {entry['version']}: {exc}") from exc
        return {**entry, "run_id": run_id, "reason": f"rollback: {reason}", "deployed_by": "rollback"}

    return swap(s3, buckets, agent_id, decide)


def deploy_run(s3, buckets: Buckets, agent_id: str, day, run_id: str) -> dict:
    """Deploy what the run's decision record chose, and record what happened next to it."""
    prefix = run_prefix(agent_id, day)
    result = deploy(s3, buckets, agent_id, read_json(s3, buckets.artifacts, prefix + "decision.json"), run_id)
    write_json(s3, buckets.artifacts, prefix + "deployment.json", result)
    return result
