"""How often the gate's nightly choice is right by the truth, with SNIPS and with DR deciding the same nights.

`make loop` counts the nights a truly better challenger waited and a truly worse one deployed, but each
estimator's loop follows its own trajectory: a gate that deploys sooner serves a champion nearer the best, so its
later challengers are nearer ties, and twenty nights hold a handful of bad deploys, too few to tell two gates
apart. Here both estimators judge every night, many nights over, as a night of the loop sees it:

1. the world is the agent's drifting scenario (dev/scenarios.py) on day `Night.day`;
2. the champion is one of the spec's candidates, in turn, fitted on decisions of a day 1 to 5 days older;
3. the challengers are every candidate of the spec, fitted on yesterday's decisions; DR's reward model is the
   champion, as in the gate (decide.py);
4. the holdout is today's decisions of the champion acting as the agent does, greedy with `exploration`;
5. by each estimator, the gate's choice: the best candidate by the spec's primary metric among those whose
   `policy_value` rule against the champion passes (rules.py's own: enough matched rows, the one-sided bound,
   the margin); the other rules (floors, slices, regressions) are left out, they judge the model, not the policy;
6. the truth: each policy's expected reward on fresh contexts of today's world, exploring as the agent does,
   as the loop scores it.

`python -m agent_retraining.dev.gate_decisions --seeds 200` prints the table (`make decisions`).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from agent_retraining.dev.estimator_coverage import fit_on_world, logged_holdout, scores_of
from agent_retraining.evaluate.estimators import ESTIMATORS, greedy_estimates, paired_difference
from agent_retraining.evaluate.metrics import model_metrics
from agent_retraining.evaluate.rules import HoldoutEvidence, policy_rule, ranked_candidates
from agent_retraining.spec import AgentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Night:
    day: int = 12  # of the scenario: the drift has moved the world for as many days
    train_rows: int = 6000
    holdout_rows: int = 3000
    truth_rows: int = 40_000
    exploration: float = 0.1
    oldest_champion: int = 5  # the champion was trained 1 to this many days before the challengers


def one_night(spec: AgentSpec, scenario_name: str, seed: int, night: Night = Night()) -> dict:
    """Every candidate's true difference from the champion, each estimator's verdict on it, and each estimator's
    choice."""
    from agent_retraining.dev.scenarios import policy_value, scenario
    from agent_retraining.dev.simulate import sample_contexts, seeded_rng
    from agent_retraining.serving.client import greedy_policy

    worlds, rng = scenario(scenario_name, spec, seed, night.day), seeded_rng("decisions", spec.agent_id, seed)
    age = 1 + seed % night.oldest_champion
    champion_name = spec.candidates[seed % len(spec.candidates)]
    champion = fit_on_world(spec, champion_name, worlds.world(night.day - 1 - age), night.train_rows, rng)
    models = {name: fit_on_world(spec, name, worlds.world(night.day - 1), night.train_rows, rng)
              for name in spec.candidates}  # fmt: skip
    today = worlds.world(night.day)
    context, signals = sample_contexts(today, night.holdout_rows, rng)
    scores = {name: scores_of(spec, model, context) for name, model in models.items()}
    champion_scores = scores_of(spec, champion, context)
    rows = replace(logged_holdout(today, signals, champion_scores, night.exploration, rng), expected=champion_scores)

    truth_context, truth_signals = sample_contexts(today, night.truth_rows, rng)
    true_value = {name: policy_value(today, truth_signals, greedy_policy(scores_of(spec, model, truth_context),
                                                                        night.exploration))
                  for name, model in {**models, "champion": champion}.items()}  # fmt: skip

    champion_estimates = greedy_estimates(champion_scores, rows)
    estimates = {name: greedy_estimates(per_action, rows) for name, per_action in scores.items()}
    candidates = {name: {"true_difference": true_value[name] - true_value["champion"]} for name in scores}
    chosen = {}
    for estimator in ESTIMATORS:
        verdicts, metrics = {}, {}
        for name, per_action in scores.items():
            metrics[name] = model_metrics(per_action, rows, spec.reward, estimates[name], estimator, masks={})
            paired = paired_difference(estimates[name][estimator], champion_estimates[estimator])
            evidence = HoldoutEvidence(rows=len(rows), positive_rewards=int(rows.rewards.sum()), vs_logging={},
                                       vs_champion=paired, estimator=estimator)  # fmt: skip
            rule = policy_rule("policy_value", "champion", metrics[name],
                               champion_estimates[estimator].matched_rows, evidence, spec)  # fmt: skip
            verdicts[name] = {"difference": paired["difference"], "ci": paired["ci"], "passed": rule["passed"]}
            candidates[name][estimator] = verdicts[name]
        ranked = ranked_candidates(spec, metrics)
        chosen[estimator] = {
            "deployed": next((name for name in ranked if verdicts[name]["passed"]), None),
            "ranked": ranked,
        }
    return {"seed": seed, "champion": champion_name, "champion_age_days": age, "candidates": candidates,
            "chosen": chosen}  # fmt: skip


def summarise(nights: list[dict]) -> dict[str, dict]:
    """Per estimator, over the same nights: deploys, and those of a truly worse challenger (worse by any amount);
    nights a truly better one waited (the night's best-ranked candidate, as the loop scores the night's
    challenger); the true gain deployed and missed; and the share of nights with no truly better candidate that
    deployed anyway, which the one-sided bound keeps under one minus its confidence where its intervals are
    honest."""
    summary = {}
    for estimator in nights[0]["chosen"]:
        deployed, waiting, null_nights, null_deployed = [], [], 0, 0
        for night in nights:
            truth = {name: c["true_difference"] for name, c in night["candidates"].items()}
            choice = night["chosen"][estimator]
            if choice["deployed"]:
                deployed.append(truth[choice["deployed"]])
            elif truth[choice["ranked"][0]] > 0:
                waiting.append(truth[choice["ranked"][0]])
            if max(truth.values()) <= 0:
                null_nights += 1
                null_deployed += choice["deployed"] is not None
        worse = [gain for gain in deployed if gain < 0]
        summary[estimator] = {
            "nights": len(nights),
            "deployed": len(deployed),
            "worse_deployed": len(worse),
            "worse_by": float(sum(worse)),
            "better_kept_waiting": len(waiting),
            "gain_missed": float(sum(waiting)),
            "gain_deployed": float(sum(deployed)),
            "nights_none_better": null_nights,
            "deployed_when_none_better": null_deployed / null_nights if null_nights else None,
        }
    return summary


def table(summary: dict[str, dict], scenario_name: str, confidence: float) -> str:
    lines = [f"{'estimator':<10} {'nights':>6} {'deployed':>8} {'truly worse (by)':>20} "
             f"{'truly better waited (gain)':>27} {'gain deployed':>14} {'deployed, none better':>22}"]  # fmt: skip
    for name, s in summary.items():
        none_better = s["deployed_when_none_better"]
        shown = "n/a" if none_better is None else f"{none_better:.0%} of {s['nights_none_better']}"
        lines.append(f"{name:<10} {s['nights']:>6} {s['deployed']:>8} {s['worse_deployed']:>9} ({s['worse_by']:+.4f}) "
                     f"{s['better_kept_waiting']:>16} ({s['gain_missed']:+.4f}) {s['gain_deployed']:>+14.4f} "
                     f"{shown:>22}")  # fmt: skip
    lines.append(f"the same {scenario_name} nights judged by each estimator; gains are true policy-value "
                 f"differences from the champion, summed; with no candidate truly better, an honest one-sided "
                 f"{confidence:.0%} bound deploys on at most {1 - confidence:.0%} of the nights")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from agent_retraining.spec import load_agent

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="support-bot")
    parser.add_argument("--scenario", default="gradual_drift")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = load_agent(args.agent)
    nights = []
    for seed in range(args.seeds):
        nights.append(one_night(spec, args.scenario, seed))
        log.info("seed %d: %s", seed, {e: c["deployed"] for e, c in nights[-1]["chosen"].items()})
    summary = summarise(nights)
    out = args.out or Path(f".local/decisions/{args.agent}-{args.scenario}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"agent": args.agent, "scenario": args.scenario, "night": asdict(Night()),
                               "summary": summary, "nights": nights}, indent=2))  # fmt: skip
    print(table(summary, args.scenario, spec.gate.policy_value.confidence))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
