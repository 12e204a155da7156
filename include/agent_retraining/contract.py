"""Log event contract v1 and the object layout agents write to.

This module is the single place that knows the shape of a log event and where
logs, run artifacts and models live in S3, so the simulator, the snapshot and
the agent client cannot disagree about it.
"""

from __future__ import annotations

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
SUCCESS_MARKER = "_SUCCESS"
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


def success_key(agent_id: str, day: date) -> str:
    return day_prefix(agent_id, day) + SUCCESS_MARKER


def run_prefix(agent_id: str, day: date) -> str:
    """Artifacts of the run that owns `day`; keyed by the day so a re-run overwrites, not duplicates."""
    return f"{safe_key_part(agent_id, 'agent id')}/runs/dt={day.isoformat()}/"


def quarantine_prefix(agent_id: str, day: date) -> str:
    """Copies of rejected lines and objects of one day of logs, with their reasons."""
    return f"{safe_key_part(agent_id, 'agent id')}/quarantine/dt={day.isoformat()}/"


def manifest_key(agent_id: str) -> str:
    return f"{safe_key_part(agent_id, 'agent id')}/manifest.json"


def model_prefix(agent_id: str, version: str) -> str:
    return f"{safe_key_part(agent_id, 'agent id')}/models/{safe_key_part(version, 'model version')}/"
