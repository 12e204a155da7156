from datetime import date

import numpy as np
import pytest

from agent_retraining.evaluation import RunContext, calibration_error, gate_rules, select_winner, snips
from agent_retraining.snapshot import Window
from tests.conftest import spec_variant

GOOD = {
    "roc_auc": 0.80, "log_loss": 0.45, "brier": 0.15, "calibration_error": 0.02, "policy_value": 0.70,
    "slices": {"channel=chat": {"rows": 300, "roc_auc": 0.78, "log_loss": 0.5}},
}  # fmt: skip
WINDOW = Window(date(2026, 3, 1), date(2026, 3, 7), 1)
RUN = RunContext("scheduled")


def test_snips_matches_the_closed_form_under_uniform_logging():
    # Uniform logging over 4 actions: the policy value is the mean reward of the rows where it agrees.
    rng = np.random.default_rng(0)
    rewards = rng.integers(0, 2, 1000).astype(float)
    matches = rng.random(1000) < 0.25
    result = snips(matches, rewards, np.full(1000, 0.25))
    assert result["value"] == pytest.approx(rewards[matches].mean())
    assert result["ci_low"] < result["value"] < result["ci_high"]
    assert result["matched_rows"] == matches.sum()


def test_snips_interval_covers_the_true_value_at_about_its_rate():
    rng = np.random.default_rng(1)
    true_means = np.array([0.2, 0.5, 0.8])
    logging = np.array([0.5, 0.3, 0.2])
    target = 2  # the evaluated policy always picks action 2, whose true value is 0.8
    covered = 0
    for _ in range(300):
        actions = rng.choice(3, size=400, p=logging)
        rewards = (rng.random(400) < true_means[actions]).astype(float)
        result = snips(actions == target, rewards, logging[actions])
        covered += result["ci_low"] <= true_means[target] <= result["ci_high"]
    assert 0.90 <= covered / 300 <= 0.99


def test_calibration_error_is_zero_when_predictions_are_frequencies():
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 1], float)
    assert calibration_error(labels, np.array([0.25] * 4 + [1.0 - 1e-9] * 4)) == pytest.approx(0.0, abs=1e-8)
    assert calibration_error(labels, np.full(8, 0.9)) == pytest.approx(abs(0.9 - labels.mean()))


def test_winner_is_the_best_primary_metric_with_ties_to_the_earlier_candidate(support_bot):
    metrics = {"logistic_regression": {"roc_auc": 0.8}, "lightgbm": {"roc_auc": 0.8}, "torch_mlp": {"roc_auc": 0.7}}
    assert select_winner(support_bot, metrics) == "logistic_regression"
    by_loss = spec_variant(support_bot, gate={**support_bot.gate.model_dump(), "primary_metric": "log_loss"})
    assert select_winner(by_loss, {"lightgbm": {"log_loss": 0.5}, "torch_mlp": {"log_loss": 0.4}}) == "torch_mlp"


def _failed(rules):
    return {r["rule"] for r in rules if not r["passed"]}


def test_cold_start_uses_the_floors_alone(support_bot):
    assert _failed(gate_rules(support_bot, GOOD, None, None, WINDOW, RUN)) == set()
    weak = {**GOOD, "roc_auc": 0.55}
    assert _failed(gate_rules(support_bot, weak, None, None, WINDOW, RUN)) == {"floor_roc_auc"}


def test_a_challenger_worse_than_the_champion_is_refused_with_the_rule_named(support_bot):
    live = {"trained_on": {"last": "2026-03-06"}}
    champion = {**GOOD, "roc_auc": 0.85, "policy_value": 0.80}
    rules = gate_rules(support_bot, GOOD, champion, live, WINDOW, RUN)
    assert _failed(rules) == {"no_regression_roc_auc", "policy_value"}
    detail = next(r["detail"] for r in rules if r["rule"] == "policy_value")
    assert "0.7000" in detail
    assert "0.8000" in detail


def test_better_auc_but_worse_policy_value_is_refused(support_bot):
    live = {"trained_on": {"last": "2026-03-06"}}
    challenger = {**GOOD, "roc_auc": 0.90, "policy_value": 0.60}
    assert _failed(gate_rules(support_bot, challenger, GOOD, live, WINDOW, RUN)) == {"policy_value"}


def test_a_model_trained_on_older_data_than_the_live_one_is_refused(support_bot):
    live = {"trained_on": {"last": "2026-03-09"}}
    assert _failed(gate_rules(support_bot, GOOD, GOOD, live, WINDOW, RUN)) == {"not_older_than_live"}


def test_a_slice_that_regresses_beyond_its_limit_is_refused(support_bot):
    live = {"trained_on": {"last": "2026-03-06"}}
    worse_on_chat = {**GOOD, "slices": {"channel=chat": {"rows": 300, "roc_auc": 0.70, "log_loss": 0.6}}}
    rules = gate_rules(support_bot, worse_on_chat, GOOD, live, WINDOW, RUN)
    assert _failed(rules) == {"slice_roc_auc:channel=chat"}
    assert "0.7000 >= champion 0.7800 - 0.05" in next(r["detail"] for r in rules if not r["passed"])


def test_slices_are_each_action_and_each_declared_feature_value_with_enough_rows(support_bot):
    import pyarrow as pa

    from agent_retraining.evaluation import slice_masks

    holdout = pa.table({"ctx_channel": ["chat"] * 150 + ["email"] * 50, "ctx_customer_tier": ["pro"] * 200})
    logged = np.array([0] * 120 + [1] * 80)
    masks = slice_masks(support_bot, holdout, logged)
    assert set(masks) == {"action=answer_from_faq", "channel=chat", "customer_tier=pro"}
    assert masks["channel=chat"].sum() == 150


def test_a_backfill_run_never_moves_the_manifest(support_bot):
    rules = gate_rules(support_bot, GOOD, None, None, WINDOW, RunContext("backfill"))
    assert _failed(rules) == {"run_may_move_manifest"}


def test_only_a_manual_run_may_waive_the_newer_data_rule(support_bot):
    live = {"trained_on": {"last": "2026-03-09"}}
    waived = gate_rules(support_bot, GOOD, GOOD, live, WINDOW, RunContext("manual", allow_older_than_live=True))
    assert _failed(waived) == set()
    assert "waived by the operator" in next(r["detail"] for r in waived if r["rule"] == "not_older_than_live")
    scheduled = gate_rules(support_bot, GOOD, GOOD, live, WINDOW, RunContext("scheduled", allow_older_than_live=True))
    assert _failed(scheduled) == {"not_older_than_live"}
