"""The window of days a run trains on, shared by every stage that reads days of logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from agent_retraining.spec import AgentSpec


@dataclass(frozen=True)
class Window:
    """The days a run trains on, ending with the newest decision day it may judge; the newest `holdout_days` of them
    are held out.

    That day is the run's own day, or, when rewards arrive later (`reward.delay_days`), the day whose feedback
    has had its delay: the run of 12 March with a two-day delay judges decisions up to 10 March.
    """

    first: date
    last: date
    holdout_days: int

    @classmethod
    def ending(cls, run_day: date, spec: AgentSpec) -> Window:
        last = run_day - timedelta(days=spec.reward.delay_days)
        return cls(last - timedelta(days=spec.training.window_days - 1), last, spec.training.holdout_days)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def holdout_first(self) -> date:
        return self.last - timedelta(days=self.holdout_days - 1)
