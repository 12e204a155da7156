"""The model manifest, read: the one object the agent reads to know which model to run, and what every run
judges against. Only release/deploy.py writes it, through one compare-and-swap."""

from __future__ import annotations

from agent_retraining.contract import manifest_key
from agent_retraining.records import Manifest, parse
from agent_retraining.storage import Buckets, ObjectMissing, get_bytes

HISTORY_LIMIT = 50


def read_manifest(s3, buckets: Buckets, agent_id: str) -> tuple[dict | None, str | None]:
    """The live manifest and its ETag, or (None, None) before the first deploy; RecordError for one that is not a
    manifest (nothing is judged against, or swapped over, a manifest nobody can read)."""
    key = manifest_key(agent_id)
    try:
        body, etag = get_bytes(s3, buckets.models, key)
    except ObjectMissing:
        return None, None
    return parse(Manifest, body, f"s3://{buckets.models}/{key}"), etag


def judged_against(live: dict | None, etag: str | None) -> dict:
    """What a decision records of the manifest it was judged against; `deploy` swaps only while it still holds."""
    return {"version": live["version"] if live else None, "manifest_etag": etag}


# The metrics a manifest entry keeps of its decision (slices and curves stay in the run's decision.json).
MANIFEST_METRICS = ("roc_auc", "log_loss_skill", "brier_skill", "log_loss", "brier", "calibration_error",
                    "policy_value", "policy_value_ci", "policy_matched_rows")  # fmt: skip
# What a manifest entry needs so that the agent (or a rollback) can use the model on its own.
MODEL_FIELDS = (
    "version", "framework", "artifact_key", "artifact_uri", "sha256", "params", "encoding_id", "encoding", "onnx",
    "metrics", "trained_on", "run_id", "reason", "deployed_at", "deployed_by", "previous_version", "rolled_back_by",
)  # fmt: skip


def history(manifest: dict | None) -> list[dict]:
    """Every model the manifest has named, newest first: the live one, then the ones it replaced."""
    if manifest is None:
        return []
    return [{k: manifest.get(k) for k in MODEL_FIELDS}, *manifest.get("history", [])]
