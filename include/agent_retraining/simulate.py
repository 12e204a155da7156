"""Simulated agent logs with a known ground truth.

A hidden reward function of (context, action) and a logging policy that is an
imperfect model of it plus epsilon-greedy exploration, so every logged
propensity is the policy's true probability. Because the truth is known, tests
can check that the pipeline deploys better models and refuses worse ones.

    python -m agent_retraining.simulate --agent support-bot --start 2026-11-01 --days 14
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from agent_retraining.client import AgentModelClient
from agent_retraining.contract import SUCCESS_MARKER, day_prefix
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature, load_agent
from agent_retraining.storage import buckets_from_env, put_bytes, s3_client_from_env

EXPLORATION = 0.2  # epsilon of the logging policy


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class World:
    """Hidden reward weights and the logging policy's (distorted) copy of them."""

    spec: AgentSpec
    true_weights: np.ndarray  # (actions, features + 1)
    policy_weights: np.ndarray
    category_weights: dict[str, np.ndarray]  # how often each vocabulary value occurs, stable across days

    @classmethod
    def for_spec(cls, spec: AgentSpec, seed: int) -> World:
        rng = _rng("world", spec.agent_id, seed)
        width = len(_signal_names(spec)) + 1
        true_weights = rng.normal(0.0, 1.2, size=(len(spec.actions), width))
        true_weights[:, -1] = rng.normal(-0.8, 0.4, size=len(spec.actions))  # per-action base rate
        policy_weights = true_weights + rng.normal(0.0, 0.9, size=true_weights.shape)
        category_weights = {
            name: rng.dirichlet(np.full(len(feature.vocabulary), 2.0))
            for name, feature in spec.context.items()
            if isinstance(feature, CategoryFeature)
        }
        return cls(spec, true_weights, policy_weights, category_weights)

    def reward_probability(self, signals: np.ndarray) -> np.ndarray:
        """P(reward=1) for every row and action: shape (rows, actions)."""
        logits = _with_bias(signals) @ self.true_weights.T
        return 1.0 / (1.0 + np.exp(-logits))

    def policy_propensities(self, signals: np.ndarray) -> np.ndarray:
        greedy = np.argmax(_with_bias(signals) @ self.policy_weights.T, axis=1)
        n_actions = len(self.spec.actions)
        probabilities = np.full((len(signals), n_actions), EXPLORATION / n_actions)
        probabilities[np.arange(len(signals)), greedy] += 1.0 - EXPLORATION
        return probabilities


def _with_bias(signals: np.ndarray) -> np.ndarray:
    return np.hstack([signals, np.ones((len(signals), 1))])


def _signal_names(spec: AgentSpec) -> list[str]:
    names = []
    for name, feature in spec.context.items():
        if isinstance(feature, CategoryFeature):
            names.extend(f"{name}={value}" for value in feature.vocabulary)
        else:
            names.append(name)
    return names


def sample_contexts(world: World, rows: int, rng: np.random.Generator) -> tuple[dict[str, list], np.ndarray]:
    """Context values as logged (with nulls) and the numeric signals the hidden reward sees."""
    values: dict[str, list] = {}
    signals = []
    for name, feature in world.spec.context.items():
        missing = rng.random(rows) < feature.max_null_fraction / 2
        if isinstance(feature, CategoryFeature):
            index = rng.choice(len(feature.vocabulary), size=rows, p=world.category_weights[name])
            values[name] = [None if m else feature.vocabulary[i] for i, m in zip(index, missing, strict=True)]
            onehot = np.eye(len(feature.vocabulary))[index]
            onehot[missing] = 0.0
            signals.append(onehot)
        elif isinstance(feature, NumericFeature):
            unit = rng.beta(2.0, 3.0, size=rows)
            raw = feature.min + unit * (feature.max - feature.min)
            if feature.type == "int":
                raw = np.round(raw)
                values[name] = [None if m else int(v) for v, m in zip(raw, missing, strict=True)]
            else:
                values[name] = [None if m else round(float(v), 4) for v, m in zip(raw, missing, strict=True)]
            signals.append(np.where(missing, 0.0, 2.0 * unit - 1.0)[:, None])
        else:
            flag = rng.random(rows) < 0.4
            values[name] = [None if m else bool(v) for v, m in zip(flag, missing, strict=True)]
            signals.append(np.where(missing, 0.0, flag * 2.0 - 1.0)[:, None])
    return values, np.hstack(signals)


def day_events(world: World, day: date, rows: int, seed: int, agent: AgentModelClient | None = None) -> list[dict]:
    """One day of log events, reproducible from (agent, day, seed).

    With an `agent` client serving a deployed model, the agent acts on that
    model (and logs its version); before the first deploy it acts on the
    world's built-in policy and logs no version.
    """
    spec = world.spec
    rng = _rng("day", spec.agent_id, day.isoformat(), seed)
    context, signals = sample_contexts(world, rows, rng)
    version = agent.version if agent else None
    if version:
        rows_of_context = [{name: column[i] for name, column in context.items()} for i in range(rows)]
        propensities = agent.propensities(rows_of_context)
    else:
        propensities = world.policy_propensities(signals)
    cumulative = propensities.cumsum(axis=1)
    chosen = (rng.random((rows, 1)) > cumulative).sum(axis=1).clip(max=len(spec.actions) - 1)
    reward_probability = world.reward_probability(signals)[np.arange(rows), chosen]
    rewards = (rng.random(rows) < reward_probability).astype(int)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    seconds = np.sort(rng.uniform(0, 86_400 - 1e-3, size=rows))
    events = []
    for i in range(rows):
        ts = start + timedelta(seconds=float(seconds[i]))
        events.append(
            {
                "event_id": f"{day:%Y%m%d}-{seed}-{i:08d}",
                "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "agent_id": spec.agent_id,
                "session_id": f"s-{day:%Y%m%d}-{i // 3:07d}",
                "model_version": version,
                "context": {name: column[i] for name, column in context.items()},
                "action": spec.actions[chosen[i]],
                "propensity": round(float(propensities[i, chosen[i]]), 6),
                "reward": int(rewards[i]),
            }
        )
    return events


def corrupt(events: list[dict], spec: AgentSpec, rng: np.random.Generator) -> list[dict]:
    """What a buggy agent release does: zero propensities, unknown actions, out-of-range features."""
    numeric = [n for n, f in spec.context.items() if isinstance(f, NumericFeature)]
    for i in rng.choice(len(events), size=max(3, len(events) // 20), replace=False):
        kind = i % 3
        if kind == 0:
            events[i]["propensity"] = 0.0
        elif kind == 1:
            events[i]["action"] = "unknown_action"
        elif numeric:
            feature = spec.context[numeric[0]]
            too_big = feature.max * 10 + 1
            events[i]["context"][numeric[0]] = int(too_big) if feature.type == "int" else too_big
    return events


def write_day(s3, bucket: str, spec: AgentSpec, day: date, events: list[dict], files: int = 2) -> list[str]:
    """Write a day as gzipped JSONL parts, then the `_SUCCESS` marker that says it is complete."""
    keys = []
    chunk = -(-len(events) // files)
    for part in range(files):
        lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events[part * chunk : (part + 1) * chunk])
        key = f"{day_prefix(spec.agent_id, day)}part-{part:05d}.jsonl.gz"
        put_bytes(s3, bucket, key, gzip.compress(lines.encode(), mtime=0))
        keys.append(key)
    put_bytes(s3, bucket, day_prefix(spec.agent_id, day) + SUCCESS_MARKER, b"")
    return keys


def simulate(
    s3,
    bucket: str,
    spec: AgentSpec,
    start: date,
    days: int,
    events_per_day: int = 2000,
    seed: int = 0,
    corrupt_days: frozenset[date] = frozenset(),
    agent: AgentModelClient | None = None,
) -> list[str]:
    world = World.for_spec(spec, seed)
    keys = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if agent:
            agent.poll()  # as the agent would between days: pick up a newly deployed model
        events = day_events(world, day, events_per_day, seed, agent)
        if day in corrupt_days:
            events = corrupt(events, spec, _rng("corrupt", day.isoformat(), seed))
        keys.extend(write_day(s3, bucket, spec, day, events))
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write simulated agent logs to the logs bucket.")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--start", required=True, type=date.fromisoformat)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--events-per-day", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corrupt-day", action="append", default=[], type=date.fromisoformat)
    args = parser.parse_args(argv)
    spec = load_agent(args.agent)
    buckets, s3 = buckets_from_env(), s3_client_from_env()
    agent = AgentModelClient(spec, s3, buckets.models)
    bucket = buckets.logs
    keys = simulate(
        s3, bucket, spec, args.start, args.days, args.events_per_day, args.seed, frozenset(args.corrupt_day), agent
    )
    print(f"the agent acted on model {agent.version}" if agent.version else "no model deployed: built-in policy")
    last = args.start + timedelta(days=args.days - 1)
    print(f"wrote {len(keys)} log files for {spec.agent_id}, {args.start} to {last}, to s3://{bucket}/")
    for day in args.corrupt_day:
        print(f"  {day} is corrupted on purpose (the gate must refuse it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
