import gzip
import io
import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.contract import safe_key_part
from agent_retraining.simulate import World, day_events, write_day
from agent_retraining.snapshot import SnapshotError, Window, parse_log_object, take_snapshot
from agent_retraining.storage import get_bytes, list_keys, read_parquet

DAY = date(2026, 3, 10)


def _events(spec, rows=20):
    return day_events(World.for_spec(spec, 0), DAY, rows, 0)


def _jsonl(events) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def test_jsonl_gz_and_parquet_give_the_same_rows(support_bot):
    events = _events(support_bot)
    from_json = parse_log_object("a/x.jsonl.gz", gzip.compress(_jsonl(events)), support_bot)
    buffer = io.BytesIO()
    pq.write_table(from_json, buffer)
    from_parquet = parse_log_object("a/x.parquet", buffer.getvalue(), support_bot)
    assert from_json.num_rows == len(events)
    assert from_parquet.equals(from_json)


def test_unknown_context_keys_and_reordered_fields_are_accepted(support_bot):
    events = _events(support_bot, 3)
    shuffled = [{**dict(reversed(list(e.items()))), "context": {**e["context"], "new_key": 1}} for e in events]
    table = parse_log_object("a/x.jsonl", _jsonl(shuffled), support_bot)
    assert table.column("action").to_pylist() == [e["action"] for e in events]


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("a/x.jsonl", b'{"event_id": "1", "ts": \n', "cannot be read as log contract v1"),
        ("a/x.csv", b"event_id,ts\n", "unknown log file type"),
        ("a/x.jsonl.gz", gzip.compress(b'{"event_id": "1"}\n' * 50)[:-12], "cannot be read"),
    ],
)
def test_unreadable_objects_are_refused_naming_the_key(support_bot, key, body, message):
    with pytest.raises(SnapshotError, match=message) as error:
        parse_log_object(key, body, support_bot)
    assert str(error.value).startswith(key)


def test_a_wrong_type_names_the_field(support_bot):
    event = _events(support_bot, 1)[0]
    event["context"]["open_tickets"] = "many"
    with pytest.raises(SnapshotError, match="a/x.jsonl: .*context/open_tickets"):
        parse_log_object("a/x.jsonl", _jsonl([event]), support_bot)


def test_parquet_missing_a_contract_field_is_refused(support_bot):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"event_id": ["1"]}), buffer)
    with pytest.raises(SnapshotError, match=r"missing contract field\(s\) \['ts'"):
        parse_log_object("a/x.parquet", buffer.getvalue(), support_bot)


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

    record = take_snapshot(s3, buckets, spec, Window(date(2026, 3, 7), DAY, 1))

    assert record["rows"] == 150
    assert record["skipped_days"] == ["2026-03-07"]
    assert {s["key"] for s in record["sources"]} == {k for k in before if not k.endswith("_SUCCESS")}
    assert all(s["etag"] for s in record["sources"])
    table = read_parquet(s3, buckets.artifacts, record["snapshot_key"])
    assert table.num_rows == 150
    assert "ctx_sentiment" in table.column_names
    after = {o["key"]: get_bytes(s3, buckets.logs, o["key"])[0] for o in list_keys(s3, buckets.logs, "snapshot-bot/")}
    assert after == before


def test_a_day_without_success_marker_is_not_snapshotted(s3, buckets, support_bot):
    spec = support_bot.model_copy(update={"agent_id": "incomplete-bot"})
    with pytest.raises(SnapshotError, match="_SUCCESS is missing"):
        take_snapshot(s3, buckets, spec, Window(date(2026, 3, 4), DAY, 1))
