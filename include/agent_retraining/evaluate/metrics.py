"""What one model scores on the holdout: accuracy, calibration, skill against the base rate, its greedy policy's
off-policy value, overall and per slice."""

from __future__ import annotations

import numpy as np

from agent_retraining.contract import context_column
from agent_retraining.evaluate.statistics import snips
from agent_retraining.spec import AgentSpec

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "log_loss_skill": True,
    "brier_skill": True,
    "log_loss": False,
    "brier": False,
    "calibration_error": False,
    "policy_value": True,
}


def calibration_curve(labels: np.ndarray, predictions: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean prediction against the observed reward rate in each non-empty equal-width probability bin."""
    which = np.minimum((predictions * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            curve.append({"predicted": float(predictions[mask].mean()), "observed": float(labels[mask].mean()),
                          "rows": int(mask.sum())})  # fmt: skip
    return curve


def calibration_error(curve: list[dict]) -> float:
    """Expected calibration error: the bins' gaps between prediction and outcome, weighted by their rows."""
    rows = sum(point["rows"] for point in curve)
    return float(sum(point["rows"] * abs(point["predicted"] - point["observed"]) for point in curve) / rows)


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


def greedy_matches(per_action: np.ndarray, logged: np.ndarray) -> np.ndarray:
    """Rows where the model's greedy policy picks the action that was logged: the only rows that value it."""
    return per_action.argmax(axis=1) == logged


def model_metrics(per_action: np.ndarray, logged, rewards, propensities, masks) -> dict:
    """Every metric of one model on the holdout rows, overall and per slice, from its scores of every action.

    A metric the holdout cannot measure (AUC with one reward class) is None, and the gate says why.
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    predicted = np.clip(per_action[np.arange(len(logged)), logged], 1e-7, 1 - 1e-7)
    policy = snips(greedy_matches(per_action, logged), rewards, propensities)
    curve = calibration_curve(rewards, predicted)
    loss, brier = float(log_loss(rewards, predicted, labels=[0, 1])), float(brier_score_loss(rewards, predicted))
    base_rate = float(np.clip(rewards.mean(), 1e-7, 1 - 1e-7))  # the predictor that knows only the holdout's rate
    base_loss = -(base_rate * np.log(base_rate) + (1 - base_rate) * np.log(1 - base_rate))
    one_class = not 0 < rewards.sum() < len(rewards)
    return {
        "roc_auc": None if one_class else float(roc_auc_score(rewards, predicted)),
        "log_loss_skill": None if one_class else float(1 - loss / base_loss),
        "brier_skill": None if one_class else float(1 - brier / (base_rate * (1 - base_rate))),
        "log_loss": loss,
        "brier": brier,
        "calibration_error": calibration_error(curve),
        "calibration_curve": curve,
        "policy_value": policy["value"],
        "policy_value_ci": [policy["ci_low"], policy["ci_high"]],
        "policy_matched_rows": policy["matched_rows"],
        "slices": _slice_metrics(rewards, predicted, masks),
    }
