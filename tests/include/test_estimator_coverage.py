"""The gate's 95% intervals against the simulator's truth: each estimator's interval of the challenger-minus-champion
policy value must hold the true difference about as often as it says (the full measurement, 200 worlds, is
`make coverage`; here 40 smaller ones)."""

from agent_retraining.dev.estimator_coverage import Setting, one_world, summarise


def test_both_estimators_cover_the_true_difference_and_doubly_robust_is_narrower(support_bot):
    setting = Setting(champion_rows=1000, train_rows=3000, holdout_rows=2000, truth_rows=20_000)
    summary = summarise([one_world(support_bot, seed, setting) for seed in range(40)])
    for name in ("snips", "dr"):
        assert summary[name]["worlds"] == 40
        assert 0.9 <= summary[name]["coverage"] <= 1.0, summary
    assert summary["dr"]["median_width"] < summary["snips"]["median_width"], summary


def test_the_summary_counts_the_worlds_whose_one_sided_bound_lies_above_the_truth():
    def world(truth: float, low: float, lower_bound: float) -> dict:
        estimate = {"difference": truth + 0.01, "ci": [low, truth + 0.03], "lower_bound": lower_bound}
        return {"true_difference": truth, "snips": estimate}

    summary = summarise([world(0.0, -0.01, 0.002), world(0.0, -0.01, -0.001), world(0.02, 0.025, 0.03)])["snips"]
    assert summary["bound_above_truth"] == 2 / 3  # the first and the third claim more than the truth
    assert summary["coverage"] == 2 / 3  # the third's interval starts above the truth
