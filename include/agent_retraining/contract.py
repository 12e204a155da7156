"""Log event contract (v1: the reward in the decision's event; v2 adds delayed feedback) and the object layout
agents write to.

This module is the single place that knows the shape of a log event and where
logs, run artifacts and models live in S3, so the simulator, the log reader
and the agent client cannot disagree about it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

# field -> (arrow type name, nullable). `context` is an object checked per feature.
EVENT_FIELDS: dict[str, tuple[str, bool]] = {
    "event_id": ("string", False),
    "ts": ("timestamp", False),
    "agent_id": ("string", False),
    "session_id": ("string", False),
    "model_version": ("string", True),
    "context": ("object", False),
    "action": ("string", False),
    "propensity": ("double", False),
    "reward": ("double", False),
}
# Contract v2: a feedback record, one outcome for one logged decision, written when the outcome is known, under the
# day of the decision it answers (feedback_day_prefix). The reward of a v2 decision event may be null.
FEEDBACK_FIELDS: dict[str, str] = {"event_id": "string", "reward": "double", "ts": "timestamp"}
SUCCESS_MARKER = "_SUCCESS"
# The manifest's shape (include/agent_retraining/serving/manifest.schema.json). A reader that meets a higher number
# does not guess: the agent's client keeps its current model. A manifest without the field was written before it
# existed and is version 1; version 2 added the ONNX export and the encoding to every model entry.
MANIFEST_SCHEMA_VERSION = 2
LATEST_RUN = "latest.json"  # in each day's runs folder: which run of the day finished last
CONTEXT_PREFIX = "ctx_"

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$")


def safe_key_part(value: str, what: str) -> str:
    """Refuse anything that could escape its prefix in an object key (`..`, `/`)."""
    if not isinstance(value, str) or not _SAFE_PART.match(value) or ".." in value:
        raise ValueError(f"{what} {value!r} is not allowed in an object key")
    return value


def context_column(feature: str) -> str:
    """Snapshot column holding one context feature (flattened for columnar checks)."""
    return f"{CONTEXT_PREFIX}{feature}"


def day_prefix(agent_id: str, day: date) -> str:
    return f"{safe_key_part(agent_id, 'agent id')}/dt={day.isoformat()}/"


def feedback_day_prefix(agent_id: str, day: date) -> str:
    """The feedback records answering decisions of `day` (the decision's UTC date, not the feedback's)."""
    return f"{safe_key_part(agent_id, 'agent id')}/feedback/dt={day.isoformat()}/"


def success_key(agent_id: str, day: date) -> str:
    return day_prefix(agent_id, day) + SUCCESS_MARKER


def runs_prefix(agent_id: str) -> str:
    """Every run of the agent, one folder per day under here."""
    return f"{safe_key_part(agent_id, 'agent id')}/runs/"


def day_runs_prefix(agent_id: str, day: date) -> str:
    """Every run that owned `day` (scheduled, manual, backfill, dry run) has a folder under here."""
    return runs_prefix(agent_id) + f"dt={day.isoformat()}/"


def run_folder_name(run_id: str) -> str:
    """An object-key-safe name for an Airflow run id, unique per run id.

    Run ids hold `:` and `+` (`manual__2026-11-29T00:00:00+00:00`); they are kept
    readable, and a hash of the exact id keeps two ids that read alike apart.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:80].strip("._-") or "run"
    return f"run={readable}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def run_prefix(agent_id: str, day: date, run_id: str) -> str:
    """Records of one Airflow run: runs of the same day never share them; re-running the same run rewrites them."""
    return day_runs_prefix(agent_id, day) + run_folder_name(run_id) + "/"


def latest_run_key(agent_id: str, day: date) -> str:
    """A small pointer to the folder of the latest run of `day` to finish, for readers that want just that."""
    return day_runs_prefix(agent_id, day) + LATEST_RUN


def validated_days_prefix(agent_id: str, day: date | None = None) -> str:
    """Every validated copy of the agent's days, or of one day (one folder per fingerprint under it)."""
    return f"{safe_key_part(agent_id, 'agent id')}/days/" + (f"dt={day.isoformat()}/" if day else "")


def validated_day_prefix(agent_id: str, day: date, fingerprint: str) -> str:
    """One day of logs as the data gate judged it, for one fingerprint of its objects and the gate's settings.

    Written once and never changed: a day whose objects or settings change gets a new fingerprint, so a run
    can only ever reuse a verdict on exactly the bytes and rules it would judge itself.
    """
    return validated_days_prefix(agent_id, day) + safe_key_part(fingerprint, "fingerprint") + "/"


def quarantine_prefix(agent_id: str, day: date) -> str:
    """Copies of rejected lines and objects of one day of logs, with their reasons."""
    return f"{safe_key_part(agent_id, 'agent id')}/quarantine/dt={day.isoformat()}/"


def manifest_key(agent_id: str) -> str:
    return f"{safe_key_part(agent_id, 'agent id')}/manifest.json"


def model_prefix(agent_id: str, version: str) -> str:
    return f"{safe_key_part(agent_id, 'agent id')}/models/{safe_key_part(version, 'model version')}/"


def canary_verdict_key(agent_id: str, version: str, day: date, run_id: str) -> str:
    """One verdict of the promotion DAG on one canary, for the run that judged it (every verdict is kept)."""
    canary = f"{safe_key_part(agent_id, 'agent id')}/canary/{safe_key_part(version, 'model version')}/"
    return canary + f"dt={day.isoformat()}/{run_folder_name(run_id)}.json"
