"""How often the gate's 95% intervals cover the truth: the paired policy-value difference of a challenger and the
champion, by each estimator, over many simulated worlds whose truth is known.

For each seed, in the simulated world of the agent's spec (dev/simulate.py), as a night of the pipeline sees it:

1. the champion is a logistic regression fitted on `champion_rows` decisions of the world's logging policy;
2. the challenger is the spec's first candidate fitted on `train_rows` more decisions; the doubly robust
   estimator's reward model is the champion, as in the gate (`dr`), or the challenger itself, as when a spec
   names the challenger's candidate as `reward_model` (`dr_own`); neither sees the holdout;
3. the holdout is `holdout_rows` decisions of the champion acting as the agent does, greedy with `exploration`,
   so the challenger matches the logged action mostly where it agrees with the champion;
4. the truth: each greedy policy's expected reward on `truth_rows` fresh contexts, and their difference.

Coverage is the share of seeds whose interval holds the true difference; the width is the interval's. Beside it,
how often the one-sided lower bound at the spec's `gate.policy_value.confidence`, the one the gate deploys on
(rules.py), lies above the true difference: at most one minus the confidence, if the bound is honest.
`python -m agent_retraining.dev.estimator_coverage --seeds 100` prints the table (`make coverage`).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from agent_retraining.contract import context_column
from agent_retraining.evaluate.estimators import ESTIMATORS, LoggedRows, paired_difference
from agent_retraining.evaluate.rules import one_sided_lower_bound
from agent_retraining.spec import AgentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    champion_rows: int = 1500
    train_rows: int = 6000
    holdout_rows: int = 3000
    truth_rows: int = 40_000
    exploration: float = 0.1


def _logged_table(spec: AgentSpec, context: dict[str, pa.Array], actions: np.ndarray) -> pa.Table:
    columns = {context_column(name): values for name, values in context.items()}
    return pa.table({**columns, "action": pa.array([spec.actions[a] for a in actions])})


def scores_of(spec: AgentSpec, model, context: dict[str, pa.Array]) -> np.ndarray:
    from agent_retraining.models.encoding import action_scores, context_block, encoding_of

    encoding = encoding_of(spec)
    table = pa.table({context_column(name): values for name, values in context.items()})
    return action_scores(encoding, context_block(encoding, table), [model])[0]


def _draw_actions(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    return (
        (rng.random((len(probabilities), 1)) > probabilities.cumsum(axis=1))
        .sum(axis=1)
        .clip(max=probabilities.shape[1] - 1)
    )


def fit_on_world(spec: AgentSpec, name: str, world, rows: int, rng: np.random.Generator):
    """A candidate fitted on `rows` decisions of the world's logging policy."""
    from agent_retraining.dev.simulate import sample_contexts
    from agent_retraining.models.candidates import candidate
    from agent_retraining.models.features import encode
    from agent_retraining.models.training import fit, hyperparameters, load

    context, signals = sample_contexts(world, rows, rng)
    actions = _draw_actions(rng, world.policy_propensities(signals))
    rewards = rng.random(rows) < world.reward_probability(signals)[np.arange(rows), actions]
    matrix, _ = encode(
        spec, _logged_table(spec, context, actions).append_column("reward", pa.array(rewards, pa.float64()))
    )
    artifact, params = fit(name, matrix, rewards.astype(np.float32), spec.training.seed, hyperparameters(spec, name))
    return load(candidate(name).framework, artifact, params)


def logged_holdout(world, signals: np.ndarray, champion_scores: np.ndarray, exploration: float,
                   rng: np.random.Generator) -> LoggedRows:  # fmt: skip
    """The holdout as the agent logs it, the champion acting greedily with `exploration` and each logged action's
    reward drawn from the truth; the reward model's predictions (`expected`) are the caller's to add."""
    from agent_retraining.serving.client import greedy_policy

    acting = greedy_policy(champion_scores, exploration)
    logged = _draw_actions(rng, acting)
    at = np.arange(len(logged))
    rewards = (rng.random(len(logged)) < world.reward_probability(signals)[at, logged]).astype(float)
    return LoggedRows(rewards, acting[at, logged], logged)


def one_world(spec: AgentSpec, seed: int, setting: Setting = Setting()) -> dict[str, dict]:
    """The true paired difference in one world and, per estimator, its estimate and interval."""
    from agent_retraining.dev.simulate import World, sample_contexts, seeded_rng

    world, rng = World.for_spec(spec, seed), seeded_rng("coverage", spec.agent_id, seed)
    first = spec.candidates[0]
    champion = fit_on_world(spec, "logistic_regression", world, setting.champion_rows, rng)
    challenger = fit_on_world(spec, first, world, setting.train_rows, rng)
    context, signals = sample_contexts(world, setting.holdout_rows, rng)
    champion_scores, challenger_scores = scores_of(spec, champion, context), scores_of(spec, challenger, context)
    holdout = logged_holdout(world, signals, champion_scores, setting.exploration, rng)
    reward_models = {"snips": None, "dr": champion_scores, "dr_own": challenger_scores}
    truth_context, truth_signals = sample_contexts(world, setting.truth_rows, rng)
    truth = world.reward_probability(truth_signals)
    values = [truth[np.arange(setting.truth_rows), scores_of(spec, m, truth_context).argmax(axis=1)].mean()
              for m in (challenger, champion)]  # fmt: skip
    result = {"true_difference": float(values[0] - values[1])}
    for name, expected in reward_models.items():
        rows, estimator = replace(holdout, expected=expected), ESTIMATORS[name.split("_")[0]]
        paired = paired_difference(estimator.greedy_policy(rows, challenger_scores.argmax(axis=1)),
                                   estimator.greedy_policy(rows, champion_scores.argmax(axis=1)))  # fmt: skip
        lower = one_sided_lower_bound(paired, spec.gate.policy_value.confidence) if paired["ci"] else None
        result[name] = {"difference": paired["difference"], "ci": paired["ci"], "lower_bound": lower}
    return result


def summarise(worlds: list[dict]) -> dict[str, dict]:
    """Per estimator: coverage of the true difference, median interval width, mean absolute error, and the share of
    worlds whose one-sided lower bound lies above the truth."""
    summary = {}
    for name in (key for key in worlds[0] if key != "true_difference"):
        judged = [w for w in worlds if w[name]["ci"] is not None]
        covered = [w[name]["ci"][0] <= w["true_difference"] <= w[name]["ci"][1] for w in judged]
        summary[name] = {
            "worlds": len(judged),
            "coverage": float(np.mean(covered)) if judged else None,
            "median_width": float(np.median([w[name]["ci"][1] - w[name]["ci"][0] for w in judged])) if judged else None,
            "mean_abs_error": float(np.mean([abs(w[name]["difference"] - w["true_difference"]) for w in judged]))
            if judged else None,
            "bound_above_truth": float(np.mean([w[name]["lower_bound"] > w["true_difference"] for w in judged]))
            if judged else None,
        }  # fmt: skip
    return summary


def table(summary: dict[str, dict], seeds: int, confidence: float) -> str:
    lines = [f"{'estimator':<10} {'worlds':>6} {'coverage':>9} {'median width':>13} {'mean |error|':>13} "
             f"{'bound above truth':>18}"]  # fmt: skip
    for name, s in summary.items():
        lines.append(f"{name:<10} {s['worlds']:>6} {s['coverage']:>9.1%} {s['median_width']:>13.4f} "
                     f"{s['mean_abs_error']:>13.4f} {s['bound_above_truth']:>18.1%}")  # fmt: skip
    lines.append(
        f"95% intervals of the challenger-minus-champion policy value, {seeds} simulated worlds; an honest "
        f"one-sided {confidence:.0%} lower bound lies above the truth in at most {1 - confidence:.0%} of them"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from agent_retraining.spec import load_agent

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="support-bot")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(".local/coverage.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = load_agent(args.agent)
    worlds = []
    for seed in range(args.seeds):
        worlds.append(one_world(spec, seed))
        log.info("seed %d: true difference %+.4f", seed, worlds[-1]["true_difference"])
    summary = summarise(worlds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"agent": args.agent, "setting": Setting().__dict__, "summary": summary,
                                    "worlds": worlds}, indent=2))  # fmt: skip
    print(table(summary, args.seeds, spec.gate.policy_value.confidence))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
