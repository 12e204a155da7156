"""Simulated agent logs with a known ground truth.

A hidden reward function of (context, action) and a logging policy that is an
imperfect model of it plus epsilon-greedy exploration, so every logged
propensity is the policy's true probability. Because the truth is known, tests
can check that the pipeline deploys better models and refuses worse ones.

    python -m agent_retraining.dev.simulate --agent support-bot --start 2026-11-01 --days 14
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import day_prefix, success_key
from agent_retraining.dev import messages
from agent_retraining.serving.client import AgentModelClient, greedy_policy
from agent_retraining.spec import (
    AgentSpec,
    CategoryFeature,
    EmbeddingFeature,
    NumericFeature,
    OpenCategoryFeature,
    TextFeature,
    load_agent,
)
from agent_retraining.storage import buckets_from_env, put_bytes, s3_client_from_env

EXPLORATION = 0.2  # epsilon of the logging policy
EVENTS_PER_PART = 250_000  # events per log file: an agent rotates its log files


def seeded_rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


OPEN_VALUES = 200  # the values an open category logs (`<feature>-0000` ...), with skewed frequencies
OPEN_GROUPS = 4  # what the truth knows of such a value: its number modulo this
INTENT_EMPHASIS = 2.5  # the intent's reward weights against the other signals' (agents that read messages)


@dataclass(frozen=True)
class World:
    """Hidden reward weights and the logging policy's (distorted) copy of them.

    The base world's truth is linear per action, which the logistic regression
    fits exactly. Scenarios (scenarios.py) add what real worlds have: products of
    two signals (`pairs`, which no linear model of the features fits), segments
    whose reward differs, category values the spec does not know, and truths that
    change from day to day.
    """

    spec: AgentSpec
    true_weights: np.ndarray  # (actions, features + 1)
    policy_weights: np.ndarray
    category_weights: dict[str, np.ndarray]  # how often each vocabulary value occurs, stable across days
    pairs: tuple[tuple[int, int], ...] = ()  # signal columns whose product enters the truth
    pair_weights: np.ndarray | None = None  # (actions, pairs)
    segment_bonus: dict[int, np.ndarray] = field(default_factory=dict)  # signal column -> logit bonus per action
    new_values: dict[str, tuple[str, float]] = field(default_factory=dict)  # feature -> (unknown value, share)
    intent_mix: np.ndarray | None = None  # how often users write with each intent (specs with text or embeddings)

    @classmethod
    def for_spec(cls, spec: AgentSpec, seed: int) -> World:
        rng = seeded_rng("world", spec.agent_id, seed)
        width = len(signal_names(spec)) + 1
        if spec.action_features:
            true_weights, policy_noise = _weights_of_actions(spec, seed, width)
        else:
            true_weights = rng.normal(0.0, 1.2, size=(len(spec.actions), width))
            true_weights[:, -1] = rng.normal(-0.8, 0.4, size=len(spec.actions))  # per-action base rate
            policy_noise = rng.normal(0.0, 0.9, size=true_weights.shape)
        if _talks(spec):  # what the user asks for decides most of who should answer it
            true_weights[:, : len(messages.INTENTS)] *= INTENT_EMPHASIS
        policy_weights = true_weights + policy_noise
        category_weights = {
            name: rng.dirichlet(np.full(len(feature.vocabulary), 2.0))
            for name, feature in spec.context.items()
            if isinstance(feature, CategoryFeature)
        } | {  # a few values common, most rare, as product ids are
            name: rng.dirichlet(np.full(OPEN_VALUES, 0.3))
            for name, feature in spec.context.items()
            if isinstance(feature, OpenCategoryFeature)
        }
        intent_mix = rng.dirichlet(np.full(len(messages.INTENTS), 2.0)) if _talks(spec) else None
        return cls(spec, true_weights, policy_weights, category_weights, intent_mix=intent_mix)

    def reward_probability(self, signals: np.ndarray) -> np.ndarray:
        """P(reward=1) for every row and action: shape (rows, actions)."""
        logits = _with_bias(signals) @ self.true_weights.T
        if self.pairs:
            products = np.column_stack([signals[:, i] * signals[:, j] for i, j in self.pairs])
            logits += products @ self.pair_weights.T
        for column, bonus in self.segment_bonus.items():
            logits += signals[:, [column]] * bonus
        return 1.0 / (1.0 + np.exp(-logits))

    def with_reward_rate(self, rate: float, rows: int = 20_000) -> World:
        """The same world with every action's base logit moved by one shift, so that the logging policy earns
        `rate` per decision on average: an agent whose rewards are rare (clicks) or common (resolutions)."""
        _, signals = sample_contexts(self, rows, seeded_rng("reward-rate", self.spec.agent_id, rate))
        low, high = -15.0, 15.0
        for _ in range(50):
            shift = (low + high) / 2
            weights = self.true_weights.copy()
            weights[:, -1] += shift  # the logging policy's choices do not change: every action moves alike
            world = replace(self, true_weights=weights)
            earned = (world.reward_probability(signals) * world.policy_propensities(signals)).sum(axis=1).mean()
            low, high = (shift, high) if earned < rate else (low, shift)
        return world

    def signal_column(self, feature: str, value: str) -> int:
        """Where one category value's indicator is among the signals (for segments of the truth)."""
        return signal_names(self.spec).index(f"{feature}={value}")

    def policy_propensities(self, signals: np.ndarray) -> np.ndarray:
        return greedy_policy(_with_bias(signals) @ self.policy_weights.T, EXPLORATION)


def _with_bias(signals: np.ndarray) -> np.ndarray:
    return np.hstack([signals, np.ones((len(signals), 1))])


def _weights_of_actions(spec: AgentSpec, seed: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """With action features, each action's truth is what its features bring plus a little of its own (so actions
    that share a family share most of their truth), and the logging policy's error on it; drawn per action name,
    so adding an action to the spec leaves every other action's truth as it was."""
    from agent_retraining.models.encoding import action_features, encoding_of

    _, values = action_features(encoding_of(spec))
    shared = seeded_rng("world-action-features", spec.agent_id, seed).normal(0.0, 1.2, size=(values.shape[1], width))
    true_weights, policy_noise = [], []
    for action, features in zip(spec.actions, values.astype(np.float64), strict=True):
        own = seeded_rng("world-action", spec.agent_id, seed, action)
        weights = features @ shared + own.normal(0.0, 0.4, size=width)
        weights[-1] = own.normal(-0.8, 0.4)  # the action's base rate
        true_weights.append(weights)
        policy_noise.append(own.normal(0.0, 0.9, size=width))
    return np.array(true_weights), np.array(policy_noise)


def _talks(spec: AgentSpec) -> bool:
    """Whether the agent sees what users write (a text or an embedding feature): its rows then have an intent."""
    return any(isinstance(f, TextFeature | EmbeddingFeature) for f in spec.context.values())


def signal_names(spec: AgentSpec) -> list[str]:
    """What the truth sees: category values, numbers, and the intent of what users write (not its words)."""
    names = [f"intent={intent}" for intent in messages.INTENTS] if _talks(spec) else []
    for name, feature in spec.context.items():
        if isinstance(feature, CategoryFeature):
            names.extend(f"{name}={value}" for value in feature.vocabulary)
        elif isinstance(feature, OpenCategoryFeature):
            names.extend(f"{name}~{group}" for group in range(OPEN_GROUPS))
        elif isinstance(feature, TextFeature | EmbeddingFeature):
            continue
        else:
            names.append(name)
    return names


def sample_contexts(world: World, rows: int, rng: np.random.Generator) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Context values as logged (with nulls) and the numeric signals the hidden reward sees."""
    values: dict[str, pa.Array] = {}
    signals = []
    if world.intent_mix is not None:
        intents = rng.choice(len(world.intent_mix), size=rows, p=world.intent_mix)
        languages = rng.choice(len(messages.LANGUAGES), size=rows, p=messages.LANGUAGE_MIX)
        signals.append(np.eye(len(world.intent_mix))[intents])
    for name, feature in world.spec.context.items():
        missing = rng.random(rows) < feature.max_null_fraction / 2
        if isinstance(feature, TextFeature):
            values[name] = pa.array(messages.messages(intents, languages, rng), mask=missing)
        elif isinstance(feature, EmbeddingFeature):
            vectors = messages.embeddings(intents, languages, feature.dim, world.spec.training.seed, rng)
            offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * feature.dim)
            values[name] = pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel()), mask=pa.array(missing))
        elif isinstance(feature, CategoryFeature):
            index = rng.choice(len(feature.vocabulary), size=rows, p=world.category_weights[name])
            values[name] = pc.take(pa.array(feature.vocabulary), pa.array(index, mask=missing))
            onehot = np.eye(len(feature.vocabulary))[index]
            onehot[missing] = 0.0
            if name in world.new_values:  # a value the spec does not know: the truth sees no known value
                value, share = world.new_values[name]
                unknown = ~missing & (rng.random(rows) < share)
                values[name] = pc.if_else(pa.array(unknown), value, values[name])
                onehot[unknown] = 0.0
            signals.append(onehot)
        elif isinstance(feature, OpenCategoryFeature):  # the truth sees the value's group, the models its bucket
            index = rng.choice(OPEN_VALUES, size=rows, p=world.category_weights[name])
            values[name] = pc.take(_numbered(f"{name}-", np.arange(OPEN_VALUES), 4), pa.array(index, mask=missing))
            onehot = np.eye(OPEN_GROUPS)[index % OPEN_GROUPS]
            onehot[missing] = 0.0
            signals.append(onehot)
        elif isinstance(feature, NumericFeature):
            unit = rng.beta(2.0, 3.0, size=rows)
            raw = feature.min + unit * (feature.max - feature.min)
            logged = np.round(raw).astype(np.int64) if feature.type == "int" else np.round(raw, 4)
            values[name] = pa.array(logged, mask=missing)
            signals.append(np.where(missing, 0.0, 2.0 * unit - 1.0)[:, None])
        else:
            flag = rng.random(rows) < 0.4
            values[name] = pa.array(flag, mask=missing)
            signals.append(np.where(missing, 0.0, flag * 2.0 - 1.0)[:, None])
    return values, np.hstack(signals)


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0"), "")


def acting_policy(
    world: World, agent: AgentModelClient | None, contexts: list[dict], routing_keys: list[str], signals: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """What the agent does in these contexts, as propensities over the world's actions (an action its model does
    not know yet gets none), and the model version that acted; before any deploy, the world's own logging policy
    and no version."""
    if not (agent and agent.version):
        return world.policy_propensities(signals), [None] * len(contexts)
    probabilities, versions = agent.serve(contexts, routing_keys)
    known = [world.spec.actions.index(action) for action in agent.actions]
    over_world = np.zeros((len(contexts), len(world.spec.actions)))
    over_world[:, known] = probabilities
    return over_world, versions


GRADED_CONCENTRATION = 4.0  # a graded reward is Beta(k p, k (1 - p)) on its range: mean p, a judge's spread


def outcomes(spec: AgentSpec, expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each decision's reward given the truth's expected reward on [0, 1]: a coin flip for a binary reward, a
    score on the spec's range (rounded to two decimals, as a judge or a form writes it) for a graded one."""
    if spec.reward.type == "binary":
        return (rng.random(len(expected)) < expected).astype(np.int64)
    low, high = spec.reward.range
    clipped = np.clip(expected, 1e-3, 1 - 1e-3)
    scores = rng.beta(GRADED_CONCENTRATION * clipped, GRADED_CONCENTRATION * (1 - clipped))
    return np.round(low + (high - low) * scores, 2)


def day_table(world: World, day: date, rows: int, seed: int, agent: AgentModelClient | None = None) -> pa.Table:
    """One day of log events as columns (contract v1), reproducible from (agent, day, seed).

    Columnar so that a benchmark can write millions of events a day. With an
    `agent` client serving a deployed model, the agent acts through it, routing
    each session to the live model or a canary, and logs the version that acted;
    before the first deploy it acts on the world's built-in policy and logs no
    version.
    """
    spec = world.spec
    rng = seeded_rng("day", spec.agent_id, day.isoformat(), seed)
    context, signals = sample_contexts(world, rows, rng)
    context = pa.StructArray.from_arrays(list(context.values()), names=list(context))
    numbers = np.arange(rows)
    sessions = _numbered(f"s-{day:%Y%m%d}-", numbers // 3, 7)
    propensities, versions = acting_policy(world, agent, context.to_pylist(), sessions.to_pylist(), signals)
    cumulative = propensities.cumsum(axis=1)
    chosen = (rng.random((rows, 1)) > cumulative).sum(axis=1).clip(max=len(spec.actions) - 1)
    rewards = outcomes(spec, world.reward_probability(signals)[np.arange(rows), chosen], rng)
    milliseconds = np.floor(np.sort(rng.uniform(0, 86_400 - 1e-3, size=rows)) * 1000).astype("timedelta64[ms]")
    stamps = np.datetime_as_string(np.datetime64(day.isoformat(), "ms") + milliseconds, unit="ms")
    return pa.table(
        {
            "event_id": _numbered(f"{day:%Y%m%d}-{seed}-", numbers, 8),
            "ts": pc.binary_join_element_wise(pa.array(stamps), "Z", ""),
            "agent_id": pa.repeat(pa.scalar(spec.agent_id, pa.string()), rows),
            "session_id": sessions,
            "model_version": pa.array(versions, pa.string()),
            "context": context,
            "action": pc.take(pa.array(spec.actions), pa.array(chosen)),
            "propensity": pa.array(np.round(propensities[numbers, chosen], 6)),
            "reward": pa.array(rewards),
        }
    )


def day_events(world: World, day: date, rows: int, seed: int, agent: AgentModelClient | None = None) -> list[dict]:
    """The same day as one dict per event, for tests that edit events by hand."""
    return day_table(world, day, rows, seed, agent).to_pylist()


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


def _json_pieces(column: pa.Array) -> list:
    """A column's values as JSON text, as pieces to concatenate (literals and arrays); null becomes `null`."""
    if pa.types.is_struct(column.type):
        pieces: list = []
        for i, field in enumerate(column.type):
            pieces += ["{" if i == 0 else ",", f"{json.dumps(field.name)}:", *_json_pieces(column.field(i))]
        return [*pieces, "}"]
    if pa.types.is_string(column.type):
        if pc.any(pc.match_substring_regex(column, r"[\x00-\x1f]")).as_py():
            raise ValueError("control characters in a string column; write such events as dicts")
        escaped = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
        return [pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")]
    if pa.types.is_list(column.type):  # an embedding: its numbers joined by commas, in brackets
        offsets = column.offsets.to_numpy()
        numbers = pc.cast(column.values.slice(offsets[0], offsets[-1] - offsets[0]), pa.string())
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), numbers,
                                                         mask=column.is_null()), ",")  # fmt: skip
        return [pc.fill_null(pc.binary_join_element_wise("[", joined, "]", ""), "null")]
    return [pc.fill_null(pc.cast(column, pa.string()), "null")]  # numbers in shortest form; true/false


def to_jsonl(events: pa.Table | list[dict]) -> bytes:
    """Events as JSON Lines.

    A contract-shaped table is encoded in Arrow, all lines in one concatenation
    (about a second per million events); a list of dicts, which tests edit by
    hand to break the contract, goes through `json.dumps` as it is.
    """
    if isinstance(events, list):
        return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()
    if events.num_rows == 0:
        return b""
    table = events.combine_chunks()
    struct = pa.StructArray.from_arrays([table.column(n).chunk(0) for n in table.column_names], table.column_names)
    lines = pc.binary_join_element_wise(*_json_pieces(struct), "\n", "")
    # The lines are contiguous in the array's data buffer: that buffer is the file.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def write_part(s3, bucket: str, spec: AgentSpec, day: date, part: int, events: pa.Table | list[dict]) -> str:
    """One gzipped JSONL log object of a day, as a log shipper rotating its files would write it."""
    key = f"{day_prefix(spec.agent_id, day)}part-{part:05d}.jsonl.gz"
    # Fast compression, as a log shipper would use; reading costs about the same at any level.
    put_bytes(s3, bucket, key, gzip.compress(to_jsonl(events), compresslevel=1, mtime=0))
    return key


def write_day(s3, bucket: str, spec: AgentSpec, day: date, events: pa.Table | list[dict]) -> list[str]:
    """Write a day as gzipped JSONL parts of at most EVENTS_PER_PART events, then the `_SUCCESS` marker."""
    parts = max(2, -(-len(events) // EVENTS_PER_PART))
    chunk = -(-len(events) // parts)
    keys = [write_part(s3, bucket, spec, day, part, events[part * chunk : (part + 1) * chunk]) for part in range(parts)]
    put_bytes(s3, bucket, success_key(spec.agent_id, day), b"")
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
        events = day_table(world, day, events_per_day, seed, agent)
        if day in corrupt_days:
            events = corrupt(events.to_pylist(), spec, seeded_rng("corrupt", day.isoformat(), seed))
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
    agent = AgentModelClient(spec.agent_id, s3, buckets.models)
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
