"""What one model scores on the holdout: accuracy, calibration, skill against the base rate, its greedy policy's
off-policy value by every estimator, overall and per slice.

Labels are rewards on [0, 1]: 0 or 1 for a binary reward, any fraction for a graded one. Log loss (cross-entropy)
and Brier score are defined for both; ROC AUC only where every label is 0 or 1; RMSE and MAE are in the reward's
own units.
"""

from __future__ import annotations

import numpy as np

from agent_retraining.contract import context_column
from agent_retraining.evaluate.estimators import LoggedRows, PolicyEstimate
from agent_retraining.models.candidates.base import cross_entropy
from agent_retraining.spec import AgentSpec, Reward

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "log_loss_skill": True,
    "brier_skill": True,
    "log_loss": False,
    "brier": False,
    "calibration_error": False,
    "rmse": False,
    "mae": False,
    "policy_value": True,
}
EPSILON = 1e-7  # predictions are clipped to [EPSILON, 1 - EPSILON] before a logarithm


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


def _binary(labels: np.ndarray) -> bool:
    """Both classes present and nothing else: where ROC AUC means something."""
    return bool(np.isin(labels, (0.0, 1.0)).all()) and 0 < labels.sum() < len(labels)


def _slice_metrics(rewards: np.ndarray, predicted: np.ndarray, masks: dict[str, np.ndarray]) -> dict:
    from sklearn.metrics import roc_auc_score

    result = {}
    for name, mask in masks.items():
        labels = rewards[mask]
        result[name] = {
            "rows": int(mask.sum()),
            "roc_auc": float(roc_auc_score(labels, predicted[mask])) if _binary(labels) else None,
            "log_loss": cross_entropy(labels, predicted[mask]),
        }
    return result


def greedy_matches(per_action: np.ndarray, logged: np.ndarray) -> np.ndarray:
    """Rows where the model's greedy policy picks the action that was logged: the only rows that IPS values it on."""
    return per_action.argmax(axis=1) == logged


def model_metrics(per_action: np.ndarray, rows: LoggedRows, reward: Reward, estimates: dict[str, PolicyEstimate],
                  estimator: str, masks) -> dict:  # fmt: skip
    """Every metric of one model on the holdout rows, overall and per slice, from its scores of every action;
    `policy_value` is the gate's estimator's, `policy_values` every estimator's.

    A metric the holdout cannot measure (AUC with one reward class, or a graded reward) is None, and the gate
    says why.
    """
    from sklearn.metrics import roc_auc_score

    rewards = rows.rewards
    predicted = np.clip(per_action[np.arange(len(rows)), rows.logged], EPSILON, 1 - EPSILON)
    values = {name: estimate.summary() for name, estimate in estimates.items()}
    curve = calibration_curve(rewards, predicted)
    loss, brier = cross_entropy(rewards, predicted), float(((predicted - rewards) ** 2).mean())
    base_rate = float(np.clip(rewards.mean(), EPSILON, 1 - EPSILON))  # the predictor that knows only the rate
    base_loss, base_brier = cross_entropy(rewards, np.full(len(rows), base_rate)), float(rewards.var())
    constant = not base_brier > 0
    units = reward.in_units(1.0, difference=True)
    return {
        "roc_auc": float(roc_auc_score(rewards, predicted)) if _binary(rewards) else None,
        "log_loss_skill": None if constant else float(1 - loss / base_loss),
        "brier_skill": None if constant else float(1 - brier / base_brier),
        "log_loss": loss,
        "brier": brier,
        "rmse": float(np.sqrt(brier)) * units,
        "mae": float(np.abs(predicted - rewards).mean()) * units,
        "calibration_error": calibration_error(curve),
        "calibration_curve": curve,
        "policy_value": values[estimator]["value"],
        "policy_value_ci": values[estimator]["ci"],
        "policy_matched_rows": values[estimator]["matched_rows"],
        "policy_values": values,
        "slices": _slice_metrics(rewards, predicted, masks),
    }
