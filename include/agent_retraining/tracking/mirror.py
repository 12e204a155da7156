"""What the DAG tasks mirror into MLflow, read from the run's own records and the manifest after a swap.

The manifest is the source of truth, so the mirror runs after the decision and after each swap, never before,
and whatever MLflow answers is only recorded: in the task's log and, for a retraining run, in the run's
`mlflow.json` beside its report, which the Agent models page shows. MLflow being off is no outcome at all.
"""

from __future__ import annotations

import logging

from agent_retraining.manifest import read_manifest
from agent_retraining.storage import Buckets, read_json_or_none, write_json
from agent_retraining.tracking.mlflow import MlflowSettings, TrackingOutcome, move_aliases, record_night

log = logging.getLogger(__name__)

MLFLOW_RECORD = "mlflow.json"  # in the run's folder: what MLflow answered for this run


def _logged(outcome: TrackingOutcome) -> TrackingOutcome:
    if outcome.ok:
        log.info("MLflow %s: %s", outcome.what, outcome.details)
    else:
        log.warning("MLflow %s failed, nothing else changes: %s", outcome.what, outcome.error)
    return outcome


def _aliases(settings: MlflowSettings, s3, buckets: Buckets, agent_id: str) -> TrackingOutcome:
    manifest, _ = read_manifest(s3, buckets, agent_id)
    return _logged(move_aliases(settings, agent_id, manifest, buckets.models))


def mirror_aliases(s3, buckets: Buckets, agent_id: str) -> TrackingOutcome | None:
    """After a swap: the registered model's `champion` (and `challenger`) aliases follow the manifest."""
    settings = MlflowSettings.from_env()
    return None if settings is None else _aliases(settings, s3, buckets, agent_id)


def mirror_night(s3, buckets: Buckets, agent_id: str, day: str, run_dir: str, run_id: str,
                 trained: list[dict]) -> list[dict]:  # fmt: skip
    """A retraining run's candidates and decision as MLflow runs, and the aliases when it moved the manifest; the
    outcomes are kept in the run's folder for the page."""
    settings = MlflowSettings.from_env()
    if settings is None:
        return []
    decision = read_json_or_none(s3, buckets.artifacts, run_dir + "decision.json")
    if decision is None:  # the run ended before a decision: nothing to mirror
        return []
    deployment = read_json_or_none(s3, buckets.artifacts, run_dir + "deployment.json")
    outcomes = [_logged(record_night(settings, agent_id, day, run_id, decision, trained, buckets.artifacts,
                                     deployment))]  # fmt: skip
    if deployment and deployment.get("deployed"):
        outcomes.append(_aliases(settings, s3, buckets, agent_id))
    told = [outcome.as_dict() for outcome in outcomes]
    write_json(s3, buckets.artifacts, run_dir + MLFLOW_RECORD, told)
    return told
