"""Gate rules that look at a whole day rather than at rows, on small hand-made tables."""

from datetime import date, timedelta

import pyarrow as pa

from agent_retraining.snapshot import Window
from agent_retraining.validation import reward_rate_checks

WINDOW = Window(date(2026, 3, 1), date(2026, 3, 3), 1)


def _days(*rates_and_rows: tuple[float, int]) -> pa.Table:
    """One block of rows per day of the window, each with the given share of reward 1."""
    days, rewards = [], []
    for offset, (rate, rows) in enumerate(rates_and_rows):
        ones = round(rate * rows)
        days += [WINDOW.first + timedelta(days=offset)] * rows
        rewards += [1.0] * ones + [0.0] * (rows - ones)
    return pa.table({"dt": pa.array(days, pa.date32()), "reward": pa.array(rewards)})


def test_a_day_whose_every_reward_is_zero_is_refused(support_bot):
    (check,) = reward_rate_checks(support_bot, WINDOW, _days((0.7, 100), (0.8, 100), (0.0, 100)))
    assert not check["success"]
    assert check["tier"] == "block"
    assert check["message"] == (
        "2026-03-03: reward rate 0.000 against 0.750 on the earlier days of the window, allowed change 0.25"
    )


def test_an_ordinary_day_to_day_change_passes(support_bot):
    (check,) = reward_rate_checks(support_bot, WINDOW, _days((0.7, 100), (0.8, 100), (0.62, 100)))
    assert check["success"]


def test_no_earlier_days_means_no_comparison(support_bot):
    only_newest = _days((0.0, 0), (0.0, 0), (0.0, 100))
    assert reward_rate_checks(support_bot, WINDOW, only_newest) == []
