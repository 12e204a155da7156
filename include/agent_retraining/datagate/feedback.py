"""Delayed feedback (log contract v2): outcomes that arrive after their decisions, joined to them day by day.

An agent whose outcome comes later (a thumbs up minutes after the answer, a ticket resolved days later, a judge
model's score) logs its decisions with a null reward and writes each outcome when it is known, as a JSON line
`{"event_id": ..., "reward": ..., "ts": ...}` under `<agent>/feedback/dt=<day of the decision>/`. Filing feedback
by the decision's day keeps a day self-contained: its verdict depends on its own decision objects and its own
feedback objects, so the validated day's fingerprint covers both, and feedback that arrives later (a new or
rewritten object under the same day) gives a new fingerprint and the day is judged again.

Joined here, before the gate's rules see the day:

- every record is read like a log line (size caps, malformed JSON, types, the reward's range, an RFC 3339 `ts`):
  a bad record is a bad line, named and quarantined;
- a decision gets the reward of its one feedback record (or its own, when it logged one); two rewards for one
  event is `feedback_duplicate`, a contract rule that always blocks (which one is true?);
- a record naming no decision of that day is `feedback_unknown_event` (blocks by default: a writer filing
  feedback under the wrong day, or for another agent);
- a decision with no reward counts as the worst reward (`reward.missing: zero`) or is left out (`drop`), and a
  day where fewer than `reward.min_feedback_rate` of the decisions got one is `feedback_rate` (blocks by default:
  the feedback stream is broken, not the agent).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import feedback_day_prefix
from agent_retraining.datagate.reading import (
    DayOfLogs,
    ObjectTooLarge,
    ParsedObject,
    UnreadableObject,
    gunzip,
    is_rfc3339,
    line_fault,
    parse_line,
    read_objects,
)
from agent_retraining.datagate.rules import EXAMPLES, check, tier_of
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, list_keys

SCHEMA = pa.schema([("event_id", pa.string()), ("reward", pa.float64()), ("ts", pa.string()),
                    ("source_key", pa.string()), ("source_line", pa.int32())])  # fmt: skip


def list_feedback(s3, buckets: Buckets, spec: AgentSpec, day: date) -> list[dict]:
    """The feedback objects answering decisions of `day` (key, size, ETag); none for an agent without delay."""
    if not spec.reward.delayed:
        return []
    return list_keys(s3, buckets.logs, feedback_day_prefix(spec.agent_id, day))


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer of 400 digits is no float
        return False


def _record_fault(record: object, spec: AgentSpec) -> tuple[str | None, str] | None:
    """The first field of a feedback record that breaks the contract, as (field, message)."""
    if not isinstance(record, dict):
        return None, f"a feedback record must be a JSON object, got {type(record).__name__}"
    event_id, reward, ts = record.get("event_id"), record.get("reward"), record.get("ts")
    if not isinstance(event_id, str) or not event_id:
        return "event_id", f"must be the text event id of a logged decision, got {json.dumps(event_id)[:40]}"
    try:
        event_id.encode("utf-8")
    except UnicodeEncodeError:
        return "event_id", "must be valid UTF-8 text, got a lone surrogate"
    if not isinstance(reward, int | float) or isinstance(reward, bool) or not _finite(reward):
        return "reward", f"must be a finite number, got {json.dumps(reward)[:40]}"
    low, high = spec.reward.range
    if spec.reward.type == "binary" and reward not in (0, 1):
        return "reward", f"must be 0 or 1 (reward.type binary), got {reward}"
    if not low <= reward <= high:
        return "reward", f"must be within the spec's reward.range [{low:g}, {high:g}], got {reward}"
    if not isinstance(ts, str) or not is_rfc3339(ts):
        return "ts", f"must be an RFC 3339 timestamp with an offset, got {json.dumps(ts)[:40]}"
    return None


def parse_feedback_object(key: str, body: bytes, spec: AgentSpec) -> ParsedObject:
    """The readable records of one object (as SCHEMA rows), one fault per bad line, and its line count."""
    cap, limit = spec.validation.max_decompressed_bytes, spec.validation.max_line_bytes
    if key.endswith(".gz"):
        body = gunzip(key, body, cap)
    elif not key.endswith(".jsonl"):
        raise UnreadableObject(key, "unknown feedback file type (expected .jsonl or .jsonl.gz)")
    elif len(body) > cap:
        raise ObjectTooLarge(key, f"{len(body):,} bytes, above max_decompressed_bytes ({cap:,})")
    rows, bad, lines = [], [], 0
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        lines += 1
        record, problem = parse_line(raw, limit, lambda value: _record_fault(value, spec))
        if problem:
            bad.append(line_fault(key, number, raw, problem[0] and f"feedback.{problem[0]}", problem[1]))
            continue
        rows.append({"event_id": record["event_id"], "reward": float(record["reward"]), "ts": record["ts"],
                     "source_key": key, "source_line": number})  # fmt: skip
    return ParsedObject(pa.Table.from_pylist(rows, schema=SCHEMA), lines, bad)


def read_feedback(s3, buckets: Buckets, spec: AgentSpec, day: date, objects: list[dict]) -> DayOfLogs:
    """Read the listed feedback objects of one decision day, as the day's decisions are read (reading.py)."""
    return read_objects(s3, buckets, spec, day, objects, lambda key, body: parse_feedback_object(key, body, spec),
                        SCHEMA.empty_table())  # fmt: skip


def _examples(table: pa.Table) -> list[dict]:
    return [{"key": r["source_key"], "line": r["source_line"], "value": r["event_id"]}
            for r in table.slice(0, EXAMPLES).to_pylist()]  # fmt: skip


def join_feedback(logs: DayOfLogs, feedback: DayOfLogs, spec: AgentSpec) -> tuple[DayOfLogs, list[dict], dict]:
    """The day's decisions with their rewards from the feedback, the feedback rules' checks, and a summary."""
    decisions, records, day = logs.table, feedback.table, logs.day.isoformat()
    ids = decisions.column("event_id")
    inline = pc.is_valid(decisions.column("reward"))
    counts = records.group_by("event_id").aggregate([("event_id", "count")])
    repeated = counts.filter(pc.greater(counts.column("event_id_count"), 1)).column("event_id")
    record_ids = records.column("event_id")
    doubled = records.filter(pc.or_(pc.is_in(record_ids, value_set=repeated.combine_chunks()),
                                    pc.is_in(record_ids, value_set=ids.filter(inline).combine_chunks())))  # fmt: skip
    doubled_ids = pc.unique(doubled.column("event_id")) if doubled.num_rows else pa.array([], pa.string())
    unknown = records.filter(pc.invert(pc.is_in(records.column("event_id"), value_set=ids.combine_chunks())))
    position = pc.index_in(ids, value_set=records.column("event_id").combine_chunks())
    rewards = pc.coalesce(decisions.column("reward"), pc.take(records.column("reward"), position))
    answered = pc.is_valid(rewards)
    with_reward, total = pc.sum(answered).as_py() or 0, decisions.num_rows
    rate = with_reward / total if total else 0.0
    missing = total - with_reward
    if spec.reward.missing == "zero":
        decisions = decisions.set_column(decisions.schema.get_field_index("reward"), "reward",
                                         pc.fill_null(rewards, spec.reward.range[0]))  # fmt: skip
        fate = f"the {missing:,} without one count as the worst reward, {spec.reward.range[0]:g} (reward.missing: zero)"
    else:
        decisions = decisions.set_column(decisions.schema.get_field_index("reward"), "reward", rewards)
        decisions = decisions.filter(answered)
        fate = f"the {missing:,} without one are left out (reward.missing: drop)"
    latest = pc.max(records.column("ts")).as_py() if records.num_rows else None
    checks = [
        check("feedback_duplicate", "block", not len(doubled_ids),
              f"{day}: {len(doubled_ids)} decision(s) have two or more rewards (feedback records, or a record and "
              "the decision's own reward); each decision takes one", column="reward", examples=_examples(doubled)),
        check("feedback_unknown_event", tier_of(spec, "feedback_unknown_event"), not unknown.num_rows,
              f"{day}: {unknown.num_rows} of {records.num_rows} feedback records name no decision logged on that day",
              column="event_id", examples=_examples(unknown)),
        check("feedback_rate", tier_of(spec, "feedback_rate"), rate >= spec.reward.min_feedback_rate,
              f"{day}: {with_reward:,} of {total:,} decisions ({rate:.1%}) have a reward from "
              f"{len(feedback.sources)} feedback object(s), the latest record at {latest}; {fate}; at least "
              f"{spec.reward.min_feedback_rate:.0%} needed", column="reward", observed=rate),
    ]  # fmt: skip
    summary = {"decisions": total, "with_reward": with_reward, "rate": rate, "missing": spec.reward.missing,
               "records": records.num_rows, "objects": len(feedback.sources), "latest_record": latest}  # fmt: skip
    joined = replace(logs, table=decisions, sources=logs.sources + feedback.sources,
                     faults=logs.faults + feedback.faults, quarantined=logs.quarantined + feedback.quarantined,
                     lines=logs.lines + feedback.lines, bad_lines=logs.bad_lines + feedback.bad_lines)  # fmt: skip
    return joined, checks, summary
