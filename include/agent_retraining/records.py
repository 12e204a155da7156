"""The records the stages hand each other through S3, typed: the window verdict (`validation.json`, from `validate`),
the decision (`decision.json`, from `evaluate`), the deployment (`deployment.json`, from `deploy`) and the manifest
(the live model entry, its history and canary slot). Each has one JSON form, written and read through the same
type: what a stage writes is checked before it leaves, and what it reads back is checked again, because it comes
from storage and may have been written by an older version or by hand. A record that does not match is refused
with the object and the field, never half-used.

They stay dicts (TypedDicts validated by pydantic), so a record reads the same in a task, a test or a notebook.
Fields added after a record was first written are NotRequired, so older records are still read; fields a newer
version adds are kept (`extra="allow"`).
"""

from __future__ import annotations

import functools
import json
from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one, not typing's, before Python 3.12

from agent_retraining.spec import describe
from agent_retraining.storage import ObjectMissing, get_bytes, write_json

_OPEN = ConfigDict(extra="allow")


@with_config(_OPEN)
class Interval(TypedDict):
    first: str
    last: str


@with_config(_OPEN)
class Rule(TypedDict):
    rule: str
    passed: bool
    detail: str


@with_config(_OPEN)
class LeftOutDay(TypedDict):
    day: str
    why: list[str]


@with_config(_OPEN)
class WindowVerdict(TypedDict):
    """validation.json: the data gate's verdict on a run's window."""

    agent_id: str
    window: Interval
    passed: bool
    failures: list[str]
    warnings: list[str]
    rows: int
    usable_days: list[str]
    left_out: list[LeftOutDay]
    days: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    holdout_first: NotRequired[str]
    rule_counts: NotRequired[dict[str, int]]
    data_docs_key: NotRequired[str | None]
    reward_rates: NotRequired[list[dict[str, Any]]]
    min_usable_days: NotRequired[int]


@with_config(_OPEN)
class PortableArtifact(TypedDict):
    """A model's ONNX export: where it is and its sha256 (docs/serving-contract.md)."""

    key: str
    sha256: str
    size: NotRequired[int]


@with_config(_OPEN)
class TrainedCandidate(TypedDict):
    """A candidate's metadata as `train` wrote it: what `deploy` publishes and the manifest then names."""

    candidate: str
    framework: str
    params: dict[str, Any]
    artifact_key: str
    sha256: str
    encoding_id: str
    trained_on: Interval
    onnx: NotRequired[PortableArtifact]  # runs before portable models have none, and are not deployable
    encoding: NotRequired[dict[str, Any]]


@with_config(_OPEN)
class JudgedAgainst(TypedDict):
    version: str | None
    manifest_etag: str | None


@with_config(_OPEN)
class ChampionNote(TypedDict):
    version: str | None
    note: str
    floors: NotRequired[list[Rule]]
    fails_floors: NotRequired[bool]


@with_config(_OPEN)
class Decision(TypedDict):
    """decision.json: every model's metrics on the holdout, the gate's rules, and whether to deploy."""

    agent_id: str
    window: Interval
    holdout_rows: int
    primary_metric: str
    metrics: dict[str, dict[str, Any]]
    champion: ChampionNote
    judged_against: JudgedAgainst
    winner: TrainedCandidate
    rules: list[Rule]
    deploy: bool
    reason: str
    run_type: str
    left_out_days: NotRequired[list[LeftOutDay] | None]
    positive_rewards: NotRequired[int]
    logging_policy_value: NotRequired[dict[str, Any]]
    policy_value_vs_logging: NotRequired[dict[str, Any]]
    policy_value_vs_champion: NotRequired[dict[str, Any] | None]
    reward: NotRequired[dict[str, Any]]  # type and range: the report shows [0, 1] values in the reward's units
    estimator: NotRequired[dict[str, Any]]  # which estimator decided, and DR's reward model
    policy_value_differences: NotRequired[dict[str, dict[str, Any]]]  # the winner's, by every estimator
    candidates: NotRequired[list[dict[str, Any]]]
    would_deploy: NotRequired[bool]
    alert: NotRequired[bool]
    older_than_live_allowed: NotRequired[bool]
    judged_without_champion: NotRequired[bool]


@with_config(_OPEN)
class Deployment(TypedDict):
    """deployment.json: what `deploy` did with the decision, or why it refused."""

    deployed: bool
    refused: NotRequired[str]
    slot: NotRequired[str]
    version: NotRequired[str | None]
    reason: NotRequired[str | None]


@with_config(_OPEN)
class ModelEntry(TypedDict):
    """A model the manifest names (live, in its history, or in the canary slot): enough to load and verify it."""

    version: str
    framework: str
    artifact_key: str
    sha256: str
    params: dict[str, Any]
    encoding_id: str
    trained_on: Interval
    onnx: NotRequired[PortableArtifact]  # schema_version 2 on; the JSON Schema requires them in what is written
    encoding: NotRequired[dict[str, Any]]
    metrics: NotRequired[dict[str, Any]]
    run_id: NotRequired[str | None]
    reason: NotRequired[str | None]
    deployed_at: NotRequired[str | None]
    deployed_by: NotRequired[str | None]


@with_config(_OPEN)
class PastModel(TypedDict):
    """A model the manifest named before: what an older version recorded may lack fields; a rollback to it checks
    what it needs (artifact, checksum, feature encoding) and refuses it by name."""

    version: str


@with_config(_OPEN)
class Manifest(ModelEntry):
    """manifest.json: the live model, with its history and a canary slot (schema_version 2; older ones are read, for
    the pipeline to judge against and replace; what is written also passes serving/manifest.schema.json)."""

    schema_version: NotRequired[int]
    history: NotRequired[list[PastModel]]
    canary: NotRequired[ModelEntry | None]
    canary_history: NotRequired[list[dict[str, Any]]]


class RecordError(ValueError):
    """A record in storage that is not what its type says: names the object and the first fields that break it."""


@functools.cache
def _adapter(record_type: type) -> TypeAdapter:
    return TypeAdapter(record_type)


def _problem(where: str, record_type: type, error: ValidationError) -> RecordError:
    return RecordError(f"{where} is not a valid {record_type.__name__} record: {describe(error, limit=5)}")


def checked(record_type: type, value: Any, where: str) -> dict:
    """`value` if it is a valid record of `record_type` (or an older form of it); RecordError otherwise."""
    try:
        return _adapter(record_type).validate_python(value)
    except ValidationError as error:
        raise _problem(where, record_type, error) from error


def parse(record_type: type, body: bytes, where: str) -> dict:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise RecordError(f"{where} is not JSON: {error}") from error
    return checked(record_type, value, where)


def write_record(s3, bucket: str, key: str, record_type: type, value: dict) -> dict:
    """Check, then write; returns what was written."""
    record = checked(record_type, value, f"s3://{bucket}/{key} (about to be written)")
    write_json(s3, bucket, key, record)
    return record


def read_record(s3, bucket: str, key: str, record_type: type) -> dict:
    body, _ = get_bytes(s3, bucket, key)
    return parse(record_type, body, f"s3://{bucket}/{key}")


def read_record_or_none(s3, bucket: str, key: str, record_type: type) -> dict | None:
    try:
        return read_record(s3, bucket, key, record_type)
    except ObjectMissing:
        return None
