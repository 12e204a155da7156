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


@pytest.fixture(scope="module")
def router():
    from agent_retraining.spec import load_agent

    return load_agent("llm-router")


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_same_seed_gives_the_same_worlds(support_bot, router, name):
    spec = router if name in ("intent_drift", "new_handler") else support_bot
    first, again = scenario(name, spec, 4, 30), scenario(name, spec, 4, 30)
    for day in (0, 15, 29):
        assert np.array_equal(_truth(first.world(day)), _truth(again.world(day)))
    assert not np.array_equal(_truth(first.world(0)), _truth(scenario(name, spec, 5, 30).world(0)))


def test_a_new_handler_joins_on_its_day_and_leaves_every_other_action_as_it_was(router):
    from agent_retraining.dev.scenarios import NEW_HANDLER

    added = scenario("new_handler", router, 0, 30)
    before, on = added.world(added.change_day - 1), added.world(added.change_day)
    assert before.spec.actions == router.actions
    assert on.spec.actions == [*router.actions, NEW_HANDLER]
    _, signals = sample_contexts(on, 4000, np.random.default_rng(0))
    truth_before, truth_on = before.reward_probability(signals), on.reward_probability(signals)
    assert np.array_equal(truth_on[:, :-1], truth_before)
    assert (truth_on.argmax(axis=1) == len(router.actions)).mean() > 0.1  # worth adding: best for many users
    assert on.policy_propensities(signals).shape == (4000, len(router.actions) + 1)


def test_under_intent_drift_users_write_about_other_things_every_day(router, support_bot):
    moving = scenario("intent_drift", router, 0, 30)
    mixes = [moving.world(day).intent_mix for day in range(30)]
    assert np.allclose([m.sum() for m in mixes], 1.0)
    assert all(np.abs(a - b).sum() > 0.01 for a, b in zip(mixes, mixes[1:], strict=False))  # a step every day
    assert np.abs(mixes[29] - mixes[0]).sum() > 0.3  # and far from where it started after a month
    assert np.allclose(scenario("stationary", router, 0, 30).world(29).intent_mix, mixes[0])
    with pytest.raises(ValueError, match="intent_drift needs an agent whose context has a text or embedding"):
        scenario("intent_drift", support_bot, 0, 30)


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
