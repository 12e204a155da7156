"""The window of days a run trains on, shared by every stage that reads days of logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from agent_retraining.spec import AgentSpec


@dataclass(frozen=True)
class Window:
    """The days a run trains on, ending with the run's own day; the newest `holdout_days` of them are held out."""

    first: date
    last: date
    holdout_days: int

    @classmethod
    def ending(cls, day: date, spec: AgentSpec) -> Window:
        return cls(day - timedelta(days=spec.training.window_days - 1), day, spec.training.holdout_days)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def holdout_first(self) -> date:
        return self.last - timedelta(days=self.holdout_days - 1)
