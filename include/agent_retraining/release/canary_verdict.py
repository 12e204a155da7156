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
are not complete, is left out and named. Sums are kept per arm and per
session (the canary routes whole sessions, so sessions are the independent
units of the intervals), one day in memory at a time. The interval is judged
afresh every night, so a long-running canary gets several looks at its numbers:
`margin` and `min_events_per_arm` are what keep an early look from deciding on
noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import canary_verdict_key
from agent_retraining.datagate.validate_day import judge_or_reuse
from agent_retraining.evaluate.metrics import greedy_matches
from agent_retraining.evaluate.statistics import Z_95, RatioEstimate
from agent_retraining.manifest import read_manifest
from agent_retraining.models.artifacts import ArtifactError, load_live_model
from agent_retraining.models.encoding import action_scores, encoding_of
from agent_retraining.models.features import action_indices, encode_context
from agent_retraining.models.training import LoadedModel
from agent_retraining.serving.client import routes_to_canary
from agent_retraining.spec import AgentSpec, Release
from agent_retraining.storage import Buckets, read_json, read_parquet, write_json

ARMS = ("champion", "canary")


def difference(champion: RatioEstimate, canary: RatioEstimate) -> dict:
    """Canary minus champion mean reward with a 95% interval (the arms serve disjoint sessions: independent)."""
    if champion.variance is None or canary.variance is None:
        return {"value": None, "ci": None}
    value = canary.value - champion.value
    stderr = math.sqrt(champion.variance + canary.variance)
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

    def verdict(self) -> tuple[str, str] | None:
        """The operator's verdict and its reason, or None when the rule decides."""
        if self.abort_now:
            return "abort", f"aborted by the operator: {self.reason}"
        if self.promote_now:
            return "promote", f"promoted by the operator: {self.reason}"
        return None


def verdict(release: Release, events: dict[str, int], diff: dict, days_run: int) -> tuple[str, str]:
    """promote, abort or wait by the spec's rule, and why in one sentence with the numbers."""
    counts = ", ".join(f"{arm} {events[arm]}" for arm in ARMS)
    enough = all(events[arm] >= release.min_events_per_arm for arm in ARMS) and diff["ci"] is not None
    if enough:
        low, high = diff["ci"]
        measured = (f"canary minus champion mean reward {diff['value']:+.4f}, 95% interval [{low:+.4f}, "
                    f"{high:+.4f}], on {counts} events")  # fmt: skip
        if low > -release.margin:
            return "promote", f"{measured}: the lower bound is above -{release.margin}"
        if high < -release.margin:
            return "abort", f"{measured}: the upper bound is below -{release.margin}, the canary is worse"
        undecided = f"{measured}: the interval still spans -{release.margin}"
    else:
        undecided = f"{counts} events, at least {release.min_events_per_arm} per arm needed"
    if days_run >= release.max_days:
        return "abort", f"no verdict after {days_run} day(s) of logs (max_days {release.max_days}): {undecided}"
    return "wait", undecided


def canary_days(canary: dict, day: date, max_days: int) -> list[date]:
    """The days of logs the canary served on, up to the run's day (at most max_days of them)."""
    first = date.fromisoformat(canary["first_day"])
    count = min((day - first).days + 1, max_days)
    return [first + timedelta(days=n) for n in range(max(count, 0))]


def _by_session(sessions: pa.ChunkedArray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-session sums: a canary routes whole sessions, so sessions, not events, are the independent units."""
    table = pa.table({"session": sessions, "a": a, "b": b}).group_by("session").aggregate([("a", "sum"), ("b", "sum")])
    return table.column("a_sum").to_numpy(), table.column("b_sum").to_numpy()


@dataclass
class CanaryEvidence:
    """What the logs of the canary's days say: each arm's mean reward, each arm's model valued off-policy on the
    events of both arms (SNIPS of its greedy policy), what was counted and what was not, and why."""

    rewards: dict[str, RatioEstimate] = field(default_factory=lambda: {arm: RatioEstimate() for arm in ARMS})
    greedy: dict[str, RatioEstimate] = field(default_factory=lambda: {arm: RatioEstimate() for arm in ARMS})
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARMS, 0))
    not_counted: dict[str, int] = field(default_factory=dict)
    left_out: list[dict] = field(default_factory=list)
    routing_since: object = None  # the first event the canary served: the comparison starts there

    def skip(self, why: str, count: int) -> None:
        if count:
            self.not_counted[why] = self.not_counted.get(why, 0) + count

    def add_day(self, spec: AgentSpec, rows: pa.Table, models: dict[str, tuple[str, LoadedModel]], share: float):
        """Count the events each arm acted on, as the routing assigned them, from the canary's first event on.

        Events of a session the hash sends to the canary but that the champion served (the agent had not polled
        yet), and the champion's events before the canary's first one, would compare different hours or
        sessions: they are not counted, and the record says how many.
        """
        (champion, _), (canary, _) = models["champion"], models["canary"]
        rows = rows.filter(pc.fill_null(pc.is_in(rows.column("model_version"), pa.array([champion, canary])), False))
        sessions = pc.unique(rows.column("session_id")).to_pylist()
        routed = {key for key in sessions if routes_to_canary(key, canary, share)}
        to_canary = pc.is_in(rows.column("session_id"), pa.array(list(routed), pa.string()))
        served_by_canary = pc.equal(rows.column("model_version"), canary)
        as_routed = pc.equal(to_canary, served_by_canary)
        self.skip("served by the champion in a session routed to the canary", rows.num_rows - pc.sum(as_routed).as_py())
        rows = rows.filter(as_routed)
        canary_ts = pc.min(rows.filter(pc.equal(rows.column("model_version"), canary)).column("ts")).as_py()
        self.routing_since = self.routing_since or canary_ts
        if self.routing_since is None:
            self.skip("before the canary served its first event", rows.num_rows)
            return
        since = pc.greater_equal(rows.column("ts"), pa.scalar(self.routing_since, rows.column("ts").type))
        self.skip("before the canary served its first event", rows.num_rows - pc.sum(since).as_py())
        rows = rows.filter(since)
        rewards = rows.column("reward").to_numpy().astype(float)
        propensities = rows.column("propensity").to_numpy()
        acted = rows.column("model_version").to_numpy(zero_copy_only=False)
        scores = action_scores(encoding_of(spec), encode_context(spec, rows), [model for _, model in models.values()])
        logged = action_indices(spec, rows)
        for (arm, (version, _)), per_action in zip(models.items(), scores, strict=True):
            mine = acted == version
            self.events[arm] += int(mine.sum())
            self.rewards[arm].add(*_by_session(rows.column("session_id").filter(pa.array(mine)), rewards[mine],
                                               np.ones(int(mine.sum()))))  # fmt: skip
            weights = greedy_matches(per_action, logged) / propensities
            self.greedy[arm].add(*_by_session(rows.column("session_id"), weights * rewards, weights))

    def arms(self, versions: dict[str, str]) -> dict:
        return {arm: {"version": versions[arm], "events": self.events[arm], "mean_reward": self.rewards[arm].value,
                      "mean_reward_ci": self.rewards[arm].interval(), "greedy_snips": self.greedy[arm].value,
                      "greedy_snips_ci": self.greedy[arm].interval()} for arm in ARMS}  # fmt: skip


def read_evidence(s3, buckets: Buckets, spec: AgentSpec, canary: dict, models: dict, days: list[date]):
    """The canary's days from the validated days (judged by the data gate once, shared with the nightly runs),
    one day in memory at a time; a refused or incomplete day is left out and named."""
    evidence = CanaryEvidence()
    for day in days:
        summary = judge_or_reuse(s3, buckets, spec, day)
        if not summary["passed"]:
            why = "refused by the data gate" if summary["complete"] else "its logs are not complete"
            evidence.left_out.append({"day": day.isoformat(), "why": why, "verdict_key": summary["verdict_key"]})
            continue
        rows_key = read_json(s3, buckets.artifacts, summary["verdict_key"])["rows_key"]
        evidence.add_day(spec, read_parquet(s3, buckets.artifacts, rows_key), models, canary["share"])
    return evidence


class NoCanary(Exception):
    """An operator asked to promote or abort, and there is no canary."""


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

    An operator's promote or abort reads no logs (it must work when they, or the
    champion's artifact, cannot be read). `records_only` ("backfill") judges and
    records but never acts. A canary whose artifact fails its checksum is aborted
    (the client never served it); a champion that cannot be loaded fails the run.
    """
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    canary, decided = (live or {}).get("canary"), override.verdict()
    if canary is None:
        if decided:
            raise NoCanary(f"{spec.agent_id} has no canary running: nothing to promote or abort")
        return {"agent_id": spec.agent_id, "day": day.isoformat(), "verdict": "none", "acts": False,
                "reason": "no canary is running"}  # fmt: skip
    # Logs up to the newest day whose rewards have had their delay (reward.delay_days), as the retraining judges.
    days = canary_days(canary, day - timedelta(days=spec.reward.delay_days), spec.release.max_days)
    versions = {"champion": live["version"], "canary": canary["version"]}
    evidence, diff, by = CanaryEvidence(), {"value": None, "ci": None}, "operator"
    if decided is None:
        champion = load_live_model(s3, buckets, live)
        try:
            models = {
                "champion": (live["version"], champion),
                "canary": (canary["version"], load_live_model(s3, buckets, canary)),
            }
        except ArtifactError as exc:
            decided, by = ("abort", f"the canary cannot be served: {exc}"), "checksum"
        else:
            evidence = read_evidence(s3, buckets, spec, canary, models, days)
            diff = difference(evidence.rewards["champion"], evidence.rewards["canary"])
            decided, by = verdict(spec.release, evidence.events, diff, len(days)), "rule"
    action, reason = decided
    if records_only:
        reason = f"a {records_only} run leaves the canary alone; the verdict would have been: {action}, {reason}"
    record = {
        "agent_id": spec.agent_id,
        "run_id": run_id,
        "day": day.isoformat(),
        "canary": {k: canary[k] for k in ("version", "share", "first_day", "started_at", "run_id")},
        "champion": live["version"],
        "days": [d.isoformat() for d in days],
        "left_out": evidence.left_out,
        "not_counted": evidence.not_counted,
        "arms": evidence.arms(versions),
        "difference": diff,
        "release": spec.release.model_dump(),
        "verdict": action,
        "by": by,
        "acts": records_only is None and action != "wait",
        "reason": reason,
        "record_key": canary_verdict_key(spec.agent_id, canary["version"], day, run_id),
    }
    write_json(s3, buckets.artifacts, record["record_key"], record)
    return record
