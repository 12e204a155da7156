"""Scenarios of the simulator: reproducible worlds that move in the ways each name promises."""

from dataclasses import replace

import numpy as np
import pytest

from agent_retraining.dev.scenarios import (
    SCENARIOS,
    evaluation_contexts,
    new_value_feature,
    policy_value,
    scenario,
    shifted_segment,
)
from agent_retraining.dev.simulate import sample_contexts


def _truth(world, rows=4000):
    _, signals = sample_contexts(world, rows, np.random.default_rng(0))
    return world.reward_probability(signals)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_same_seed_gives_the_same_worlds(support_bot, name):
    first, again = scenario(name, support_bot, 4, 30), scenario(name, support_bot, 4, 30)
    for day in (0, 15, 29):
        assert np.array_equal(_truth(first.world(day)), _truth(again.world(day)))
    assert not np.array_equal(_truth(first.world(0)), _truth(scenario(name, support_bot, 5, 30).world(0)))


def test_the_truth_has_interactions_a_linear_model_cannot_fit(support_bot):
    world = scenario("stationary", support_bot, 0, 30).world(0)
    without_pairs = _truth(replace(world, pairs=(), pair_weights=None))
    assert np.abs(_truth(world) - without_pairs).mean() > 0.05


def test_only_gradual_drift_moves_every_day(support_bot):
    drifting = scenario("gradual_drift", support_bot, 0, 30)
    steady = scenario("stationary", support_bot, 0, 30)
    assert np.abs(_truth(drifting.world(29)) - _truth(drifting.world(0))).mean() > 0.1
    assert np.array_equal(_truth(steady.world(29)), _truth(steady.world(0)))


def test_a_sudden_shift_changes_one_segment_from_its_day_on(support_bot):
    shifted = scenario("sudden_shift", support_bot, 0, 30)
    before, on = shifted.world(shifted.change_day - 1), shifted.world(shifted.change_day)
    _, signals = sample_contexts(before, 4000, np.random.default_rng(0))
    segment = signals[:, on.signal_column(*shifted_segment(shifted.base))] == 1
    changed = np.abs(on.reward_probability(signals) - before.reward_probability(signals)).max(axis=1) > 1e-9
    assert changed.any()
    assert np.array_equal(changed, segment)


def test_a_new_value_appears_on_its_day_and_grows(support_bot):
    grows = scenario("new_value", support_bot, 0, 30)
    feature = new_value_feature(support_bot)
    assert feature == "language"  # the feature whose spec tolerates unknown values most (min_in_vocabulary 0.98)

    def share(day):
        contexts, _ = evaluation_contexts(grows.world(day), 5000, 1)
        return np.mean([c[feature] == f"{feature}-new" for c in contexts])

    assert share(grows.change_day - 1) == 0
    assert 0 < share(grows.change_day) < share(grows.change_day + 5)


def test_only_a_broken_release_corrupts_logs_and_only_on_its_day(support_bot):
    broken = scenario("broken_release", support_bot, 0, 30)
    assert [day for day in range(30) if broken.logs_corrupt(day)] == [broken.change_day]
    assert not any(scenario("stationary", support_bot, 0, 30).logs_corrupt(day) for day in range(30))


def test_the_oracle_is_the_best_policy_on_the_truth(support_bot):
    world = scenario("stationary", support_bot, 0, 30).world(0)
    _, signals = evaluation_contexts(world, 3000, 2)
    truth = world.reward_probability(signals)
    best = np.eye(truth.shape[1])[truth.argmax(axis=1)]
    assert policy_value(world, signals, best) >= policy_value(world, signals, world.policy_propensities(signals))
    assert policy_value(world, signals, best) == pytest.approx(truth.max(axis=1).mean())
