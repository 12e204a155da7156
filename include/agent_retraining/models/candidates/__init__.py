"""The candidate registry: every model family a spec may name, by name. Adding one is its own file here, a line
below and its test; the spec's `candidates` and `training.hyperparameters` accept exactly what is registered."""

from __future__ import annotations

from agent_retraining.models.candidates.base import Candidate
from agent_retraining.models.candidates.hist_gradient_boosting import HistGradientBoosting
from agent_retraining.models.candidates.lightgbm import LightGBM
from agent_retraining.models.candidates.logistic_regression import LogisticRegression
from agent_retraining.models.candidates.torch_mlp import TorchMLP

CANDIDATES: dict[str, Candidate] = {
    c.name: c for c in (LogisticRegression(), LightGBM(), TorchMLP(), HistGradientBoosting())
}
BY_FRAMEWORK: dict[str, Candidate] = {c.framework: c for c in CANDIDATES.values()}
CANDIDATE_NAMES = tuple(CANDIDATES)


def candidate(name: str) -> Candidate:
    try:
        return CANDIDATES[name]
    except KeyError:
        raise ValueError(f"unknown candidate '{name}' (known: {', '.join(CANDIDATES)})") from None


def for_framework(framework: str) -> Candidate:
    """The candidate that reads artifacts of this format (metadata and manifests record the format)."""
    try:
        return BY_FRAMEWORK[framework]
    except KeyError:
        raise ValueError(f"unknown framework '{framework}'") from None
