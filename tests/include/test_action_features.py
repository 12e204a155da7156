"""Action features: the spec's rules for them, their columns, and what they are for: a handler no log holds yet is
scored from what it shares with the others."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from agent_retraining.dev.scenarios import NEW_HANDLER, scenario
from agent_retraining.dev.simulate import sample_contexts, seeded_rng
from agent_retraining.models.encoding import (
    action_features,
    action_scores,
    columns,
    context_block,
    encoding_of,
    with_actions,
)
from agent_retraining.spec import load_agent
from tests.conftest import spec_variant


@pytest.fixture(scope="module")
def router():
    return load_agent("llm-router")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["family"]["values"].pop("human_agent"), "missing ['human_agent']"),
        (lambda f: f["family"]["values"].update(robot="small"), "not an action ['robot']"),
        (lambda f: f["family"]["values"].update(small_model="tiny"), "'tiny' is not in ['small', 'large', 'human']"),
        (lambda f: f["cost_per_call"]["values"].update(human_agent=3.0), "3.0 is outside [0, 2]"),
        (lambda f: f["retrieval"]["values"].update(small_model="no"), "'no' is not true or false"),
        (lambda f: f["family"].pop("vocabulary"), "a category action feature has a vocabulary"),
        (lambda f: f["cost_per_call"].update(min=2.0), "min (2.0) must be below max (2.0)"),
    ],
)
def test_the_spec_refuses_action_features_that_do_not_describe_every_action(router, change, message):
    features = router.model_dump()["action_features"]
    change(features)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        spec_variant(router, action_features=features)


def test_a_spec_without_action_features_encodes_as_before(support_bot):
    assert "action_features" not in encoding_of(support_bot)
    assert not any(c.startswith("action.") for c in columns(encoding_of(support_bot)))


def test_each_action_has_its_feature_values_scaled_like_a_context(router):
    names, values = action_features(encoding_of(router))
    assert names == ["action.family=small", "action.family=large", "action.family=human", "action.retrieval",
                     "action.cost_per_call"]  # fmt: skip
    expected = [[1, 0, 0, 0, 0.001], [0, 1, 0, 0, 0.015], [1, 0, 0, 1, 0.003], [0, 0, 1, 0, 0.75]]
    assert np.allclose(values, expected)


def test_a_handler_no_log_holds_is_scored_from_what_it_shares_with_the_others(router):
    """On the day a handler joins, a linear model trained only on the four old handlers' logs already ranks the
    contexts where the new one does well (its truth follows from its family and retrieval, which it shares), and
    it cannot without the action features."""
    from sklearn.linear_model import LogisticRegression

    added = scenario("new_handler", router, 0, 30)
    world = added.world(added.change_day)
    encoding = encoding_of(world.spec)
    assert encoding["actions"][-1] == NEW_HANDLER
    values, signals = sample_contexts(world, 8000, seeded_rng("handler", 1))
    context = context_block(encoding, pa.table({f"ctx_{n}": c for n, c in values.items()}))
    truth = world.reward_probability(signals)
    rng = np.random.default_rng(4)
    logged = rng.integers(0, len(router.actions), size=len(context))  # never the new handler
    rewards = rng.random(len(context)) < truth[np.arange(len(context)), logged]
    shared = np.array([c.startswith("action.") or "*action." in c for c in columns(encoding)])
    correlation = {}
    for label, keep in (("with", np.ones_like(shared)), ("without", ~shared)):
        matrix = with_actions(encoding, context, logged) * keep
        model = LogisticRegression(C=1.0, max_iter=2000).fit(matrix, rewards)
        scorer = _Masked(model, keep)
        new = action_scores(encoding, context, [scorer])[0][:, -1]
        correlation[label] = np.corrcoef(new, truth[:, -1])[0, 1] if new.std() > 0 else 0.0
    assert correlation["with"] > 0.6, correlation
    assert correlation["without"] < correlation["with"] - 0.3, correlation


class _Masked:
    def __init__(self, model, keep):
        self.model, self.keep = model, keep

    def predict(self, matrix):
        return self.model.predict_proba(matrix * self.keep)[:, 1]
