"""Model artifacts: written once under a content-addressed version, read back only if their sha256 is the one
recorded, so a lost or tampered file is refused before it is deserialized (and nothing is ever unpickled)."""

from __future__ import annotations

import hashlib

from agent_retraining.contract import model_prefix
from agent_retraining.models.candidates import for_framework
from agent_retraining.models.training import ONNX_NAME, LoadedModel, load
from agent_retraining.storage import Buckets, ObjectMissing, PreconditionFailed, get_bytes, put_if_absent


class ArtifactError(Exception):
    """An artifact that is missing or does not match its recorded checksum."""


def fetch_verified(s3, bucket: str, key: str, sha256: str) -> bytes:
    """The artifact's bytes, only if they are the ones recorded; S3 errors other than absence propagate."""
    try:
        body, _ = get_bytes(s3, bucket, key)
    except ObjectMissing as error:
        raise ArtifactError(f"artifact s3://{bucket}/{key} is missing ({error.code or error.status})") from error
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise ArtifactError(f"artifact s3://{bucket}/{key} has sha256 {actual}, the manifest says {sha256}")
    return body


def load_live_model(s3, buckets: Buckets, manifest: dict) -> LoadedModel:
    """The champion, verified against the manifest's checksum before it is deserialized."""
    body = fetch_verified(s3, buckets.models, manifest["artifact_key"], manifest["sha256"])
    return load(manifest["framework"], body, manifest["params"])


def verify_published(s3, buckets: Buckets, entry: dict) -> None:
    """ArtifactError unless a manifest entry's files in the models bucket are the ones it records: the native
    artifact, and its ONNX export when the entry has one (entries from before portable models do not)."""
    fetch_verified(s3, buckets.models, entry["artifact_key"], entry["sha256"])
    if entry.get("onnx"):
        fetch_verified(s3, buckets.models, entry["onnx"]["key"], entry["onnx"]["sha256"])


def model_version(candidate: dict) -> str:
    """Content-addressed: the same artifact bytes for the same day always get the same version."""
    return f"{candidate['trained_on']['last'].replace('-', '')}-{candidate['candidate']}-{candidate['sha256'][:12]}"


def _publish(s3, buckets: Buckets, source_key: str, sha256: str, key: str) -> None:
    body = fetch_verified(s3, buckets.artifacts, source_key, sha256)
    try:
        put_if_absent(s3, buckets.models, key, body)
    except PreconditionFailed:
        fetch_verified(s3, buckets.models, key, sha256)  # same version: must be the same bytes


def publish_artifact(s3, buckets: Buckets, agent_id: str, candidate: dict) -> tuple[str, str, str]:
    """Copy the winning candidate's native artifact and its ONNX export into the models bucket once; returns
    (version, native key, ONNX key)."""
    version = model_version(candidate)
    prefix = model_prefix(agent_id, version)
    key, onnx_key = prefix + for_framework(candidate["framework"]).artifact_name, prefix + ONNX_NAME
    _publish(s3, buckets, candidate["artifact_key"], candidate["sha256"], key)
    _publish(s3, buckets, candidate["onnx"]["key"], candidate["onnx"]["sha256"], onnx_key)
    return version, key, onnx_key
