"""Evaluation and the deploy decision: challengers against the champion on the same rows.

Offline accuracy alone does not say whether the agent will act better: the logs
were produced by the agent's own policy. So besides AUC, log loss, Brier score
and calibration, each model's greedy policy is valued off-policy from the
logged propensities (self-normalised IPS), and the gate compares that too.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from agent_retraining.contract import context_column, run_prefix
from agent_retraining.features import action_indices, encode_context, encoding_id
from agent_retraining.manifest import ArtifactError, fetch_verified, load_live_model, read_manifest
from agent_retraining.snapshot import Window
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, read_parquet, write_json
from agent_retraining.training import LoadedModel, action_scores, load

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "log_loss": False,
    "brier": False,
    "calibration_error": False,
    "policy_value": True,
}
Z_95 = 1.959964


def calibration_error(labels: np.ndarray, predictions: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    which = np.minimum((predictions * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(predictions[mask].mean() - labels[mask].mean())
    return float(total)


def snips(matches: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> dict:
    """Self-normalised IPS value of a deterministic policy, with a delta-method 95% interval.

    `matches` marks the rows where the evaluated policy picks the logged action.
    """
    weights = matches.astype(float) / propensities
    total = weights.sum()
    if total == 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "matched_rows": 0}
    value = float((weights * rewards).sum() / total)
    stderr = float(np.sqrt((weights**2 * (rewards - value) ** 2).sum()) / total)
    return {
        "value": value,
        "ci_low": value - Z_95 * stderr,
        "ci_high": value + Z_95 * stderr,
        "matched_rows": int(matches.sum()),
    }


def slice_masks(spec: AgentSpec, holdout, logged: np.ndarray) -> dict[str, np.ndarray]:
    """Holdout rows of each logged action and each value of the spec's slice features, when there are enough."""
    import pyarrow.compute as pc

    masks = {f"action={action}": logged == i for i, action in enumerate(spec.actions)}
    for name in spec.gate.slices.features:
        column = holdout.column(context_column(name))
        for value in sorted(pc.unique(column).drop_null().to_pylist(), key=str):
            masks[f"{name}={value}"] = pc.fill_null(pc.equal(column, value), False).to_numpy(zero_copy_only=False)
    return {name: mask for name, mask in masks.items() if mask.sum() >= spec.gate.slices.min_rows}


def _slice_metrics(rewards: np.ndarray, predicted: np.ndarray, masks: dict[str, np.ndarray]) -> dict:
    from sklearn.metrics import log_loss, roc_auc_score

    result = {}
    for name, mask in masks.items():
        labels = rewards[mask]
        both_classes = 0 < labels.sum() < len(labels)
        result[name] = {
            "rows": int(mask.sum()),
            "roc_auc": float(roc_auc_score(labels, predicted[mask])) if both_classes else None,
            "log_loss": float(log_loss(labels, predicted[mask], labels=[0, 1])),
        }
    return result


def model_metrics(per_action: np.ndarray, logged, rewards, propensities, masks) -> dict:
    """Every metric of one model on the holdout rows, overall and per slice, from its scores of every action."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    predicted = np.clip(per_action[np.arange(len(logged)), logged], 1e-7, 1 - 1e-7)
    policy = snips(per_action.argmax(axis=1) == logged, rewards, propensities)
    return {
        "roc_auc": float(roc_auc_score(rewards, predicted)),
        "log_loss": float(log_loss(rewards, predicted, labels=[0, 1])),
        "brier": float(brier_score_loss(rewards, predicted)),
        "calibration_error": calibration_error(rewards, predicted),
        "policy_value": policy["value"],
        "policy_value_ci": [policy["ci_low"], policy["ci_high"]],
        "policy_matched_rows": policy["matched_rows"],
        "slices": _slice_metrics(rewards, predicted, masks),
    }


def _better(metric: str, a: float, b: float) -> bool:
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def select_winner(spec: AgentSpec, metrics: dict[str, dict]) -> str:
    """Best candidate by the spec's primary metric; ties go to the earlier candidate in the spec."""
    primary = spec.gate.primary_metric
    best = None
    for name in spec.candidates:
        if name in metrics and (best is None or _better(primary, metrics[name][primary], metrics[best][primary])):
            best = name
    return best


def _rule(name: str, passed: bool, detail: str) -> dict:
    return {"rule": name, "passed": bool(passed), "detail": detail}


def _at_least(metric: str, value: float, bound: float, how: str) -> dict:
    """A rule that `value` is no worse than `bound`, in the metric's own direction."""
    relation = ">=" if HIGHER_IS_BETTER[metric] else "<="
    passed = value >= bound if HIGHER_IS_BETTER[metric] else value <= bound
    return _rule(f"{how}_{metric}", passed, f"{metric} {value:.4f} {relation} {bound:.4f}")


@dataclass(frozen=True)
class RunContext:
    """What about the Airflow run itself the gate must know."""

    run_type: str = "manual"  # "scheduled", "manual", "backfill", ...
    allow_older_than_live: bool = False  # operator override, honoured for manual runs only
    dry_run: bool = False  # evaluate and report, never deploy

    @property
    def older_than_live_allowed(self) -> bool:
        return self.allow_older_than_live and self.run_type == "manual"


def gate_rules(
    spec: AgentSpec, challenger: dict, champion: dict | None, live: dict | None, window: Window, run: RunContext
) -> list:
    """Each rule of the gate with the numbers it compared; deploy only if all pass."""
    floors = spec.gate.floors
    rules = [
        _rule("data_validated", True, "the snapshot passed the data gate"),
        _at_least("roc_auc", challenger["roc_auc"], floors.min_roc_auc, "floor"),
        _at_least("log_loss", challenger["log_loss"], floors.max_log_loss, "floor"),
        _at_least("brier", challenger["brier"], floors.max_brier, "floor"),
        _at_least("calibration_error", challenger["calibration_error"], floors.max_calibration_error, "floor"),
    ]
    if run.run_type == "backfill" or run.dry_run:
        what = "a backfill run" if run.run_type == "backfill" else "a dry run"
        rules.append(_rule("run_may_move_manifest", False, f"{what} records the decision it would take, moves nothing"))
    if live is not None:
        newest = live["trained_on"]["last"]
        detail = f"trained on data up to {window.last}, the live model up to {newest}"
        if run.older_than_live_allowed:
            detail += "; waived by the operator for this manual run (allow_older_than_live)"
        rules.append(
            _rule("not_older_than_live", window.last.isoformat() >= newest or run.older_than_live_allowed, detail)
        )
    if champion is None:
        return rules
    for metric, allowed in spec.gate.max_regression.model_dump().items():
        bound = champion[metric] - allowed if HIGHER_IS_BETTER[metric] else champion[metric] + allowed
        rules.append(_at_least(metric, challenger[metric], bound, "no_regression"))
    margin = spec.gate.policy_value_margin
    rules.append(
        _rule(
            "policy_value",
            challenger["policy_value"] >= champion["policy_value"] - margin,
            f"policy value {challenger['policy_value']:.4f} >= champion {champion['policy_value']:.4f} - {margin}",
        )
    )
    drop = spec.gate.slices.max_auc_drop
    for name, mine in challenger["slices"].items():
        theirs = champion["slices"].get(name)
        if theirs and mine["roc_auc"] is not None and theirs["roc_auc"] is not None:
            rules.append(
                _rule(
                    f"slice_roc_auc:{name}",
                    mine["roc_auc"] >= theirs["roc_auc"] - drop,
                    f"{name} ({mine['rows']} rows): roc_auc {mine['roc_auc']:.4f} >= champion "
                    f"{theirs['roc_auc']:.4f} - {drop}",
                )
            )
    return rules


def _champion(s3, buckets: Buckets, spec: AgentSpec, live: dict | None) -> tuple[LoadedModel | None, str]:
    if live is None:
        return None, "no model is live yet (first deploy): the floors alone decide"
    if live.get("encoding_id") != encoding_id(spec):
        return None, f"live model {live['version']} uses another feature encoding: the floors alone decide"
    try:
        return load_live_model(s3, buckets, live), f"champion is the live model {live['version']}"
    except (ArtifactError, ValueError, KeyError) as exc:
        return None, f"live model {live['version']} cannot be loaded ({exc}): the floors alone decide"


def evaluate_and_decide(
    s3,
    buckets: Buckets,
    spec: AgentSpec,
    window: Window,
    holdout_key: str,
    candidates: list[dict],
    run: RunContext = RunContext(),
) -> dict:
    """Score every candidate and the champion on the holdout, apply the gate, store the decision."""
    holdout = read_parquet(s3, buckets.artifacts, holdout_key)
    context = encode_context(spec, holdout)
    logged = action_indices(spec, holdout)
    rewards = holdout.column("reward").to_numpy().astype(float)
    propensities = holdout.column("propensity").to_numpy()
    masks = slice_masks(spec, holdout, logged)

    models = {}
    for candidate in candidates:
        body = fetch_verified(s3, buckets.artifacts, candidate["artifact_key"], candidate["sha256"])
        models[candidate["candidate"]] = load(candidate["framework"], body, candidate["params"])
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    champion_model, champion_note = _champion(s3, buckets, spec, live)
    if champion_model:
        models["champion"] = champion_model
    scores = action_scores(spec, context, list(models.values()))
    metrics = {
        name: model_metrics(per_action, logged, rewards, propensities, masks)
        for name, per_action in zip(models, scores, strict=True)
    }
    champion = metrics.get("champion")

    winner_name = select_winner(spec, metrics)
    winner = next(c for c in candidates if c["candidate"] == winner_name)
    rules = gate_rules(spec, metrics[winner_name], champion, live, window, run)
    failed = [r for r in rules if not r["passed"]]
    judged = [r for r in failed if r["rule"] != "run_may_move_manifest"]
    logging_value = snips(np.ones(len(rewards), bool), rewards, propensities)
    if judged:
        reason = (
            f"keep the champion: {winner_name} failed {', '.join(r['rule'] + ' (' + r['detail'] + ')' for r in judged)}"
        )
    elif champion:
        reason = f"deploy {winner_name}: it passed every rule against the floors and champion {live['version']}"
    else:
        reason = f"deploy {winner_name}: {champion_note}, and it passed every floor"
    if run.run_type == "backfill" or run.dry_run:
        what = "backfill" if run.run_type == "backfill" else "dry run"
        reason = f"{what}, manifest left alone; the decision would have been: {reason}"
    if run.older_than_live_allowed:
        logging.getLogger(__name__).warning("allow_older_than_live is set: the not_older_than_live rule is waived")
    decision = {
        "agent_id": spec.agent_id,
        "window": {"first": window.first.isoformat(), "last": window.last.isoformat()},
        "holdout_rows": holdout.num_rows,
        "primary_metric": spec.gate.primary_metric,
        "metrics": metrics,
        "logging_policy_value": logging_value,
        "champion": {"version": live["version"] if champion else None, "note": champion_note},
        "winner": winner,
        "rules": rules,
        "deploy": not failed,
        "would_deploy": not judged,
        "older_than_live_allowed": run.older_than_live_allowed,
        "run_type": run.run_type,
        "reason": reason,
    }
    write_json(s3, buckets.artifacts, run_prefix(spec.agent_id, window.last) + "decision.json", decision)
    return decision
