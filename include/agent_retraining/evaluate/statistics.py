"""Off-policy values and their intervals, shared by the offline gate (evaluate), the canary's live comparison and
the data gate's reward-rate rule, so that a "95%" means the same wherever it is printed.

Self-normalised IPS (Swaminathan & Joachims 2015) with delta-method intervals; a ratio estimator whose sums add up
a day at a time (the canary) and may be clustered by session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Z_95 = 1.959964


def policy_influence(weights: np.ndarray, rewards: np.ndarray) -> tuple[float | None, np.ndarray]:
    """Self-normalised IPS value and each row's influence on it (what the delta method's variance sums).

    With all weights 1 this is the logging policy's own, on-policy value: the mean reward.
    """
    total = weights.sum()
    if total == 0:
        return None, np.zeros(len(rewards))
    value = float((weights * rewards).sum() / total)
    return value, len(rewards) * weights * (rewards - value) / total


def interval(value: float, influence: np.ndarray) -> list[float]:
    stderr = float(np.sqrt((influence**2).sum()) / len(influence))
    return [value - Z_95 * stderr, value + Z_95 * stderr]


@dataclass
class RatioEstimate:
    """sum(a) / sum(b) with its delta-method variance, from per-cluster sums that can be added a day at a time.

    A mean reward is a = reward, b = 1; a self-normalised IPS value is a = w * reward,
    b = w. Clusters are rows, or sessions when the rows of a session are not
    independent (a canary routes whole sessions): the variance sums each cluster's
    (A - value * B)^2.
    """

    sums: np.ndarray = field(default_factory=lambda: np.zeros(5))  # A, B, A^2, A B, B^2 over clusters
    clusters: int = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.sums += [a.sum(), b.sum(), (a * a).sum(), (a * b).sum(), (b * b).sum()]
        self.clusters += len(a)

    @property
    def value(self) -> float | None:
        return float(self.sums[0] / self.sums[1]) if self.sums[1] > 0 else None

    @property
    def variance(self) -> float | None:
        if self.value is None or self.clusters < 2:
            return None
        a, b, aa, ab, bb = self.sums
        return float(max(aa - 2 * self.value * ab + self.value**2 * bb, 0.0) / b**2)

    def interval(self) -> list[float] | None:
        if self.variance is None:
            return None
        stderr = np.sqrt(self.variance)
        return [self.value - Z_95 * stderr, self.value + Z_95 * stderr]


def snips(matches: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> dict:
    """Self-normalised IPS value of a deterministic policy, with a delta-method 95% interval.

    `matches` marks the rows where the evaluated policy picks the logged action.
    No matched row means no evidence: the value is None (never NaN, which would
    compare false against everything and could win a selection).
    """
    estimate, weights = RatioEstimate(), matches / propensities
    estimate.add(weights * rewards, weights)
    if estimate.value is None:
        return {"value": None, "ci_low": None, "ci_high": None, "matched_rows": 0}
    low, high = estimate.interval() or (None, None)
    return {"value": estimate.value, "ci_low": low, "ci_high": high, "matched_rows": int(matches.sum())}


def paired_difference(weights_a: np.ndarray, weights_b: np.ndarray, rewards: np.ndarray) -> dict:
    """Policy value of a minus that of b on the same rows, with a 95% delta-method interval.

    Both are estimated from the same logged rows, so their errors are correlated;
    judging the difference row by row is much tighter than comparing two
    separate intervals (or two point estimates, which ignores noise altogether).
    """
    value_a, influence_a = policy_influence(weights_a, rewards)
    value_b, influence_b = policy_influence(weights_b, rewards)
    if value_a is None or value_b is None:
        return {"difference": None, "ci": None}
    difference = value_a - value_b
    return {"difference": difference, "ci": interval(difference, influence_a - influence_b)}
