"""The gate's nightly choice against the simulator's truth, both estimators judging the same nights (the full
measurement, 200 nights, is `make decisions`; here one night, and the counting on nights whose truth is set)."""

import pytest

from agent_retraining.dev.gate_decisions import Night, one_night, summarise


def _night(truth: dict[str, float], deployed: str | None, best_ranked: str) -> dict:
    ranked = [best_ranked, *(name for name in truth if name != best_ranked)]
    return {"candidates": {name: {"true_difference": gain} for name, gain in truth.items()},
            "chosen": {"dr": {"deployed": deployed, "ranked": ranked}}}  # fmt: skip


def test_the_summary_counts_worse_deploys_better_challengers_kept_waiting_and_deploys_with_none_better():
    nights = [
        _night({"a": 0.02, "b": -0.01}, deployed="a", best_ranked="a"),  # right
        _night({"a": 0.02, "b": -0.01}, deployed="b", best_ranked="a"),  # the worse one passed, the better did not
        _night({"a": 0.03, "b": 0.01}, deployed=None, best_ranked="a"),  # a better one waited
        _night({"a": -0.01, "b": 0.0}, deployed="a", best_ranked="a"),  # none better, deployed anyway
        _night({"a": -0.01, "b": -0.02}, deployed=None, best_ranked="b"),  # none better, kept: right
    ]
    summary = summarise(nights)["dr"]
    assert (summary["deployed"], summary["worse_deployed"], summary["better_kept_waiting"]) == (3, 2, 1)
    assert summary["worse_by"] == pytest.approx(-0.02)
    assert summary["gain_missed"] == pytest.approx(0.03)
    assert summary["gain_deployed"] == pytest.approx(0.0)
    assert (summary["nights_none_better"], summary["deployed_when_none_better"]) == (2, 0.5)


def test_one_night_judges_every_candidate_by_both_estimators_and_deploys_only_one_that_passed(support_bot):
    night = one_night(support_bot, "gradual_drift", seed=2, night=Night(train_rows=3000, holdout_rows=2000,
                                                                        truth_rows=10_000))  # fmt: skip
    assert set(night["candidates"]) == set(support_bot.candidates)
    for estimator, choice in night["chosen"].items():
        verdicts = {name: c[estimator] for name, c in night["candidates"].items()}
        assert sorted(choice["ranked"]) == sorted(verdicts)
        passed = [name for name in choice["ranked"] if verdicts[name]["passed"]]
        assert choice["deployed"] == (passed[0] if passed else None)  # the best-ranked of those that passed
        for verdict in verdicts.values():
            if verdict["passed"]:  # the one-sided 80% bound is above zero: the estimate is
                assert verdict["difference"] > 0
    assert all(-1 < c["true_difference"] < 1 for c in night["candidates"].values())
