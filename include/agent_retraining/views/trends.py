"""An agent's last weeks as one record: the reward it logged each day per acting version, what the pipeline did to
its models, and how each night ended.

An operator asks whether the loop works: did the reward move after a deploy, did the canary's arm earn what its
evaluation promised, did a rollback help. Those answers need the same time axis for what the agent logged and what
the pipeline did, so both are gathered here from what the pipeline already stored: each validated day's rows and
reward sum per version (the data gate counted them once; the logs are never read again), the manifest's timeline
and each night's `latest.json` pointer. Reads are bounded by the number of days asked for, and one unreadable
record is a gap in the trend, never an error on the page.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from agent_retraining.contract import LATEST_RUN, runs_prefix, validated_days_prefix
from agent_retraining.datagate.reward_rate import estimates_from_manifest
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, exists, list_folders, list_keys, read_json_or_none
from agent_retraining.views.notifications import event_of

log = logging.getLogger(__name__)

# Timeline events (overview.timeline) drawn as markers; a promotion's live entry is left out: its canary verdict
# marks the same moment. A manifest written before `deployed_by` existed names no deployer: a deploy.
MARKED = {"live: retraining": "deploy", "live: None": "deploy", "live: rollback": "rollback",
          "canary started": "canary started", "canary promoted": "canary promoted",
          "canary aborted": "canary aborted"}  # fmt: skip
JUDGED_AT = ("deploy", "canary started")  # the moments a model's evaluation put it in front of traffic
NIGHT_KINDS = {"deployed": "deployed", "kept_champion": "kept", "data_rejected": "refused", "failed": "failed"}
# How long after the last day a release still belongs on the axis: that day's own run deploys the morning after.
LATE = timedelta(days=1)


@dataclass(frozen=True)
class Point:
    day: date
    rows: int
    rate: float  # reward sum / rows, on [0, 1] (a graded reward is scaled when the day is validated)
    refused: bool  # the data gate refused the day: its rate may be the very fault it refused


@dataclass(frozen=True)
class Series:
    version: str | None  # None: the agent's own logging policy
    canary: bool  # the canary's arm, apart from the same version's days as the live model
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # a value of MARKED
    version: str | None
    run_id: str | None
    dag_id: str
    reason: str


@dataclass(frozen=True)
class JudgedValue:
    """The policy value the offline gate estimated for a model when it was released, to set against what it earned."""

    at: datetime
    version: str
    value: float
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Night:
    day: date
    outcome: str
    kind: str  # a value of NIGHT_KINDS
    run_id: str


@dataclass(frozen=True)
class Trends:
    agent_id: str
    dag_id: str
    graded: bool
    first: date
    last: date
    end: datetime  # the axis runs from `first` to here: the end of `last`, or a marker shortly after it
    series: tuple[Series, ...]
    markers: tuple[Marker, ...]
    judged: tuple[JudgedValue, ...]
    nights: tuple[Night, ...]


def night_of(day: date, outcome: str, run_id: str) -> Night:
    """A night as the strip shows it: the outcome's kind is the notification event's (one mapping of outcomes)."""
    return Night(day, outcome, NIGHT_KINDS[event_of(outcome)], run_id)


def _record(s3, bucket: str, key: str):
    """The JSON at `key`, or None when it is missing or not JSON."""
    try:
        return read_json_or_none(s3, bucket, key)
    except ValueError:  # also a body that is not UTF-8
        log.warning("s3://%s/%s is not JSON; left out of the trend", bucket, key)
        return None


def _dated_folders(s3, bucket: str, prefix: str) -> dict[date, str]:
    """The `dt=<day>/` folders under `prefix` by day; a folder whose name is not a date is not a day."""
    folders = {}
    for folder in list_folders(s3, bucket, prefix):
        try:
            folders[date.fromisoformat(folder[len(prefix) :].removeprefix("dt=").rstrip("/"))] = folder
        except ValueError:
            continue
    return folders


def _newest_day(s3, buckets: Buckets, day_folders: dict[date, str], night_folders: dict[date, str]) -> date | None:
    """The newest day that holds a record: a store may list a folder whose objects are gone (SeaweedFS keeps empty
    directories; a loop clears its agent and starts again), and such a day must not move the axis."""
    for day in sorted({*day_folders, *night_folders}, reverse=True):
        if day in night_folders and exists(s3, buckets.artifacts, night_folders[day] + LATEST_RUN):
            return day
        if day in day_folders and list_keys(s3, buckets.artifacts, day_folders[day]):
            return day
    return None


def _rate(entry) -> tuple[str | None, int, float] | None:
    """(version, rows, reward rate) of one `by_version` entry; None for one that is no day's rate on [0, 1]."""
    if not isinstance(entry, dict):
        return None
    version, rows, total = entry.get("version"), entry.get("rows"), entry.get("reward_sum")
    if not (version is None or isinstance(version, str)) or type(rows) is not int or rows <= 0:
        return None
    finite = isinstance(total, int | float) and not isinstance(total, bool) and math.isfinite(total)
    return (version, rows, total / rows) if finite and 0 <= total <= rows else None


def _day_points(s3, buckets: Buckets, day: date, folder: str) -> dict[str | None, Point]:
    """Each version's point on `day` from its newest verdict: a day judged again (objects arrived late, the gate's
    settings changed) has several, and the newest judged what the logs hold now."""
    newest: dict = {}
    for fingerprint in list_folders(s3, buckets.artifacts, folder):
        verdict = _record(s3, buckets.artifacts, fingerprint + "verdict.json")
        if isinstance(verdict, dict) and str(verdict.get("judged_at") or "") >= str(newest.get("judged_at") or ""):
            newest = {key: verdict.get(key) for key in ("judged_at", "by_version", "passed")}
    entries, refused = newest.get("by_version"), newest.get("passed") is not True
    rates = filter(None, map(_rate, entries if isinstance(entries, list) else []))
    return {version: Point(day, rows, rate, refused) for version, rows, rate in rates}


def _instant(text) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _markers(spec: AgentSpec, events: list[dict], run_days: dict[str, date]) -> list[Marker]:
    """The timeline's releases, each where it took effect: a retraining run's at the end of the day it judged (a
    backfilled or simulated night is drawn by its logs, not by when its task ran), any other at its time."""
    markers = []
    for event in events:
        day = run_days.get(event["run_id"]) if event["dag_id"] == spec.dag_id else None
        at = datetime.combine(day + timedelta(days=1), time(), UTC) if day else _instant(event["at"])
        version = event["version"] if isinstance(event["version"], str) else None
        if event["event"] in MARKED and at is not None:
            markers.append(Marker(at, MARKED[event["event"]], version, event["run_id"], event["dag_id"],
                                  str(event["reason"] or "")))  # fmt: skip
    return sorted(markers, key=lambda m: m.at)


def _series(points_by_day: dict[date, dict[str | None, Point]], markers: list[Marker]) -> tuple[Series, ...]:
    """One series per acting version, the logging policy first, then in the order they began to act; a canary's
    days before its promotion are its arm, a series of their own."""
    started = {m.version for m in markers if m.kind == "canary started"}
    promoted = {m.version: m.at for m in markers if m.kind == "canary promoted"}
    grouped: dict[tuple[str | None, bool], list[Point]] = {}
    for day in sorted(points_by_day):
        noon = datetime.combine(day, time(12), UTC)
        for version, point in points_by_day[day].items():
            arm = version in started and noon < promoted.get(version, datetime.max.replace(tzinfo=UTC))
            grouped.setdefault((version, arm), []).append(point)
    order = sorted(grouped, key=lambda key: (key[0] is not None, grouped[key][0].day))
    return tuple(Series(version, arm, tuple(grouped[version, arm])) for version, arm in order)


def _nights(s3, buckets: Buckets, folders: dict[date, str], shown: list[date]) -> dict[date, Night]:
    """Each shown day's latest run, from its pointer; a pointer that is not one is a night left blank."""
    nights = {}
    for day in (d for d in shown if d in folders):
        pointer = _record(s3, buckets.artifacts, folders[day] + LATEST_RUN)
        if isinstance(pointer, dict) and all(isinstance(pointer.get(k), str) for k in ("run_id", "outcome")):
            nights[day] = night_of(day, pointer["outcome"], pointer["run_id"])
    return nights


def collect(
    s3,
    buckets: Buckets,
    spec: AgentSpec,
    manifest: dict | None,
    events: list[dict],
    last: date | None = None,
    tonight: Night | None = None,
) -> Trends | None:
    """The agent's trend over the spec's `trend_days` days up to `last` (by default its newest validated day or
    night), from its validated days, its nights' pointers, its manifest and its timeline `events`
    (overview.timeline); `tonight` stands for a night whose pointer is not written yet (the run writing its own
    report). None without history."""
    day_folders = _dated_folders(s3, buckets.artifacts, validated_days_prefix(spec.agent_id))
    night_folders = _dated_folders(s3, buckets.artifacts, runs_prefix(spec.agent_id))
    last = last or _newest_day(s3, buckets, day_folders, night_folders)
    if last is None:
        return None
    first = last - timedelta(days=spec.trend_days - 1)
    shown = [first + timedelta(days=n) for n in range(spec.trend_days)]
    nights = _nights(s3, buckets, night_folders, shown) | ({tonight.day: tonight} if tonight else {})
    start, late = datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)
    markers = [m for m in _markers(spec, events, {n.run_id: n.day for n in nights.values()})
               if start <= m.at <= late + LATE]  # fmt: skip
    points = {day: _day_points(s3, buckets, day, day_folders[day]) for day in shown if day in day_folders}
    estimates = estimates_from_manifest(manifest)
    judged = [JudgedValue(m.at, m.version, estimates[m.version].value, estimates[m.version].ci)
              for m in markers if m.kind in JUDGED_AT and m.version in estimates]  # fmt: skip
    return Trends(
        agent_id=spec.agent_id, dag_id=spec.dag_id, graded=spec.reward.type == "graded", first=first, last=last,
        end=max([late, *(m.at for m in markers)]), series=_series(points, markers), markers=tuple(markers),
        judged=tuple(judged), nights=tuple(nights[day] for day in shown if day in nights),
    )  # fmt: skip
