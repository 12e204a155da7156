"""A corpus of bad agent logs, each run through the real retraining DAG against the local S3 server.

Every kind is what a real agent release does wrong. Each one must stop the run
at the data gate with a message naming the object, the line or field, and the
rule; the live manifest and the raw logs must not change. Valid variants
(unknown context keys, reordered fields, Parquet) must pass.
"""

import gzip
import io
import json
import os
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from agent_retraining.contract import SUCCESS_MARKER, day_prefix, run_prefix
from agent_retraining.datagate.reading import read_schema
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.storage import get_bytes, list_keys, put_bytes, read_json
from tests.conftest import load_dag_file, spec_variant

AGENT = "gate-bot"
START = date(2026, 2, 1)
ROWS = 600


def _lines(events) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _every(events, step, change):
    for i in range(0, len(events), step):
        change(events[i])
    return events


def _parquet(events, spec, mutate=lambda t: t) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(mutate(pa.Table.from_pylist(events, schema=read_schema(spec))), buffer)
    return buffer.getvalue()


# kind -> (how the day's objects are written, rule expected to block, fragments the message must name)
# A writer gets (events, spec, key_prefix) and returns {object name: bytes}; None skips the _SUCCESS marker.
def _jsonl_with(change):
    return lambda events, spec, prefix: {"part-00000.jsonl": _lines(change(events))}


def _replace_line(number, text):
    def write(events, spec, prefix):
        lines = _lines(events).split(b"\n")
        lines[number - 1] = text
        return {"part-00000.jsonl": b"\n".join(lines)}

    return write


CORPUS = {
    "malformed_json_line": (
        _replace_line(7, b'{"event_id": "x", "ts": '), "bad_lines", ["part-00000.jsonl line 7", "malformed JSON"],
    ),
    "wrong_type": (
        _jsonl_with(lambda ev: _every(ev, 300, lambda e: e["context"].update(open_tickets="lots"))),
        "bad_lines", ["part-00000.jsonl line 1", "field 'context.open_tickets'", "must be int"],
    ),
    "timestamp_without_offset": (
        _jsonl_with(lambda ev: _every(ev, 300, lambda e: e.update(ts=e["ts"].replace("Z", "")))),
        "bad_lines", ["line 301", "field 'ts'", "RFC 3339"],
    ),
    "truncated_gzip": (
        lambda events, spec, prefix: {"part-00000.jsonl.gz": gzip.compress(_lines(events))[:-100]},
        "unreadable_object", ["part-00000.jsonl.gz", "truncated or corrupt gzip"],
    ),
    "unknown_file_type": (
        lambda events, spec, prefix: {"part-00000.jsonl": _lines(events), "export.csv": b"event_id,ts\n1,2\n"},
        "unreadable_object", ["export.csv", "unknown log file type"],
    ),
    "parquet_wrong_column_type": (
        lambda events, spec, prefix: {"part-00000.parquet": _parquet(events, spec, lambda t: t.set_column(
            t.schema.get_field_index("propensity"), "propensity", pa.array(["high"] * t.num_rows)))},
        "unreadable_object", ["part-00000.parquet", "field 'propensity' is string"],
    ),
    "empty_partition": (lambda events, spec, prefix: {}, "empty_day", ["no log events under", "dt=2026-02-"]),
    "missing_success_marker": (
        lambda events, spec, prefix: {"part-00000.jsonl": _lines(events), SUCCESS_MARKER: None},
        "wait_for_logs", ["_SUCCESS is still missing", "the agent's logs for that day are not complete"],
    ),
    "half_written_day": (
        lambda events, spec, prefix: {"part-00000.jsonl": _lines(events[:40])},
        "rows_per_day", ["40 usable rows, floor 500"],
    ),
    "double_sent_events": (
        _jsonl_with(lambda ev: ev + ev[:30]), "unique_event_id", ["field 'event_id'", "60 of 630 rows fail"],
    ),
    "zero_propensity": (
        _jsonl_with(lambda ev: _every(ev, 50, lambda e: e.update(propensity=0.0))),
        "propensity_range", ["field 'propensity'", "line 1 value 0.0"],
    ),
    "unknown_action": (
        _jsonl_with(lambda ev: _every(ev, 50, lambda e: e.update(action="refund_everything"))),
        "action_in_set", ["field 'action'", "value 'refund_everything'"],
    ),
    "wrong_agent_id": (
        _jsonl_with(lambda ev: _every(ev, 100, lambda e: e.update(agent_id="other-bot"))),
        "agent_id", ["field 'agent_id'", "value 'other-bot'"],
    ),
    "every_reward_zero": (  # a broken reward join: every row is valid, the day is not
        _jsonl_with(lambda ev: _every(ev, 1, lambda e: e.update(reward=0.0))),
        "reward_rate", ["reward rate of the logging policy 0.0000 (0 of 600)", "Fisher's exact test", "change -100%"],
    ),
    "invalid_reward": (
        _jsonl_with(lambda ev: _every(ev, 100, lambda e: e.update(reward=2))),
        "reward_valid", ["field 'reward'", "value 2.0"],
    ),
    "event_outside_its_day": (
        _jsonl_with(lambda ev: _every(ev, 100, lambda e: e.update(ts="2025-12-31T23:59:59Z"))),
        "ts_in_day", ["field 'ts'", "line 1 value"],
    ),
    "renamed_context_key": (
        _jsonl_with(lambda ev: _every(ev, 1, lambda e: e["context"].update(score=e["context"].pop("sentiment")))),
        "context_non_null", ["field 'ctx_sentiment'", "expect_column_values_to_not_be_null"],
    ),
    "feature_out_of_range": (
        _jsonl_with(lambda ev: _every(ev, 60, lambda e: e["context"].update(sentiment=7.5))),
        "in_range", ["field 'ctx_sentiment'", "value 7.5"],
    ),
    "new_category_values": (
        _jsonl_with(lambda ev: _every(ev, 5, lambda e: e["context"].update(channel="whatsapp"))),
        "in_vocabulary", ["field 'ctx_channel'", "value 'whatsapp'"],
    ),
    "missing_contract_field": (
        _jsonl_with(lambda ev: _every(ev, 100, lambda e: e.pop("session_id"))),
        "not_null", ["field 'session_id'", "part-00000.jsonl line 1 value None"],
    ),
}  # fmt: skip
VALID_DAY = START + timedelta(days=2 * len(CORPUS) + 1)


def _kind_day(index: int) -> date:
    return START + timedelta(days=2 * index + 1)  # a clean day before each bad one fills the 2-day window


@pytest.fixture(scope="module")
def gate_agent(support_bot, s3, buckets, airflow_db, tmp_path_factory):
    """The gate-bot's logs: clean days, one bad day per corpus kind, a valid-variants day, and a live model."""
    spec = spec_variant(support_bot, agent_id=AGENT, training={"window_days": 2, "holdout_days": 1, "seed": 1})
    directory = tmp_path_factory.mktemp("gate-agents")
    (directory / f"{AGENT}.yaml").write_text(yaml.safe_dump(spec.model_dump()))
    os.environ["AGENT_SPECS_DIR"] = str(directory)
    world = World.for_spec(spec, 5)
    for offset in range(2 * len(CORPUS) + 2):
        day = START + timedelta(days=offset)
        events = day_events(world, day, ROWS, 5)
        kind = list(CORPUS)[offset // 2] if offset % 2 and offset < 2 * len(CORPUS) else None
        if kind is None and day != VALID_DAY:
            write_day(s3, buckets.logs, spec, day, events)
            continue
        if day == VALID_DAY:
            reordered = [
                {**dict(reversed(list(e.items()))), "context": {**e["context"], "new_key": "x"}} for e in events
            ]
            objects = {"a.jsonl": _lines(reordered[:300]), "b.parquet": _parquet(events[300:], spec)}
        else:
            objects = CORPUS[kind][0](events, spec, day_prefix(AGENT, day))
        for name, body in objects.items():
            if body is not None:
                put_bytes(s3, buckets.logs, day_prefix(AGENT, day) + name, body)
        if SUCCESS_MARKER not in objects:
            put_bytes(s3, buckets.logs, day_prefix(AGENT, day) + SUCCESS_MARKER, b"")
    yield spec
    del os.environ["AGENT_SPECS_DIR"]


@pytest.fixture(scope="module")
def dag_for(gate_agent):
    return load_dag_file("retrain_agents.py").build_retraining_dag(gate_agent)


def _raw_logs(s3, buckets, day: date) -> dict[str, bytes]:
    return {
        o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in list_keys(s3, buckets.logs, day_prefix(AGENT, day))
    }


def _run(dag, day: date):
    return dag.test(logical_date=datetime.combine(day + timedelta(days=1), time(), UTC))


def _run_dir(dag_run, day: date) -> str:
    """The folder the DAG run wrote its records to."""
    return run_prefix(AGENT, day, dag_run.run_id)


@pytest.fixture(scope="module")
def valid_run_dir(dag_for):
    """The run of the valid-variants day, which deploys the live model; its folder."""
    dag_run = _run(dag_for, VALID_DAY)
    assert dag_run.state == "success"
    return _run_dir(dag_run, VALID_DAY)


@pytest.fixture(scope="module")
def live_etag(valid_run_dir, s3, buckets):
    """A live model (and its manifest ETag) the bad days must not move."""
    manifest, etag = read_manifest(s3, buckets, AGENT)
    assert manifest is not None
    return etag


def test_valid_variants_pass_the_gate(valid_run_dir, live_etag, s3, buckets):
    validation = read_json(s3, buckets.artifacts, valid_run_dir + "validation.json")
    assert validation["passed"], validation["failures"]
    assert validation["rows"] == 2 * ROWS  # the clean day before it, and all 600 variant rows


@pytest.mark.parametrize("kind", list(CORPUS))
def test_each_kind_of_bad_log_is_stopped_and_named(kind, dag_for, live_etag, s3, buckets, capfd):
    day = _kind_day(list(CORPUS).index(kind))
    raw_before = _raw_logs(s3, buckets, day)

    dag_run = _run(dag_for, day)
    run_dir = _run_dir(dag_run, day)

    assert dag_run.state == "failed"
    _, expected_rule, fragments = CORPUS[kind]
    if expected_rule == "wait_for_logs":  # an incomplete day is never read
        assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()}["wait_for_logs"] == "failed"
        message = capfd.readouterr().out
        assert f"{day_prefix(AGENT, day)}{SUCCESS_MARKER} is still missing" in message
    else:
        validation = read_json(s3, buckets.artifacts, run_dir + "validation.json")
        blocking = [c for c in validation["checks"] if not c["success"] and c["tier"] == "block"]
        assert expected_rule in {c["rule"].split(":", 1)[0] for c in blocking}, validation["failures"]
        message = "\n".join(f for f in validation["failures"] if f"[{expected_rule}" in f)
        assert read_json(s3, buckets.artifacts, run_dir + "report.json")["outcome"] == "data rejected"
    for fragment in fragments:
        assert fragment in message, message
    assert not [o for o in list_keys(s3, buckets.artifacts, run_dir) if "/candidates/" in o["key"]]
    assert read_manifest(s3, buckets, AGENT)[1] == live_etag
    assert _raw_logs(s3, buckets, day) == raw_before


def test_rejected_lines_and_objects_are_quarantined_with_their_reasons(gate_agent, s3, buckets):
    from agent_retraining.datagate.validate_day import judge_or_reuse

    for kind in ("malformed_json_line", "truncated_gzip", "zero_propensity"):
        assert not judge_or_reuse(s3, buckets, gate_agent, _kind_day(list(CORPUS).index(kind)))["passed"]
    quarantined = {o["key"] for o in list_keys(s3, buckets.artifacts, f"{AGENT}/quarantine/")}
    malformed_day = _kind_day(list(CORPUS).index("malformed_json_line"))
    lines_key = f"{AGENT}/quarantine/dt={malformed_day}/part-00000.jsonl.rejected-lines.jsonl"
    assert lines_key in quarantined
    rejected = [json.loads(line) for line in get_bytes(s3, buckets.artifacts, lines_key)[0].splitlines()]
    assert rejected[0]["line"] == 7
    assert rejected[0]["raw"].startswith('{"event_id": "x"')
    gzip_day = _kind_day(list(CORPUS).index("truncated_gzip"))
    reason = read_json(s3, buckets.artifacts, f"{AGENT}/quarantine/dt={gzip_day}/part-00000.jsonl.gz.reason.json")
    assert "truncated or corrupt gzip" in reason["message"]
    zero_day = _kind_day(list(CORPUS).index("zero_propensity"))
    rows = get_bytes(s3, buckets.artifacts, f"{AGENT}/quarantine/dt={zero_day}/rejected-rows.jsonl")[0].splitlines()
    assert len(rows) == ROWS // 50
    assert json.loads(rows[0])["rule"] == "propensity_range:propensity"


def test_validation_result_and_data_docs_are_published(valid_run_dir, s3, buckets):
    validation = read_json(s3, buckets.artifacts, valid_run_dir + "validation.json")
    html = get_bytes(s3, buckets.artifacts, validation["data_docs_key"])[0].decode()
    assert "expect_column_values_to_be_in_set" in html or "values must belong to this set" in html
    assert all({"rule", "tier", "success", "message"} <= set(c) for c in validation["checks"])
