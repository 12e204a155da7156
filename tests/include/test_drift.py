"""Drift rules: a day's features against the earlier usable days of the window, from the summaries validated days
store."""

import numpy as np
import pyarrow as pa

from agent_retraining.contract import context_column
from agent_retraining.datagate import drift


def _summary(spec, day: str, rows: int = 1000, seed: int = 0, **changes) -> dict:
    """What a validated day stores about itself, from a synthetic day of rows."""
    rng = np.random.default_rng(seed)
    columns = {}
    for name, feature in spec.context.items():
        if feature.type == "category":
            values = rng.choice(feature.vocabulary, size=rows).astype(object)
        elif feature.type == "bool":
            values = rng.random(rows) < 0.5
        else:
            values = rng.uniform(feature.min, feature.max, size=rows)
            values = values.round().astype(np.int64) if feature.type == "int" else values
        columns[context_column(name)] = changes.get(name, values)
    table = pa.table(columns)
    return {"day": day, "rows": rows, "histograms": drift.histograms(spec, table)}


def _check(checks, rule):
    return next(c for c in checks if c["rule"] == rule)


def test_an_ordinary_day_passes_every_drift_rule(support_bot):
    earlier = [_summary(support_bot, "2026-03-01", seed=1), _summary(support_bot, "2026-03-02", seed=2)]
    checks = drift.drift_checks(support_bot, _summary(support_bot, "2026-03-03", seed=3), earlier)
    assert len(checks) == len(support_bot.context)
    assert all(c["success"] for c in checks), [c["message"] for c in checks if not c["success"]]


def test_a_shifted_feature_is_named_with_its_psi(support_bot):
    earlier = [_summary(support_bot, "2026-03-01", seed=1)]
    chat_only = np.array(["chat"] * 1000, dtype=object)
    check = _check(drift.drift_checks(support_bot, _summary(support_bot, "2026-03-02", seed=2, channel=chat_only),
                                      earlier), "drift:ctx_channel")  # fmt: skip
    assert not check["success"]
    assert check["tier"] == "warn"  # the example spec's drift tier
    assert check["observed"] > 1.0


def test_a_skewed_number_is_judged_on_groups_of_equal_reference_mass(support_bot):
    """Most message lengths are short: on the spec's 100 equal slices of 1..20000 they share one slice, and a day
    whose lengths double would look unchanged; regrouped by the reference's mass the shift is plain."""
    rng = np.random.default_rng(0)
    short = rng.integers(1, 150, size=5000)
    earlier = [_summary(support_bot, "2026-03-01", rows=5000, message_length=short)]
    doubled = _summary(support_bot, "2026-03-02", rows=5000, seed=1, message_length=short * 2)
    assert np.count_nonzero(earlier[0]["histograms"]["message_length"]) <= 2
    check = _check(drift.drift_checks(support_bot, doubled, earlier), "drift:ctx_message_length")
    assert check["observed"] > support_bot.validation.max_drift_psi


def test_no_earlier_days_means_no_comparison(support_bot):
    assert drift.drift_checks(support_bot, _summary(support_bot, "2026-03-01"), []) == []
