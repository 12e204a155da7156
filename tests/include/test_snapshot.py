import gzip
import io
import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.contract import run_prefix, safe_key_part
from agent_retraining.simulate import World, day_events, write_day
from agent_retraining.snapshot import UnreadableObject, Window, parse_log_object, read_schema, take_snapshot
from agent_retraining.storage import get_bytes, list_keys, read_parquet

DAY = date(2026, 3, 10)
RUN_DIR = run_prefix("snapshot-bot", DAY, "test")


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


def test_snapshot_records_every_source_with_its_etag_and_leaves_raw_logs_alone(s3, buckets, support_bot):
    spec = support_bot.model_copy(update={"agent_id": "snapshot-bot"})
    world = World.for_spec(spec, 0)
    for offset in range(3):
        day = date(2026, 3, 8 + offset)
        write_day(s3, buckets.logs, spec, day, day_events(world, day, 50, 0))
    before = {o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in list_keys(s3, buckets.logs, "snapshot-bot/")}

    record = take_snapshot(s3, buckets, spec, Window(date(2026, 3, 7), DAY, 1), RUN_DIR)

    assert record["rows"] == 150
    assert [f["rule"] for f in record["faults"]] == ["missing_day"]
    assert record["faults"][0]["field"] == "2026-03-07"
    assert {s["key"] for s in record["sources"]} == {k for k in before if not k.endswith("_SUCCESS")}
    assert all(s["etag"] for s in record["sources"])
    assert record["snapshot_key"] == RUN_DIR + "snapshot.parquet"
    table = read_parquet(s3, buckets.artifacts, record["snapshot_key"])
    assert table.num_rows == 150
    assert "ctx_sentiment" in table.column_names
    after = {o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in list_keys(s3, buckets.logs, "snapshot-bot/")}
    assert after == before
