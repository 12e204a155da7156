import gzip
import io
import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.contract import SUCCESS_MARKER, day_prefix, safe_key_part
from agent_retraining.datagate.reading import UnreadableObject, parse_log_object, read_day, read_schema
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.storage import get_bytes, list_keys, put_bytes

DAY = date(2026, 3, 10)


def _events(spec, rows=20):
    return day_events(World.for_spec(spec, 0), DAY, rows, 0)


def _jsonl(events) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_jsonl_gz_and_parquet_give_the_same_rows(support_bot):
    events = _events(support_bot)
    from_json = parse_log_object("a/x.jsonl.gz", gzip.compress(_jsonl(events)), support_bot, DAY)
    raw = pa.Table.from_pylist(events, schema=read_schema(support_bot))
    from_parquet = parse_log_object("a/x.parquet", _parquet(raw), support_bot, DAY)
    assert from_json.lines == from_json.table.num_rows == len(events)
    assert from_parquet.table.drop(["source_key"]).equals(from_json.table.drop(["source_key"]))
    assert from_json.table.column("source_line").to_pylist() == list(range(1, 21))


def test_unknown_context_keys_and_reordered_fields_are_accepted(support_bot):
    events = _events(support_bot, 3)
    shuffled = [{**dict(reversed(list(e.items()))), "context": {**e["context"], "new_key": 1}} for e in events]
    parsed = parse_log_object("a/x.jsonl", _jsonl(shuffled), support_bot, DAY)
    assert parsed.bad_lines == []
    assert parsed.table.column("action").to_pylist() == [e["action"] for e in events]


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("a/x.csv", b"event_id,ts\n", "unknown log file type"),
        ("a/x.jsonl.gz", gzip.compress(b'{"event_id": "1"}\n' * 50)[:-12], "truncated or corrupt gzip"),
        ("a/x.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ],
)
def test_unreadable_objects_are_refused_naming_the_key(support_bot, key, body, message):
    with pytest.raises(UnreadableObject, match=message) as error:
        parse_log_object(key, body, support_bot, DAY)
    assert error.value.fault["key"] == key


def test_bad_lines_are_set_aside_with_line_field_and_rule(support_bot):
    events = _events(support_bot, 6)
    events[1]["context"]["open_tickets"] = "many"
    events[3]["propensity"] = "0.5"
    events[4]["ts"] = "2026-03-10 10:00:00"
    lines = _jsonl(events).split(b"\n")
    lines.insert(2, b'{"event_id": "broken", ')
    parsed = parse_log_object("a/x.jsonl", b"\n".join(lines), support_bot, DAY)
    found = {(b["line"], b["field"]) for b in parsed.bad_lines}
    assert found == {(2, "context.open_tickets"), (3, None), (5, "propensity"), (6, "ts")}
    assert all(b["raw"] and b["key"] == "a/x.jsonl" and b["message"] for b in parsed.bad_lines)
    assert parsed.table.column("source_line").to_pylist() == [1, 4, 7]
    assert parsed.lines == 7


def test_parquet_with_a_missing_or_mistyped_field_is_refused(support_bot):
    with pytest.raises(UnreadableObject, match=r"missing contract field\(s\) \['ts'"):
        parse_log_object("a/x.parquet", _parquet(pa.table({"event_id": ["1"]})), support_bot, DAY)
    table = pa.Table.from_pylist(_events(support_bot, 2), schema=read_schema(support_bot))
    table = table.set_column(table.schema.get_field_index("reward"), "reward", pa.array(["yes", "no"]))
    with pytest.raises(UnreadableObject, match="field 'reward' is string, expected double") as error:
        parse_log_object("a/x.parquet", _parquet(table), support_bot, DAY)
    assert error.value.fault["field"] == "reward"


def test_object_key_parts_refuse_traversal():
    assert safe_key_part("support-bot", "agent id") == "support-bot"
    for bad in ("../other", "a/b", "", ".hidden", "a..b"):
        with pytest.raises(ValueError, match="not allowed in an object key"):
            safe_key_part(bad, "agent id")


def test_reading_a_day_records_every_source_with_its_etag_and_leaves_raw_logs_alone(s3, buckets, support_bot):
    spec = support_bot.model_copy(update={"agent_id": "reader-bot"})
    write_day(s3, buckets.logs, spec, DAY, day_events(World.for_spec(spec, 0), DAY, 50, 0))
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, DAY) + "late.jsonl", _jsonl(_events(spec, 10)))
    listing = list_keys(s3, buckets.logs, day_prefix(spec.agent_id, DAY))
    before = {o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in listing}

    logs = read_day(s3, buckets, spec, DAY, [o for o in listing if not o["key"].endswith(SUCCESS_MARKER)])

    assert logs.table.num_rows == logs.lines == 60
    assert logs.faults == []
    assert logs.bad_lines == 0
    assert {s["key"]: s["etag"] for s in logs.sources} == {
        o["key"]: o["etag"] for o in listing if not o["key"].endswith(SUCCESS_MARKER)
    }
    assert set(logs.table.column("dt").to_pylist()) == {DAY}
    assert "ctx_sentiment" in logs.table.column_names
    assert {o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in listing} == before


def test_a_day_without_events_is_an_empty_day_fault(s3, buckets, support_bot):
    spec = support_bot.model_copy(update={"agent_id": "reader-bot"})
    empty_day = date(2026, 3, 11)
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, empty_day) + "part-0.jsonl", b"")

    logs = read_day(s3, buckets, spec, empty_day, list_keys(s3, buckets.logs, day_prefix(spec.agent_id, empty_day)))

    assert logs.table.num_rows == 0
    assert [f["rule"] for f in logs.faults] == ["empty_day"]
    assert f"s3://{buckets.logs}/reader-bot/dt=2026-03-11/" in logs.faults[0]["message"]
