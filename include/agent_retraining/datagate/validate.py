"""The data gate's verdict on a run's window, assembled from its validated days without reading their rows.

Every day of the window has been judged on its own rows (see days.py). What
only the window can tell is judged here, from what each day stored, day by day
in date order against the usable days before it: event ids repeated from an
earlier day, feature drift (drift.py) and each acting version's reward rate
(reward_rate.py). Then:

- the run's own day must be usable, or the run is refused;
- an earlier day that was refused or whose logs never completed is left out of
  training and evaluation and named, unless the spec says `refused_past_days:
  block`: one bad day no longer blocks the week after it;
- fewer usable days than the spec's minimum (or none to train on) refuses the run.

The verdict is written to the run's folder as `validation.json` whatever it says.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np

from agent_retraining.contract import SUCCESS_MARKER, success_key
from agent_retraining.datagate import drift
from agent_retraining.datagate.reward_rate import Estimate, estimates_from_manifest, reward_rate_checks
from agent_retraining.datagate.rules import EXAMPLES, DataRejected, check, describe, failed
from agent_retraining.manifest import read_manifest
from agent_retraining.records import WindowVerdict, write_record
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, read_json, read_parquet
from agent_retraining.window import Window


class _SeenEventIds:
    """The hashed event ids of the usable days so far, sorted, with the day each came from.

    Every operation takes a day's hashes sorted (days.py stores them so): lookups in sorted order stay in
    cache, and adding a day is a linear merge.
    """

    def __init__(self):
        self.hashes = np.empty(0, np.uint64)
        self.days: list[str] = []
        self.day_of = np.empty(0, np.int32)

    def repeated(self, sorted_hashes: np.ndarray) -> np.ndarray:
        """Positions in `sorted_hashes` of ids an earlier usable day logged already."""
        if not len(self.hashes):
            return np.empty(0, np.int64)
        at = np.searchsorted(self.hashes, sorted_hashes).clip(max=len(self.hashes) - 1)
        return np.flatnonzero(self.hashes[at] == sorted_hashes)

    def first_day_of(self, value: np.uint64) -> str:
        return self.days[self.day_of[np.searchsorted(self.hashes, value)]]

    def add(self, day: str, sorted_hashes: np.ndarray) -> None:
        at = np.searchsorted(self.hashes, sorted_hashes)
        self.hashes = np.insert(self.hashes, at, sorted_hashes)
        self.day_of = np.insert(self.day_of, at, len(self.days))
        self.days.append(day)


def _repeated_ids_check(s3, buckets: Buckets, verdict: dict, seen: _SeenEventIds) -> tuple[dict, np.ndarray]:
    ids = read_parquet(s3, buckets.artifacts, verdict["event_ids_key"])
    order = np.argsort(ids.column("event_hash").to_numpy(), kind="stable")  # stored sorted: one linear pass
    ids = ids.take(order)
    hashes = ids.column("event_hash").to_numpy()
    repeated = seen.repeated(hashes)
    examples = [
        {"key": ids.column("source_key")[int(i)].as_py(), "line": ids.column("source_line")[int(i)].as_py(),
         "value": f"an event id of {seen.first_day_of(hashes[i])}"}
        for i in repeated[:EXAMPLES]
    ]  # fmt: skip
    message = f"field 'event_id' unique across the window: {len(repeated)} of {len(hashes)} rows of {verdict['day']} "
    message += "repeat an event id an earlier day of the window logged" if len(repeated) else "repeat none"
    return check("unique_event_id:window", "block", not len(repeated), message, column="event_id",
                 examples=examples), hashes  # fmt: skip


def _judge_days(
    s3, buckets: Buckets, spec: AgentSpec, window: Window, checked: dict[str, dict], estimates: dict[str, Estimate]
) -> list[dict]:
    """Each day of the window, oldest first, with every check of it and whether it is usable."""
    judged, usable, seen = [], [], _SeenEventIds()
    for day in window.days:
        summary = checked.get(day.isoformat())
        entry = {"day": day.isoformat(), "usable": False, "reused": False, "rows": 0}
        if summary is None or not summary["complete"]:
            message = f"s3://{buckets.logs}/{success_key(spec.agent_id, day)} is missing: the logs are not complete"
            entry["checks"] = [check("missing_day", "block", False, message, examples=[{"key": SUCCESS_MARKER}])]
            judged.append(entry)
            continue
        verdict = read_json(s3, buckets.artifacts, summary["verdict_key"])
        checks = list(verdict["checks"])
        if verdict["passed"]:
            repeated, hashes = _repeated_ids_check(s3, buckets, verdict, seen)
            checks += [repeated, *drift.drift_checks(spec, verdict, usable),
                       *reward_rate_checks(spec, verdict, usable, estimates)]  # fmt: skip
        entry.update(
            usable=not failed(checks, "block"),
            reused=summary["reused"],
            rows=verdict["rows"],
            checks=[{**c, "day": day.isoformat()} for c in checks],
            **{key: verdict[key] for key in ("rows_key", "data_docs_key", "quarantined")},
            verdict_key=summary["verdict_key"],
        )
        if entry["usable"]:
            usable.append(verdict)
            seen.add(entry["day"], hashes)
        judged.append(entry)
    return judged


def _failures(entry: dict) -> list[str]:
    return [describe(c) for c in failed(entry["checks"], "block")]


def _refusals(spec: AgentSpec, window: Window, days: list[dict]) -> list[str]:
    """Why the run may not train on this window, if it may not."""
    own, past = days[-1], days[:-1]
    if not own["usable"]:
        return [f"{own['day']} (the run's own day): {failure}" for failure in _failures(own)]
    left_out = [entry for entry in past if not entry["usable"]]
    if left_out and spec.validation.refused_past_days == "block":
        return [f"{e['day']} (an earlier day; the spec's refused_past_days is block): {failure}"
                for e in left_out for failure in _failures(e)]  # fmt: skip
    usable = [date.fromisoformat(e["day"]) for e in days if e["usable"]]
    training_days = [d for d in usable if d < window.holdout_first]
    if len(usable) < spec.min_usable_days or not training_days:  # the own day, usable, is held out
        return [
            f"too few usable days: {len(usable)} of {len(days)} ({len(training_days)} to train on), the spec "
            f"asks for {spec.min_usable_days}; left out: "
            + ("; ".join(f"{e['day']}: {_failures(e)[0]}" for e in left_out) or "none")
        ]
    return []


def judge_window(s3, buckets: Buckets, spec: AgentSpec, window: Window, checked: list[dict], run_dir: str) -> dict:
    """Assemble the window's verdict from the days' summaries; write `validation.json`; raise if refused."""
    live, _ = read_manifest(s3, buckets, spec.agent_id)  # what each deployed version was estimated to earn
    days = _judge_days(s3, buckets, spec, window, {summary["day"]: summary for summary in checked},
                       estimates_from_manifest(live))  # fmt: skip
    refusals = _refusals(spec, window, days)
    every_check = [c for entry in days for c in entry["checks"]]
    own_day = days[-1]
    record = {
        "agent_id": spec.agent_id,
        "window": {"first": window.first.isoformat(), "last": window.last.isoformat()},
        "holdout_first": window.holdout_first.isoformat(),
        "passed": not refusals,
        "failures": refusals,
        "warnings": [f"{c['day']}: {describe(c)}" for c in failed(every_check, "warn")],
        "rows": sum(entry["rows"] for entry in days if entry["usable"]),
        "usable_days": [entry["day"] for entry in days if entry["usable"]],
        "left_out": [{"day": e["day"], "why": _failures(e)} for e in days[:-1] if not e["usable"]],
        "days": [{k: v for k, v in entry.items() if k != "checks"} for entry in days],
        "rule_counts": dict(Counter(f"{c['tier']}:{'pass' if c['success'] else 'fail'}" for c in every_check)),
        "checks": every_check,
        "data_docs_key": own_day.get("data_docs_key"),
        "reward_rates": [c for c in own_day["checks"] if c["rule"] == "reward_rate"],  # per acting version
        "min_usable_days": spec.min_usable_days,
    }
    write_record(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict, record)
    if refusals:
        raise DataRejected(f"{spec.agent_id} {window.last}:\n- " + "\n- ".join(refusals))
    return record
