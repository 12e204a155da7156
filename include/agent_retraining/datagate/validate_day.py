"""Validated days: each day of an agent's logs read, parsed and judged once, then reused by every later run.

A nightly run with a 7-day window used to read seven days to learn about one.
Here a day is judged on its own rows into a folder of its own in the artifacts
bucket (`<agent>/days/dt=<day>/<fingerprint>/`): its rows as Parquet, its
verdict (every check, with the faults and example rows), GX Data Docs, a
histogram per feature, its rows and rewards per acting model version and its
event ids (hashed). The
fingerprint covers the day's source objects (keys and ETags) and everything the
verdict depends on in the spec, so:

- a later run that lists the same objects under the same settings reuses the
  verdict with a LIST and one small GET, and never reads the logs again;
- a late-arriving, rewritten or deleted object, or a change of the day-level
  validation settings, gives a new fingerprint, and the day is judged again.

The verdict is written last: a folder without one is an unfinished try and is
never read. Two runs judging the same day at once write the same objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from agent_retraining.contract import SUCCESS_MARKER, quarantine_prefix, validated_day_prefix
from agent_retraining.datagate import drift
from agent_retraining.datagate.expectations import data_docs_html, gate_checks
from agent_retraining.datagate.feedback import join_feedback, list_feedback, read_feedback
from agent_retraining.datagate.reading import list_day, read_day
from agent_retraining.datagate.reward_rate import by_version
from agent_retraining.datagate.rules import check, describe, failed
from agent_retraining.spec import AgentSpec, Reward
from agent_retraining.storage import Buckets, S3Error, put_bytes, read_json_or_none, write_json, write_parquet

log = logging.getLogger(__name__)

# Bump when a day-level rule changes meaning: every stored verdict then stops matching and days are re-judged.
GATE_VERSION = 4  # 4: `ts` with seven to nine fractional digits is read (was a bad line)


def day_settings(spec: AgentSpec) -> dict:
    """The parts of the spec a day's verdict depends on (window-level limits such as drift are not among them:
    they are applied afresh by every run, from the stored summaries)."""
    validation = spec.validation
    return {
        "gate_version": GATE_VERSION,
        "agent_id": spec.agent_id,
        "actions": spec.actions,
        "context": {name: feature.model_dump() for name, feature in spec.context.items()},
        # a binary reward in the event (contract v1) leaves every stored verdict of such an agent as it was
        **({"reward": spec.reward.model_dump(mode="json")} if spec.reward != Reward(type="binary") else {}),
        "validation": {
            "min_rows_per_day": validation.min_rows_per_day,
            "tiers": validation.tiers,
            "max_bad_line_fraction": validation.max_bad_line_fraction,
            "max_object_bytes": validation.max_object_bytes,
            "max_decompressed_bytes": validation.max_decompressed_bytes,
            "max_line_bytes": validation.max_line_bytes,
        },  # fmt: skip
    }


def fingerprint(spec: AgentSpec, sources: list[dict]) -> str:
    objects = sorted((source["key"], source["etag"]) for source in sources)
    text = json.dumps({"objects": objects, "settings": day_settings(spec)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def event_id_hashes(table: pa.Table) -> np.ndarray:
    """64-bit hashes of the event ids, so the whole window's ids can be compared without reading old days.

    A collision (about 1 in 10^4 across 70M ids) would show as a duplicate and refuse a day: failing closed.
    """
    import pandas as pd

    ids = table.column("event_id").fill_null("").to_numpy(zero_copy_only=False)
    return pd.util.hash_array(ids, categorize=False)


def scaled_rewards(table: pa.Table, spec: AgentSpec) -> pa.Table:
    """The rows as training and evaluation read them: rewards on [0, 1] (the identity for a binary reward).
    Clipped: the gate refuses a day with a reward outside the range, and its rows must never be a label above 1."""
    if spec.reward.range == (0.0, 1.0):
        return table
    scaled = pa.array(np.clip(spec.reward.scaled(table.column("reward").to_numpy()), 0.0, 1.0))
    return table.set_column(table.schema.get_field_index("reward"), "reward", scaled)


def _judge(s3, buckets: Buckets, spec: AgentSpec, day: date, objects: list[dict], feedback_objects: list[dict]) -> dict:
    """Read the day (and its feedback), judge it and store what later runs need; returns the verdict."""
    logs, feedback_checks, feedback = read_day(s3, buckets, spec, day, objects), [], None
    if spec.reward.delayed:
        logs, feedback_checks, feedback = join_feedback(logs, read_feedback(s3, buckets, spec, day, feedback_objects),
                                                        spec)  # fmt: skip
    prefix = validated_day_prefix(spec.agent_id, day, fingerprint(spec, logs.sources))
    table = scaled_rewards(logs.table, spec)
    rows, rewards = table.num_rows, by_version(table)
    histograms = drift.histograms(spec, table)
    hashes = event_id_hashes(table)
    order = np.argsort(hashes, kind="stable")  # sorted, so the window verdict compares days in one pass
    ids = pa.table({"event_hash": hashes[order], "source_key": table.column("source_key").take(order),
                    "source_line": table.column("source_line").take(order)})  # fmt: skip
    write_parquet(s3, buckets.artifacts, prefix + "rows.parquet", table)
    write_parquet(s3, buckets.artifacts, prefix + "event_ids.parquet", ids)
    del table, ids
    gx_result, checks = gate_checks(spec, logs)  # frees the day's rows as GX converts them
    checks = feedback_checks + checks
    put_bytes(s3, buckets.artifacts, prefix + "data_docs.html", data_docs_html(gx_result).encode(), "text/html")
    blocking = failed(checks, "block")
    rejected = [{"rule": c["rule"], **row} for c in blocking for row in c.get("rejected", [])]
    if rejected:
        body = "".join(json.dumps(r, default=str) + "\n" for r in rejected).encode()
        put_bytes(s3, buckets.artifacts, quarantine_prefix(spec.agent_id, day) + "rejected-rows.jsonl", body)
    verdict = {
        "agent_id": spec.agent_id,
        "day": day.isoformat(),
        "prefix": prefix,
        "settings": day_settings(spec),
        "sources": logs.sources,
        "lines": logs.lines,
        "bad_lines": logs.bad_lines,
        "rows": rows,
        "by_version": rewards,
        "feedback": feedback,
        "histograms": histograms,
        "passed": not blocking,
        "failures": [describe(c) for c in blocking],
        "warnings": [describe(c) for c in failed(checks, "warn")],
        "checks": [{k: v for k, v in c.items() if k != "rejected"} for c in checks],
        "quarantined": logs.quarantined,
        "rows_key": prefix + "rows.parquet",
        "event_ids_key": prefix + "event_ids.parquet",
        "data_docs_key": prefix + "data_docs.html",
        "judged_at": datetime.now(UTC).isoformat(),
    }
    write_json(s3, buckets.artifacts, prefix + "verdict.json", verdict)
    return verdict


def _refused(s3, buckets: Buckets, spec: AgentSpec, day: date, sources: list[dict], error: Exception) -> dict:
    """The verdict of a day whose judging failed for a reason nobody foresaw: refused, naming the error, so the
    window's exclude/block rules apply to it like to any refused day instead of a crash every night."""
    prefix = validated_day_prefix(spec.agent_id, day, fingerprint(spec, sources))
    message = f"judging the day's logs failed: {type(error).__name__}: {error}"[:2000]
    rejected = check("unreadable_object", "block", False, message, examples=[])
    verdict = {
        "agent_id": spec.agent_id, "day": day.isoformat(), "prefix": prefix, "settings": day_settings(spec),
        "sources": sources, "lines": 0, "bad_lines": 0, "rows": 0, "by_version": [], "histograms": {},
        "passed": False, "failures": [describe(rejected)], "warnings": [], "checks": [rejected], "quarantined": [],
        "rows_key": None, "event_ids_key": None, "data_docs_key": None, "judged_at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    write_json(s3, buckets.artifacts, prefix + "verdict.json", verdict)
    return verdict


def judge_or_reuse(s3, buckets: Buckets, spec: AgentSpec, day: date) -> dict:
    """The day's verdict, judged now or reused; a summary small enough for XCom.

    A day without its `_SUCCESS` marker is not judged at all (its logs are not
    complete); the window verdict decides what that means for the run.
    """
    sources, complete = list_day(s3, buckets, spec, day)
    feedback = list_feedback(s3, buckets, spec, day)
    summary = {"day": day.isoformat(), "complete": complete, "verdict_key": None}
    if not summary["complete"]:
        log.warning("%s: no %s marker, the day's logs are not complete; not judged", day, SUCCESS_MARKER)
        return {**summary, "reused": False, "passed": False, "rows": 0}
    verdict_key = validated_day_prefix(spec.agent_id, day, fingerprint(spec, sources + feedback)) + "verdict.json"
    verdict = read_json_or_none(s3, buckets.artifacts, verdict_key)
    reused = verdict is not None
    if not reused:
        try:
            verdict = _judge(s3, buckets, spec, day, sources, feedback)
        except (S3Error, MemoryError):
            raise  # S3 trouble is retried by the task; memory is the worker's, not the day's
        except Exception as exc:  # noqa: BLE001 - a verdict, never a crash that comes back every night
            log.exception("judging %s failed", day)
            verdict = _refused(s3, buckets, spec, day, sources + feedback, exc)
        verdict_key = verdict["prefix"] + "verdict.json"
    log.info("%s: %s, %s, %d rows (%s)", day, "reused" if reused else "judged",
             "passed" if verdict["passed"] else "refused", verdict["rows"], verdict_key)  # fmt: skip
    for failure in verdict["failures"]:
        log.warning("%s refused: %s", day, failure)
    return {**summary, "verdict_key": verdict_key, "reused": reused, "passed": verdict["passed"],
            "rows": verdict["rows"]}  # fmt: skip
