"""The canary's verdict: the agent's own logs since the canary started, one arm against the other.

Offline evaluation estimates a model's value from old logs; a canary measures
it. Both arms act on the same days' traffic, split by a hash of the routing key,
so each arm's mean reward is an on-policy measurement and their difference is
an A/B comparison: it decides. Beside it, each arm's model is valued off-policy
on every event of the canary's days, the way the offline gate values models
(SNIPS of its greedy policy), so a canary whose live result disagrees with its
offline estimate shows it.

Logs are read from the validated days (each day read and judged by the data
gate once, shared with the nightly runs); a day the gate refused, or whose logs
are not complete, is left out and named. Sums are kept per arm, one day in
memory at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import canary_verdict_key
from agent_retraining.days import validate_day
from agent_retraining.evaluation import Z_95, greedy_matches
from agent_retraining.features import action_indices, encode_context
from agent_retraining.manifest import ArtifactError, load_live_model, read_manifest
from agent_retraining.spec import AgentSpec, Release
from agent_retraining.storage import Buckets, read_json, read_parquet, write_json
from agent_retraining.training import LoadedModel, action_scores

ARMS = ("champion", "canary")


@dataclass
class ArmRewards:
    """Running sums of one arm's logged rewards: its mean and the variance of that mean."""

    events: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, rewards: np.ndarray) -> None:
        self.events += len(rewards)
        self.total += float(rewards.sum())
        self.squares += float((rewards**2).sum())

    @property
    def mean(self) -> float | None:
        return self.total / self.events if self.events else None

    @property
    def variance_of_mean(self) -> float | None:
        if self.events < 2:
            return None
        variance = (self.squares - self.total**2 / self.events) / (self.events - 1)
        return max(variance, 0.0) / self.events


@dataclass
class GreedyValue:
    """Running sums for the SNIPS value of a model's greedy policy (and its delta-method interval): the value is
    sum(w r) / sum(w) with w = matched / propensity; the variance needs sum(w^2), sum(w^2 r), sum(w^2 r^2)."""

    matched: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(5))  # w, w r, w^2, w^2 r, w^2 r^2

    def add(self, matches: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
        w = matches / propensities
        self.matched += int(matches.sum())
        self.sums += [w.sum(), (w * rewards).sum(), (w**2).sum(), (w**2 * rewards).sum(), (w**2 * rewards**2).sum()]

    def summary(self) -> dict:
        w, wr, w2, w2r, w2r2 = self.sums
        if w == 0:
            return {"value": None, "ci": None, "matched_events": 0}
        value = wr / w
        stderr = math.sqrt(max(w2r2 - 2 * value * w2r + value**2 * w2, 0.0)) / w
        return {"value": value, "ci": [value - Z_95 * stderr, value + Z_95 * stderr], "matched_events": self.matched}


def difference(champion: ArmRewards, canary: ArmRewards) -> dict:
    """Canary minus champion mean reward with a 95% interval (the two arms' events are independent)."""
    if champion.variance_of_mean is None or canary.variance_of_mean is None:
        return {"value": None, "ci": None}
    value = canary.mean - champion.mean
    stderr = math.sqrt(champion.variance_of_mean + canary.variance_of_mean)
    return {"value": value, "ci": [value - Z_95 * stderr, value + Z_95 * stderr]}


@dataclass(frozen=True)
class OperatorOverride:
    """What an operator asked for in the trigger form; it wins over the rule, and is recorded as such."""

    promote_now: bool = False
    abort_now: bool = False
    reason: str = ""

    def __post_init__(self):
        if self.promote_now and self.abort_now:
            raise ValueError("promote_now and abort_now are both set: choose one")
        if (self.promote_now or self.abort_now) and len(self.reason.strip()) < 5:
            raise ValueError("promote_now and abort_now need a reason (5 characters or more), kept in the manifest")


def verdict(release: Release, arms: dict[str, ArmRewards], diff: dict, days_run: int,
            override: OperatorOverride) -> tuple[str, str]:  # fmt: skip
    """promote, abort or wait, and why in one sentence with the numbers."""
    if override.abort_now:
        return "abort", f"aborted by the operator: {override.reason}"
    if override.promote_now:
        return "promote", f"promoted by the operator: {override.reason}"
    events = ", ".join(f"{arm} {arms[arm].events}" for arm in ARMS)
    enough = all(arms[arm].events >= release.min_events_per_arm for arm in ARMS)
    if enough:
        low, high = diff["ci"]
        measured = (f"canary minus champion mean reward {diff['value']:+.4f}, 95% interval [{low:+.4f}, "
                    f"{high:+.4f}], on {events} events")  # fmt: skip
        if low > -release.margin:
            return "promote", f"{measured}: the lower bound is above -{release.margin}"
        if high < -release.margin:
            return "abort", f"{measured}: the upper bound is below -{release.margin}, the canary is worse"
        undecided = f"{measured}: the interval still spans -{release.margin}"
    else:
        undecided = f"{events} events, at least {release.min_events_per_arm} per arm needed"
    if days_run >= release.max_days:
        return "abort", f"no verdict after {days_run} day(s) of logs (max_days {release.max_days}): {undecided}"
    return "wait", undecided


def canary_days(canary: dict, day: date, max_days: int) -> list[date]:
    """The days of logs the canary served on, up to the run's day (at most max_days of them)."""
    first = date.fromisoformat(canary["first_day"])
    count = min((day - first).days + 1, max_days)
    return [first + timedelta(days=n) for n in range(max(count, 0))]


def _read_arms(
    s3, buckets: Buckets, spec: AgentSpec, models: dict[str, tuple[str, LoadedModel]], days: list[date]
) -> tuple[dict[str, ArmRewards], dict[str, GreedyValue], list[dict]]:
    """Each arm's rewards, and each arm's model valued on every event either arm acted on, one day at a time."""
    arms = {arm: ArmRewards() for arm in ARMS}
    values = {arm: GreedyValue() for arm in ARMS}
    versions = pa.array([version for version, _ in models.values()], pa.string())
    left_out = []
    for day in days:
        summary = validate_day(s3, buckets, spec, day)
        if not summary["passed"]:
            why = "refused by the data gate" if summary["complete"] else "its logs are not complete"
            left_out.append({"day": day.isoformat(), "why": why, "verdict_key": summary["verdict_key"]})
            continue
        rows = read_parquet(s3, buckets.artifacts, read_json(s3, buckets.artifacts, summary["verdict_key"])["rows_key"])
        rows = rows.filter(pc.fill_null(pc.is_in(rows.column("model_version"), value_set=versions), False))
        rewards = rows.column("reward").to_numpy().astype(float)
        propensities = rows.column("propensity").to_numpy()
        logged = action_indices(spec, rows)
        acted = rows.column("model_version").to_numpy(zero_copy_only=False)
        scores = action_scores(spec, encode_context(spec, rows), [model for _, model in models.values()])
        for (arm, (version, _)), per_action in zip(models.items(), scores, strict=True):
            arms[arm].add(rewards[acted == version])
            values[arm].add(greedy_matches(per_action, logged), rewards, propensities)
        del rows
    return arms, values, left_out


def judge_canary(
    s3,
    buckets: Buckets,
    spec: AgentSpec,
    day: date,
    run_id: str,
    override: OperatorOverride = OperatorOverride(),
    records_only: str | None = None,
) -> dict:
    """The verdict on the running canary from its logs up to `day`, stored as a record of its own and returned.

    `records_only` ("backfill") judges and records but never acts. A canary whose
    artifact fails its checksum is aborted (the client never served it); a
    champion that cannot be loaded fails the run: nothing can be judged without it.
    """
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    canary = (live or {}).get("canary")
    if canary is None:
        return {"agent_id": spec.agent_id, "day": day.isoformat(), "verdict": "none", "acts": False,
                "reason": "no canary is running"}  # fmt: skip
    days = canary_days(canary, day, spec.release.max_days)
    arms, values = {arm: ArmRewards() for arm in ARMS}, {arm: GreedyValue() for arm in ARMS}
    left_out, diff = [], {"value": None, "ci": None}
    champion = (live["version"], load_live_model(s3, buckets, live))
    try:
        models = {"champion": champion, "canary": (canary["version"], load_live_model(s3, buckets, canary))}
    except ArtifactError as exc:
        action, reason = "abort", f"the canary cannot be served: {exc}"
    else:
        arms, values, left_out = _read_arms(s3, buckets, spec, models, days)
        diff = difference(arms["champion"], arms["canary"])
        action, reason = verdict(spec.release, arms, diff, len(days), override)
    if records_only:
        reason = f"a {records_only} run leaves the canary alone; the verdict would have been: {action}, {reason}"
    record = {
        "agent_id": spec.agent_id,
        "run_id": run_id,
        "day": day.isoformat(),
        "canary": {k: canary[k] for k in ("version", "share", "first_day", "started_at", "run_id")},
        "champion": live["version"],
        "days": [d.isoformat() for d in days],
        "left_out": left_out,
        "arms": {
            arm: {
                "version": version,
                "events": arms[arm].events,
                "mean_reward": arms[arm].mean,
                "greedy_snips": values[arm].summary(),
            }
            for arm, version in zip(ARMS, (live["version"], canary["version"]), strict=True)
        },
        "difference": diff,
        "release": spec.release.model_dump(),
        "verdict": action,
        "by": "operator" if override.promote_now or override.abort_now else "rule",
        "acts": records_only is None and action != "wait",
        "reason": reason,
    }
    record["record_key"] = canary_verdict_key(spec.agent_id, canary["version"], day, run_id)
    write_json(s3, buckets.artifacts, record["record_key"], record)
    return record
