"""Off-policy values of a deterministic (greedy) policy on the holdout, one class per estimator on a common base,
as Open Bandit Pipeline splits them; the gate (decide.py) chooses one by the spec's `gate.policy_value.estimator`.

Every estimator returns its value and each row's influence on it (the delta method's per-row term), so that the
paired difference of two policies on the same rows, and its 95% interval, are computed the same way whichever
estimator valued them. Rewards are on the [0, 1] scale (spec.Reward.scaled).

The paired difference's variance, on which the gate decides, is floored row by row (`standard_error`); one
policy's own interval, which the report shows but no rule judges, is the plain delta method's. A policy that
disagrees with the one that logged is judged, where it disagrees, by the few exploration rows that happened to log
its action, each weighted by its inverse propensity (50 at 2% exploration). A row's influence is its weight times
how far its reward lies from the value, so when those few rows all earned the reward, their influences are all small
and the interval collapses just when the estimate is most likely to be high: in 200 simulated worlds, SNIPS's 95%
interval of the paired difference covered the truth 88.5% of the time and the one-sided 80% bound the gate deploys
on lay above it 28% of the time. Their rewards are no less noisy than any other row's, so each row is counted with
at least its weight squared times the variance of a reward (for DR, of a residual) pooled over the whole holdout:
97% coverage for both estimators and the one-sided bound above the truth 20.5% (SNIPS) and 19.5% (DR), at intervals
25% and 19% wider (docs/evaluation.md).

- `SelfNormalisedIPS` (Swaminathan & Joachims 2015): the propensity-weighted mean reward of the rows where the
  policy picks the logged action. Unbiased as the holdout grows, but only those rows speak, so its interval is
  wide when a new policy rarely agrees with the one that logged.
- `SelfNormalisedDR` (Dudík et al. 2011; SNDR in Open Bandit Pipeline): a reward model's prediction for the
  policy's action on every row, plus the self-normalised weighted residuals (reward minus prediction) of the
  matched rows. The propensities are known, so it stays unbiased however wrong the reward model is; where the
  model is right the residuals are small and so is the interval. The reward model must not have seen the holdout
  (it is a candidate fitted on the training days), or its residuals there would understate the noise.

The logging policy itself is valued on-policy by both: its mean reward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from agent_retraining.evaluate.statistics import Z_95


@dataclass(frozen=True)
class LoggedRows:
    """What the holdout logged, and the reward model's expected reward of every action on every row."""

    rewards: np.ndarray  # on [0, 1]
    propensities: np.ndarray  # of the logged action
    logged: np.ndarray  # index of the logged action
    expected: np.ndarray | None = None  # rows x actions; None when no reward model is at hand (SNIPS needs none)

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass(frozen=True)
class PolicyEstimate:
    value: float | None  # None: no row speaks for the policy (never NaN, which compares false with everything)
    influence: np.ndarray
    matched_rows: int
    reward_weight: np.ndarray  # how much each row's own reward moves the value, times the number of rows
    noise: float  # the variance of one row's reward (SNIPS) or residual (DR), pooled over all the rows

    def interval(self) -> list[float | None]:
        if self.value is None:
            return [None, None]
        return interval(self.value, standard_error(self.influence))

    def summary(self) -> dict:
        low, high = self.interval()
        return {"value": self.value, "ci": [low, high], "matched_rows": self.matched_rows}


def standard_error(influence: np.ndarray, floor: np.ndarray | float = 0.0) -> float:
    """The delta method's standard error, each row's squared influence counted as at least its `floor`: for a
    paired difference, its reward's weight squared times the pooled noise, so that a few heavily weighted rows that
    happen to agree cannot make it small (module doc)."""
    return float(np.sqrt(np.maximum(influence**2, floor).sum()) / len(influence))


def interval(value: float, stderr: float) -> list[float]:
    return [value - Z_95 * stderr, value + Z_95 * stderr]


class PolicyValueEstimator(ABC):
    name: ClassVar[str]  # as the spec's gate.policy_value.estimator names it
    needs_reward_model: ClassVar[bool]

    def logging_policy(self, rows: LoggedRows) -> PolicyEstimate:
        """The policy that logged the rows, on-policy: its mean reward."""
        value = float(rows.rewards.mean())
        return PolicyEstimate(value, rows.rewards - value, len(rows), np.ones(len(rows)), float(rows.rewards.var()))

    @abstractmethod
    def greedy_policy(self, rows: LoggedRows, chosen: np.ndarray) -> PolicyEstimate:
        """The value of the policy that picks `chosen[i]` on row i."""


def _matched_weights(rows: LoggedRows, chosen: np.ndarray) -> tuple[np.ndarray, int]:
    matches = chosen == rows.logged
    return matches / rows.propensities, int(matches.sum())


def _unmatched(rows: LoggedRows) -> PolicyEstimate:
    return PolicyEstimate(None, np.zeros(len(rows)), 0, np.zeros(len(rows)), 0.0)


class SelfNormalisedIPS(PolicyValueEstimator):
    name = "snips"
    needs_reward_model = False

    def greedy_policy(self, rows: LoggedRows, chosen: np.ndarray) -> PolicyEstimate:
        weights, matched = _matched_weights(rows, chosen)
        total = weights.sum()
        if total == 0:
            return _unmatched(rows)
        value = float((weights * rows.rewards).sum() / total)
        reward_weight = len(rows) * weights / total
        return PolicyEstimate(value, reward_weight * (rows.rewards - value), matched, reward_weight,
                              float(rows.rewards.var()))  # fmt: skip


class SelfNormalisedDR(PolicyValueEstimator):
    name = "dr"
    needs_reward_model = True

    def greedy_policy(self, rows: LoggedRows, chosen: np.ndarray) -> PolicyEstimate:
        if rows.expected is None:
            raise ValueError("the doubly robust estimator needs a reward model's predictions")
        weights, matched = _matched_weights(rows, chosen)
        total = weights.sum()
        if total == 0:
            return _unmatched(rows)
        at = np.arange(len(rows))
        direct = rows.expected[at, chosen]  # the model's expected reward of the policy's action
        residuals = rows.rewards - rows.expected[at, rows.logged]
        correction = float((weights * residuals).sum() / total)
        value = float(direct.mean()) + correction
        reward_weight = len(rows) * weights / total
        influence = (direct - direct.mean()) + reward_weight * (residuals - correction)
        return PolicyEstimate(value, influence, matched, reward_weight, float(residuals.var()))


ESTIMATORS: dict[str, PolicyValueEstimator] = {e.name: e for e in (SelfNormalisedIPS(), SelfNormalisedDR())}


def greedy_estimates(per_action: np.ndarray, rows: LoggedRows) -> dict[str, PolicyEstimate]:
    """A model's greedy policy (the best-scored action of each row) valued by every estimator that can be computed
    on these rows (DR needs the reward model's predictions)."""
    chosen = per_action.argmax(axis=1)
    return {name: estimator.greedy_policy(rows, chosen) for name, estimator in ESTIMATORS.items()
            if rows.expected is not None or not estimator.needs_reward_model}  # fmt: skip


def paired_difference(a: PolicyEstimate, b: PolicyEstimate) -> dict:
    """Value of a minus that of b on the same rows, with a 95% delta-method interval.

    Both are estimated from the same logged rows, so their errors are correlated; judging the difference row by
    row is much tighter than comparing two separate intervals (or two point estimates, which ignores noise).
    """
    if a.value is None or b.value is None:
        return {"difference": None, "ci": None}
    difference = a.value - b.value
    # A row's reward enters the difference with the difference of its weights, little where both policies pick
    # the logged action. The pooled noise is the same for two policies one estimator valued; against the logging
    # policy's on-policy mean (a reward's, not a residual's), the larger.
    stderr = standard_error(a.influence - b.influence, (a.reward_weight - b.reward_weight) ** 2 * max(a.noise, b.noise))
    return {"difference": difference, "ci": interval(difference, stderr)}
