"""Worlds that move: named scenarios of the simulator, and the truth's verdict on any policy.

The reason to retrain nightly is that the world moves. Each scenario is a
sequence of simulator worlds, one per day of a closed loop, reproducible from
its seed, all with rewards that depend on products of two context signals per
action (so a linear model is not simply right and the choice of candidate
matters):

- `stationary`: the same world every day;
- `gradual_drift`: every reward weight drifts a little every day;
- `sudden_shift`: from `change_day` on, one segment of users (the most common
  value of the first category feature) gets a strong reward for the action
  that was rarely best;
- `new_value`: from `change_day` on, a value the spec's vocabulary does not know
  appears in a category feature and grows by a point of share a day;
- `broken_release`: on `change_day` the agent logs corrupt data;
- `intent_drift` (agents whose context holds what users write): what users
  write about moves (the intent mix takes a random walk) while the truth
  drifts as under `gradual_drift`, at half the pace;
- `new_handler` (llm-router's action features): from `change_day` on, the
  spec lists one more action, `retrieval_large_model` (a large model with
  retrieval), whose truth follows from its features like every other
  action's, with a bonus that makes it worth adding; nothing else moves.

Because the truth is known, the value of a policy (the expected reward per
decision, exploration included) is computed exactly on a sample of the day's
contexts, not estimated from logs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from agent_retraining.dev.simulate import World, sample_contexts, seeded_rng, signal_names
from agent_retraining.spec import AgentSpec, CategoryFeature

SCENARIOS = ("stationary", "gradual_drift", "sudden_shift", "new_value", "broken_release", "intent_drift",
             "new_handler")  # fmt: skip
PAIRS = 8  # products of two signals in the truth
PAIR_SCALE = 1.5  # their weights' spread, against the linear weights' 1.2
DRIFT_PER_DAY = 0.06  # spread of each weight's daily step under gradual_drift
SHIFT_BONUS = 5.0  # logit bonus of the favoured action in the shifted segment
NEW_VALUE_GROWTH = 0.01  # share of the unknown value gained per day
INTENT_STEP = 0.15  # spread of each intent's daily step in log share under intent_drift
NEW_HANDLER = "retrieval_large_model"
NEW_HANDLER_FEATURES = {"family": "large", "retrieval": True, "cost_per_call": 0.04}
NEW_HANDLER_BONUS = 0.8  # logit bonus of the new handler's base rate: a handler worth adding


@dataclass(frozen=True)
class Scenario:
    name: str
    base: World  # the world of day 0, before anything moves
    change_day: int  # when the sudden shift, the new value or the broken release happens
    drift_step: np.ndarray  # the daily change of the true weights (zero unless gradual_drift or intent_drift)
    intent_steps: np.ndarray | None = None  # each day's step of the intents' log shares (intent_drift)
    handler: World | None = None  # new_handler: the world of the spec with the new action, before anything moves
    strength: float = 1.0  # how hard the world moves (drift per day, share growth): tests compress time

    def world(self, day: int) -> World:
        """The world on day `day` of the loop (0: the warm-up days)."""
        world = replace(self.base, true_weights=self.base.true_weights + day * self.strength * self.drift_step)
        if self.name == "sudden_shift" and day >= self.change_day:
            feature, value = shifted_segment(self.base)
            bonus = np.zeros(len(self.base.spec.actions))
            bonus[int(np.argmin(self.base.true_weights[:, -1]))] = SHIFT_BONUS  # the action that was rarely best
            world = replace(world, segment_bonus={world.signal_column(feature, value): bonus})
        if self.handler is not None and day >= self.change_day:
            added = self.handler
            weights = np.vstack([world.true_weights, added.true_weights[-1:]])
            world = replace(world, spec=added.spec, true_weights=weights, policy_weights=added.policy_weights,
                            pair_weights=added.pair_weights)  # fmt: skip
        if self.intent_steps is not None:
            walked = np.log(self.base.intent_mix) + self.strength * self.intent_steps[:day].sum(axis=0)
            world = replace(world, intent_mix=np.exp(walked) / np.exp(walked).sum())
        if self.name == "new_value" and day >= self.change_day:
            feature = new_value_feature(self.base.spec)
            share = min(0.5, NEW_VALUE_GROWTH * self.strength * (day - self.change_day + 1))
            world = replace(world, new_values={feature: (f"{feature}-new", share)})
        return world

    def logs_corrupt(self, day: int) -> bool:
        return self.name == "broken_release" and day == self.change_day


def shifted_segment(world: World) -> tuple[str, str]:
    """The most common value of the first category feature: the segment a sudden shift moves."""
    name, feature = next((n, f) for n, f in world.spec.context.items() if isinstance(f, CategoryFeature))
    return name, feature.vocabulary[int(np.argmax(world.category_weights[name]))]


def new_value_feature(spec: AgentSpec) -> str:
    """The category feature that meets a value its vocabulary lacks: the one whose spec tolerates most of that."""
    categories = {n: f for n, f in spec.context.items() if isinstance(f, CategoryFeature)}
    return min(categories, key=lambda n: categories[n].min_in_vocabulary)


def scenario(name: str, spec: AgentSpec, seed: int, days: int, strength: float = 1.0) -> Scenario:
    """The named scenario for a loop of `days` days; the same arguments give the same worlds."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    rng = seeded_rng("scenario", spec.agent_id, seed)
    width = len(signal_names(spec))
    pairs = tuple(tuple(int(i) for i in rng.choice(width, size=2, replace=False)) for _ in range(PAIRS))
    base = replace(World.for_spec(spec, seed), pairs=pairs,
                   pair_weights=rng.normal(0.0, PAIR_SCALE, size=(len(spec.actions), PAIRS)))  # fmt: skip
    step = rng.normal(0.0, DRIFT_PER_DAY, size=base.true_weights.shape)
    drift = {"gradual_drift": step, "intent_drift": step / 2}.get(name, np.zeros_like(step))
    intent_steps = None
    if name == "intent_drift":
        if base.intent_mix is None:
            raise ValueError(f"intent_drift needs an agent whose context has a text or embedding feature, not "
                             f"{spec.agent_id}")  # fmt: skip
        intent_steps = rng.normal(0.0, INTENT_STEP, size=(days + 1, len(base.intent_mix)))
    handler = _with_new_handler(base, seed, rng) if name == "new_handler" else None
    return Scenario(name, base, change_day=max(1, days // 2), drift_step=drift, strength=strength,
                    intent_steps=intent_steps, handler=handler)  # fmt: skip


def _with_new_handler(base: World, seed: int, rng: np.random.Generator) -> World:
    """The base world once the spec lists NEW_HANDLER: every other action's truth as it was (the simulator draws
    each action's from its name and features), the new one's from its features, plus a bonus."""
    spec = base.spec
    if set(spec.action_features) != set(NEW_HANDLER_FEATURES):
        raise ValueError(f"new_handler adds {NEW_HANDLER} with the action features {sorted(NEW_HANDLER_FEATURES)} "
                         f"(llm-router's); {spec.agent_id} has {sorted(spec.action_features) or 'none'}")  # fmt: skip
    raw = spec.model_dump()
    raw["actions"].append(NEW_HANDLER)
    for name, value in NEW_HANDLER_FEATURES.items():
        raw["action_features"][name]["values"][NEW_HANDLER] = value
    added = World.for_spec(AgentSpec.model_validate(raw), seed)
    weights = added.true_weights.copy()
    weights[-1, -1] += NEW_HANDLER_BONUS
    pair_weights = np.vstack([base.pair_weights, rng.normal(0.0, PAIR_SCALE, size=(1, PAIRS))])
    return replace(added, true_weights=weights, pairs=base.pairs, pair_weights=pair_weights)


def evaluation_contexts(world: World, rows: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """A sample of the day's contexts, as the agent sees them and as the truth does."""
    values, signals = sample_contexts(world, rows, seeded_rng("evaluation", seed))
    return pa.table(values).to_pylist(), signals


def policy_value(world: World, signals: np.ndarray, probabilities: np.ndarray) -> float:
    """The expected reward per decision of a policy on these contexts, from the truth."""
    return float((probabilities * world.reward_probability(signals)).sum(axis=1).mean())
