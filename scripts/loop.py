"""The closed loop on the embedded default: a simulated agent acts every day, the real DAG retrains it every night.

Warm-up: `window_days` days logged by the agent's original (logging) policy,
then the first night's run deploys the first model, which a *frozen* copy of
the agent keeps for good. Then, for each day of the loop, in the scenario's
world of that day (see include/agent_retraining/dev/scenarios.py):

1. the agent polls the manifest and acts through `AgentModelClient` on its live
   model, and its logs are written (corrupted on a broken-release day);
2. from the hidden truth, the expected reward per decision on a sample of the
   day's contexts of: the agent as deployed, the frozen agent, the oracle
   (greedy on the truth) and the original logging policy, every one exploring
   as it does when it logs;
3. the night's run of the real retraining DAG (`dag.test()`, as `make retrain`)
   on that day, and what it decided.

Writes `.local/loop/<scenario>.json` and `.local/loop/<scenario>.png` (`<scenario>-seed<N>` for another
seed than 0) and
prints a table. The loop's agent is `<agent>-<scenario>` with the agent's spec,
in the same local buckets; its logs, models and runs are cleared at the start.
`--without FEATURE` (repeatable) is the ablation: the same world, whose users still write what they write, but
the agent's spec without those context features (`<scenario>-without-<features>`), so the loop shows what they
were worth.

    python scripts/loop.py --agent support-bot --scenario gradual_drift --days 30
    python scripts/loop.py --agent llm-router --scenario intent_drift --without message --without message_embedding
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
LOG_DIR = REPO / ".local" / "logs"  # each night's Airflow log
START = date(2026, 1, 1)  # the first warm-up day: a fixed calendar, so a loop is reproducible
EVALUATION_ROWS = 20_000
LAST_DAYS = 10  # the gap closed is measured over the loop's last ten days
LINES = ("deployed", "frozen", "oracle", "logging")

log = logging.getLogger("loop")


def loop_spec(agent: str, scenario_name: str, estimator: str | None = None):
    """The agent's spec under the loop's own agent id, with another policy-value estimator if asked."""
    from agent_retraining.spec import AgentSpec, load_agent

    raw = load_agent(agent).model_dump()
    raw["agent_id"] = f"{agent}-{scenario_name.replace('_', '-')}"[:63]
    if estimator:
        raw["gate"]["policy_value"]["estimator"] = estimator
    return AgentSpec.model_validate(raw)


def without_features(spec, names: list[str]):
    """The spec without these context features (and the slices and tiers that name them), validated again."""
    from agent_retraining.spec import AgentSpec

    unknown = sorted(set(names) - set(spec.context))
    if unknown:
        raise SystemExit(f"--without {unknown}: not context features of {spec.agent_id} ({', '.join(spec.context)})")
    raw = spec.model_dump()
    raw["context"] = {n: f for n, f in raw["context"].items() if n not in names}
    raw["gate"]["slices"]["features"] = [n for n in raw["gate"]["slices"]["features"] if n not in names]
    raw["validation"]["tiers"] = {r: t for r, t in raw["validation"]["tiers"].items()
                                  if r.partition(":")[2] not in names}  # fmt: skip
    return AgentSpec.model_validate(raw)


def install_spec(spec, specs_dir: Path) -> None:
    """The loop agent's spec in the folder AGENT_SPECS_DIR names: the DAG file builds its DAG from there (each
    night, so a spec written again mid-loop, with a new action, is the next night's).

    Keys keep the spec's order: the feature encoding (and so which models the agent may load) follows it."""
    (specs_dir / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))


def retrain(spec, day: date) -> dict:
    """The real DAG for `day`, as `make retrain` runs it; what the night decided, from its report."""
    from agent_retraining.contract import run_prefix
    from agent_retraining.dev.dag_runner import run_night
    from agent_retraining.storage import buckets_from_env, read_json_or_none, s3_client_from_env

    log_file = LOG_DIR / f"loop-{spec.agent_id}-{day}.log"
    print(f"night of {day} (Airflow's log: {log_file})", flush=True)
    dag_run, report = run_night(spec, day, log_file)
    decision = (report or {}).get("decision") or {}
    validation = (report or {}).get("validation") or {}
    decided = read_json_or_none(s3_client_from_env(), buckets_from_env().artifacts,
                                run_prefix(spec.agent_id, day, dag_run.run_id) + "decision.json") or {}  # fmt: skip
    return {
        "run_state": dag_run.state,
        "outcome": report["outcome"] if report else "no report",
        "winner": report.get("winner") if report else None,
        "reason": decision.get("reason") or "; ".join(validation.get("failures", [])),
        "left_out": [d["day"] for d in validation.get("left_out", [])],
        "live_version": report.get("live_version") if report else None,
        "challenger": decided.get("winner"),  # the whole record: the report's summary does not carry the artifact
        "judged_by": (decided.get("estimator") or {}).get("name"),
        # The challenger minus the champion by every estimator (the deciding one's and the others'), so that the
        # same nights can be read as each estimator would have judged them.
        "vs_champion": {
            name: compared["vs_champion"]
            for name, compared in (decided.get("policy_value_differences") or {}).items()
            if compared.get("vs_champion")
        },
    }


def challenger_value(world, challenger: dict, contexts: list[dict], signals, exploration: float) -> float:
    """The expected reward per decision, under the truth, of the night's best candidate had it been served (greedy,
    exploring as the agent does), from its artifact in the run's folder."""
    from agent_retraining.dev.scenarios import policy_value
    from agent_retraining.models.artifacts import fetch_verified
    from agent_retraining.models.encoding import action_scores, context_block, context_table
    from agent_retraining.models.training import load
    from agent_retraining.serving.client import greedy_policy
    from agent_retraining.storage import buckets_from_env, s3_client_from_env

    body = fetch_verified(s3_client_from_env(), buckets_from_env().artifacts, challenger["artifact_key"],
                          challenger["sha256"])  # fmt: skip
    model, encoding = load(challenger["framework"], body, challenger["params"]), challenger["encoding"]
    scores = action_scores(encoding, context_block(encoding, context_table(encoding, contexts)), [model])[0]
    over_world = np.zeros((len(contexts), len(world.spec.actions)))
    over_world[:, [world.spec.actions.index(a) for a in encoding["actions"]]] = greedy_policy(scores, exploration)
    return policy_value(world, signals, over_world)


def values_of_the_day(world, agent, frozen, contexts, signals, first_actions: list[str]) -> dict[str, float]:
    """Each policy's expected reward per decision under the day's truth, and the share of the deployed agent's
    decisions that go to actions the loop's first spec did not have (new_handler)."""
    from agent_retraining.dev.scenarios import policy_value
    from agent_retraining.dev.simulate import acting_policy
    from agent_retraining.serving.client import greedy_policy

    sessions = [f"evaluation-{n}" for n in range(len(contexts))]  # a canary, if any, serves its share of them
    truth = world.reward_probability(signals)
    policies = {
        "deployed": acting_policy(world, agent, contexts, sessions, signals)[0],
        "frozen": acting_policy(world, frozen, contexts, sessions, signals)[0],
        "oracle": greedy_policy(truth, agent.exploration),
        "logging": world.policy_propensities(signals),
    }
    values = {name: policy_value(world, signals, probabilities) for name, probabilities in policies.items()}
    added = [i for i, action in enumerate(world.spec.actions) if action not in first_actions]
    return values | {"new_action_share": float(policies["deployed"][:, added].sum(axis=1).mean())}


def clear_agent(s3, buckets, agent_id: str) -> None:
    from agent_retraining.storage import delete_prefix

    for bucket in (buckets.logs, buckets.models, buckets.artifacts):
        delete_prefix(s3, bucket, f"{agent_id}/")


def run_loop(world_spec, without: list[str], scenario_name: str, days: int, events_per_day: int, seed: int,
             strength: float, specs_dir: Path) -> dict:  # fmt: skip
    """The loop in the world of `world_spec`, the agent learning and logging with that spec less `without`'s
    features (the same agent id), installed in `specs_dir` (AGENT_SPECS_DIR) again whenever the world's spec
    changes (a new action)."""
    from agent_retraining.dev.scenarios import evaluation_contexts, scenario
    from agent_retraining.dev.simulate import corrupt, day_table, seeded_rng, write_day
    from agent_retraining.serving.client import AgentModelClient
    from agent_retraining.storage import buckets_from_env, s3_client_from_env

    s3, buckets = s3_client_from_env(), buckets_from_env()
    world_of = scenario(scenario_name, world_spec, seed, days, strength)

    def agent_spec(world):
        return without_features(world.spec, without) if without else world.spec

    spec = agent_spec(world_of.world(0))
    install_spec(spec, specs_dir)
    clear_agent(s3, buckets, spec.agent_id)
    agent = AgentModelClient(spec.agent_id, s3, buckets.models)
    frozen = AgentModelClient(spec.agent_id, s3, buckets.models)
    warmup = [START + timedelta(days=n) for n in range(spec.training.window_days)]
    for day in warmup:
        write_day(s3, buckets.logs, spec, day, day_table(world_of.world(0), day, events_per_day, seed))
    first_night = retrain(spec, warmup[-1])
    log.info("warm-up night %s: %s", warmup[-1], first_night["outcome"])
    frozen.poll()  # the first model, kept for good
    records, first_actions = [], list(spec.actions)
    for index in range(1, days + 1):
        day, world = warmup[-1] + timedelta(days=index), world_of.world(index)
        if agent_spec(world) != spec:  # the operator changed the spec (new_handler): tonight's DAG reads it
            spec = agent_spec(world)
            install_spec(spec, specs_dir)
            log.info("day %d %s: the spec now lists the actions %s", index, day, spec.actions)
        agent.poll()  # as the agent does between days: pick up last night's deploy
        contexts, signals = evaluation_contexts(world, EVALUATION_ROWS, seed * 1000 + index)
        values = values_of_the_day(world, agent, frozen, contexts, signals, first_actions)
        events = day_table(world, day, events_per_day, seed, agent)
        if world_of.logs_corrupt(index):
            events = corrupt(events.to_pylist(), spec, seeded_rng("corrupt", day.isoformat(), seed))
        write_day(s3, buckets.logs, spec, day, events)
        night = retrain(spec, day)
        if night["challenger"] and agent.version:  # what the night's best candidate would have earned today
            values["challenger"] = challenger_value(world, night.pop("challenger"), contexts, signals,
                                                    agent.exploration)  # fmt: skip
        night.pop("challenger", None)
        served = agent.live.encoding["actions"] if agent.live else []
        records.append({"day": day.isoformat(), "index": index, "served_version": agent.version,
                        "served_actions": served, "logs_corrupt": world_of.logs_corrupt(index), **values,
                        **night})  # fmt: skip
        shown = " ".join(f"{line} {values[line]:.4f}" for line in LINES)
        log.info("day %d %s: %s; night: %s", index, day, shown, night["outcome"])
    return {"agent_id": spec.agent_id, "scenario": scenario_name, "days": days, "events_per_day": events_per_day,
            "features": list(spec.context), "without": without, "first_actions": first_actions,
            "seed": seed, "strength": strength, "change_day": world_of.change_day, "first_night": first_night,
            "last_actions": list(spec.actions), "frozen_version": frozen.version, "records": records,
            "summary": summarise(records, first_actions)}  # fmt: skip


def summarise(records: list[dict], first_actions: list[str]) -> dict:
    """The share of the frozen agent's gap to the oracle that retraining closed over the last days, the nights, and
    when the agent first served a model that knew an action the loop did not start with (new_handler)."""
    last = records[-LAST_DAYS:]
    totals = {line: sum(r[line] for r in last) for line in LINES}
    gap = totals["oracle"] - totals["frozen"]
    winners: dict[str, int] = {}
    for record in records:
        if record["winner"]:
            winners[record["winner"]] = winners.get(record["winner"], 0) + 1
    return {
        "last_days": len(last),
        "mean_reward_last_days": {line: totals[line] / len(last) for line in LINES},
        "gap_closed": (totals["deployed"] - totals["frozen"]) / gap if gap > 1e-9 else None,
        "winners": winners,
        "nights_deployed": sum(r["outcome"] == "deployed" for r in records),
        "nights_refused_data": [r["day"] for r in records if r["outcome"] == "data rejected"],
        "nights_refused_by_reward_rate": [r["day"] for r in records if "[reward_rate]" in (r["reason"] or "")],
        "broken_days_deployed": [r["day"] for r in records if r["logs_corrupt"] and r["outcome"] == "deployed"],
        "first_day_serving_new_actions": next(
            (r["index"] for r in records if set(r["served_actions"]) - set(first_actions)), None
        ),  # fmt: skip
        "new_action_share_last_days": sum(r["new_action_share"] for r in last) / len(last),
        # Nights whose best candidate was better by the truth than the model serving, yet kept waiting; and
        # deploys of a candidate that was worse by the truth than the model it replaced.
        "nights_better_kept_waiting": sum(
            r["outcome"] != "deployed" and r["challenger"] > r["deployed"] for r in records if "challenger" in r
        ),
        "nights_worse_deployed": sum(
            r["outcome"] == "deployed" and r["challenger"] < r["deployed"] for r in records if "challenger" in r
        ),
        "nights_judged": sum("challenger" in r for r in records),
        "judged_by": next((r["judged_by"] for r in records if r.get("judged_by")), None),
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = result["records"]
    days = [r["index"] for r in records]
    figure, axes = plt.subplots(figsize=(10, 5))
    for line, style in zip(LINES, ("-", "--", ":", "-."), strict=True):
        axes.plot(days, [r[line] for r in records], style, label=line)
    for marker, outcome, colour in (("^", "deployed", "tab:green"), ("x", "data rejected", "tab:red"),
                                    ("o", "kept champion", "tab:grey")):  # fmt: skip
        hits = [r for r in records if r["outcome"] == outcome]
        axes.scatter([r["index"] for r in hits], [r["deployed"] for r in hits], marker=marker, color=colour,
                     label=f"night: {outcome}", zorder=3)  # fmt: skip
    axes.set_xlabel("day of the loop")
    axes.set_ylabel("expected reward per decision (truth)")
    summary = result["summary"]
    closed = "n/a" if summary["gap_closed"] is None else f"{summary['gap_closed']:.0%}"
    axes.set_title(f"{result['scenario']}: frozen agent's gap to the oracle closed over the last "
                   f"{summary['last_days']} days: {closed}")  # fmt: skip
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(result: dict) -> str:
    lines = [f"{'day':>4} {'date':<11} {'deployed':>9} {'frozen':>9} {'oracle':>9} {'logging':>9}  night"]
    for r in result["records"]:
        note = (
            f"{r['outcome']}"
            + (f" ({r['winner']})" if r["winner"] else "")
            + (" [corrupt logs]" if r["logs_corrupt"] else "")
        )
        lines.append(f"{r['index']:>4} {r['day']:<11} {r['deployed']:>9.4f} {r['frozen']:>9.4f} {r['oracle']:>9.4f} "
                     f"{r['logging']:>9.4f}  {note}")  # fmt: skip
    s = result["summary"]
    closed = "n/a" if s["gap_closed"] is None else f"{s['gap_closed']:.1%}"
    lines += [f"gap between frozen and oracle closed over the last {s['last_days']} days: {closed}",
              f"nights deployed: {s['nights_deployed']} of {len(result['records'])}; winners: {s['winners']}",
              f"nights refused by the data gate: {s['nights_refused_data'] or 'none'} (by reward_rate: "
              f"{s['nights_refused_by_reward_rate'] or 'none'}); "
              f"corrupt days deployed: {s['broken_days_deployed'] or 'none'}",
              f"judged by {s['judged_by']}: of {s['nights_judged']} nights with a champion, a truly better "
              f"challenger kept waiting on {s['nights_better_kept_waiting']}, a truly worse one deployed on "
              f"{s['nights_worse_deployed']}"]  # fmt: skip
    added = ", ".join(a for a in result["last_actions"] if a not in result["first_actions"])
    if added and s["first_day_serving_new_actions"] is not None:
        lines.append(f"actions added mid-loop ({added}) first served on day {s['first_day_serving_new_actions']}; "
                     f"share of decisions they took over the last {s['last_days']} days: "
                     f"{s['new_action_share_last_days']:.1%}")  # fmt: skip
    elif added:
        lines.append(f"actions added mid-loop ({added}) never served: the nights' reasons above say why")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from agent_retraining.dev.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True)
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strength", type=float, default=1.0, help="how hard the world moves (1: as documented)")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="FEATURE",
        help="leave this context feature out of the agent's spec (the world keeps it)",
    )
    parser.add_argument(
        "--estimator",
        choices=["snips", "dr"],
        help="the gate's policy-value estimator (default: the spec's); the output's name ends in -<estimator>",
    )
    parser.add_argument("--out", type=Path, default=REPO / ".local" / "loop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    world_spec = loop_spec(args.agent, args.scenario, args.estimator)
    specs_dir = Path(tempfile.mkdtemp(prefix="loop-specs-"))
    os.environ["AGENT_SPECS_DIR"] = str(specs_dir)
    result = run_loop(world_spec, args.without, args.scenario, args.days, args.events_per_day, args.seed,
                      args.strength, specs_dir)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.scenario + "".join(f"-without-{n}" for n in args.without)
    name += "" if args.seed == 0 else f"-seed{args.seed}"
    name += f"-{args.estimator}" if args.estimator else ""
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"{name}.png")
    print(table(result))
    print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
