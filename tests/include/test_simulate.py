from datetime import date

import numpy as np

from agent_retraining.dev.simulate import World, corrupt, day_events, sample_contexts


def test_the_same_seed_gives_the_same_logs_and_another_seed_does_not(support_bot):
    world = World.for_spec(support_bot, 1)
    day = date(2026, 5, 1)
    assert day_events(world, day, 100, 1) == day_events(World.for_spec(support_bot, 1), day, 100, 1)
    assert day_events(world, day, 100, 1) != day_events(World.for_spec(support_bot, 2), day, 100, 2)


def test_logged_propensities_are_the_policys_true_probabilities(support_bot):
    world = World.for_spec(support_bot, 0)
    _, signals = sample_contexts(world, 500, np.random.default_rng(0))
    probabilities = world.policy_propensities(signals)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    events = day_events(world, date(2026, 5, 1), 3000, 0)
    logged = np.array([e["propensity"] for e in events])
    assert ((logged > 0) & (logged <= 1)).all()
    # Under the logging policy, E[1/propensity of the chosen action] = number of actions.
    assert abs(np.mean(1 / logged) - len(support_bot.actions)) < 0.5


def test_rewards_depend_on_the_action(support_bot):
    world = World.for_spec(support_bot, 0)
    _, signals = sample_contexts(world, 2000, np.random.default_rng(0))
    truth = world.reward_probability(signals)
    assert (truth.argmax(axis=1)[:, None] == np.arange(len(support_bot.actions))).any(axis=0).sum() >= 2
    assert truth.std() > 0.1


def test_the_corruption_switch_breaks_contract_rules(support_bot):
    events = day_events(World.for_spec(support_bot, 0), date(2026, 5, 1), 300, 0)
    broken = corrupt([dict(e, context=dict(e["context"])) for e in events], support_bot, np.random.default_rng(0))
    assert any(e["propensity"] == 0 for e in broken)
    assert any(e["action"] not in support_bot.actions for e in broken)
    assert any(e["context"]["account_age_days"] > 5000 for e in broken if e["context"]["account_age_days"])
