"""The reward-rate rule: each acting version against its own past, by a test whose band means the same at any rate."""

import numpy as np
import pyarrow as pa
import pytest

from agent_retraining.datagate.reward_rate import Estimate, by_version, estimates_from_manifest, reward_rate_checks
from tests.conftest import spec_variant


def _day(day: str, *versions: tuple[str | None, int, int]) -> dict:
    """What a validated day stores of its outcomes: (version, rows, positive rewards) per acting version."""
    return {"day": day, "by_version": [{"version": v, "rows": rows, "reward_sum": float(positives)}
                                       for v, rows, positives in versions]}  # fmt: skip


def _week(version: str | None, rate: float, rows: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [_day(f"2026-03-0{n}", (version, rows, int(rng.binomial(rows, rate)))) for n in range(1, 7)]


def _with_reward_rate(spec, **settings):
    validation = spec.validation.model_dump()
    validation["reward_rate"] = {**validation["reward_rate"], **settings}
    return spec_variant(spec, validation=validation)


@pytest.mark.parametrize("rate", [0.004, 0.4])
def test_a_broken_reward_join_is_refused_at_a_rare_and_a_common_rate(support_bot, rate):
    earlier = _week(None, rate, 1400)
    (check,) = reward_rate_checks(support_bot, _day("2026-03-07", (None, 1400, 0)), earlier, {})
    assert not check["success"]
    assert check["tier"] == "block"
    reference = sum(d["by_version"][0]["reward_sum"] for d in earlier)
    assert check["message"].startswith(
        f"2026-03-07: reward rate of the logging policy 0.0000 (0 of 1,400) against {reference / 8400:.4f} "
        f"({int(reference)} of 8,400) on its 6 earlier usable day(s); Fisher's exact test, mid-p"
    )
    assert check["message"].endswith("change -100%, refused when larger than 25% of the reference and p < 0.02")


def test_a_join_that_doubles_every_reward_is_refused(support_bot):
    (check,) = reward_rate_checks(support_bot, _day("2026-03-07", (None, 1400, 784)), _week(None, 0.4, 1400), {})
    assert not check["success"]
    assert check["p_value"] < 1e-6


def test_a_deployed_model_that_earns_more_is_judged_against_its_own_estimate_not_the_old_policy(support_bot):
    """The loop's success: the logging policy earned 0.40, the new model earns 0.715 as its evaluation said."""
    earlier = _week(None, 0.40, 3000)
    estimates = {"v1": Estimate(0.74, (0.71, 0.77))}
    first = _day("2026-03-07", ("v1", 3000, 2145))
    (check,) = reward_rate_checks(support_bot, first, earlier, estimates)
    assert check["success"], check["message"]
    assert "the policy value its evaluation estimated, 95% interval [0.7100, 0.7700]" in check["message"]
    # the next day, v1 is compared with its own first day; the logging policy's stragglers with their own days
    second = _day("2026-03-08", (None, 40, 16), ("v1", 2960, 2100))
    checks = reward_rate_checks(support_bot, second, [*earlier, first], estimates)
    assert [c["version"] for c in checks] == [None, "v1"]
    assert all(c["success"] for c in checks), [c["message"] for c in checks]
    assert "(2145 of 3,000) on its 1 earlier usable day(s)" in checks[1]["message"]


def test_a_new_model_whose_rewards_vanish_on_its_first_day_is_refused(support_bot):
    estimates = {"v1": Estimate(0.74, (0.71, 0.77))}
    (check,) = reward_rate_checks(support_bot, _day("2026-03-07", ("v1", 3000, 0)), _week(None, 0.4, 3000), estimates)
    assert not check["success"]
    assert "version v1" in check["message"]


def test_a_canary_arm_that_is_clearly_better_passes_beside_its_champion(support_bot):
    earlier = _week("champion-v", 0.60, 2700)
    estimates = {"champion-v": Estimate(0.61, (0.58, 0.64)), "canary-v": Estimate(0.80, (0.76, 0.84))}
    day = _day("2026-03-07", ("champion-v", 2700, 1630), ("canary-v", 300, 238))
    checks = reward_rate_checks(support_bot, day, earlier, estimates)
    assert all(c["success"] for c in checks), [c["message"] for c in checks]


def test_a_version_with_no_reference_is_a_warning_not_a_silent_pass(support_bot):
    (check,) = reward_rate_checks(support_bot, _day("2026-03-07", ("ghost", 500, 0)), _week(None, 0.4, 1000), {})
    assert not check["success"]
    assert check["tier"] == "warn"
    assert "cannot be judged: no earlier usable day of it in the window and no estimate" in check["message"]


def test_an_absolute_band_ignores_a_significant_change_smaller_than_it(support_bot):
    absolute = _with_reward_rate(support_bot, scale="absolute", max_change=0.05)
    day = _day("2026-03-07", (None, 100_000, 37_000))  # 0.37 against 0.40: significant, 3 points
    (check,) = reward_rate_checks(absolute, day, _week(None, 0.4, 100_000), {})
    assert check["success"]
    assert check["p_value"] < 1e-6
    relative_spec = _with_reward_rate(support_bot, max_change=0.05)
    (relative,) = reward_rate_checks(relative_spec, day, _week(None, 0.4, 100_000), {})
    assert not relative["success"]  # 7.5% of the rate is more than 5% of it


def test_the_rule_is_what_it_claims_over_many_seeds(support_bot):
    """At a 0.4% rate on days of 1,400 events, an ordinary day is rarely refused and a broken join nearly always;
    at 40% the join never passes. Measured over 400 seeded weeks (figures in docs/data-gate.md)."""
    rng = np.random.default_rng(2026)

    def refused(rate: float, today: int) -> bool:
        earlier = [_day(f"2026-03-0{n}", (None, 1400, int(rng.binomial(1400, rate)))) for n in range(1, 7)]
        return not reward_rate_checks(support_bot, _day("2026-03-07", (None, 1400, today)), earlier, {})[0]["success"]

    ordinary = np.mean([refused(0.004, int(rng.binomial(1400, 0.004))) for _ in range(400)])
    broken = np.mean([refused(0.004, 0) for _ in range(400)])
    assert ordinary <= 0.03, ordinary
    assert broken >= 0.85, broken
    assert all(refused(0.4, 0) for _ in range(50))
    assert not any(refused(0.4, int(rng.binomial(1400, 0.4))) for _ in range(200))


def test_a_day_stores_its_rows_and_rewards_per_acting_version():
    table = pa.table({"model_version": pa.array([None, "v1", "v1", None, "v2"], pa.string()),
                      "reward": [1.0, 0.0, 1.0, 0.0, 1.0]})  # fmt: skip
    assert by_version(table) == [
        {"version": None, "rows": 2, "reward_sum": 1.0},
        {"version": "v1", "rows": 2, "reward_sum": 1.0},
        {"version": "v2", "rows": 1, "reward_sum": 1.0},
    ]


def test_estimates_come_from_every_version_the_manifest_names():
    manifest = {
        "version": "v2", "metrics": {"policy_value": 0.7, "policy_value_ci": [0.65, 0.75]},
        "history": [{"version": "v1", "metrics": {"policy_value": 0.6, "policy_value_ci": [None, None]}},
                    {"version": "v0", "metrics": {"policy_value": float("nan")}}],
        "canary": {"version": "v3", "metrics": {"policy_value": 0.8, "policy_value_ci": [0.7, 0.9]}},
    }  # fmt: skip
    assert estimates_from_manifest(manifest) == {
        "v2": Estimate(0.7, (0.65, 0.75)), "v1": Estimate(0.6, None), "v3": Estimate(0.8, (0.7, 0.9)),
    }  # fmt: skip
    assert estimates_from_manifest(None) == {}
