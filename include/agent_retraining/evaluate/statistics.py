"""The 95% level and a ratio estimator with a delta-method interval whose sums add up a day at a time, clustered
by session (the canary's live comparison); the offline gate's estimators (estimators.py) use the same level, so a
"95%" means the same wherever it is printed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Z_95 = 1.959964


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
