import gzip
import io
import json
import re
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.contract import EVENT_FIELDS, SUCCESS_MARKER, day_prefix, safe_key_part
from agent_retraining.datagate.reading import UnreadableObject, list_day, parse_log_object, read_day, read_schema
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.storage import get_bytes, list_keys, put_bytes
from tests.conftest import REPO

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


# --- timestamps as writers in other languages produce them (docs/log-contract.md, "Timestamps") ---------------

FRACTION = "123456789"  # a seventh digit of 7 tells truncation (…456) from rounding (…457)


def _with_ts(events, stamps):
    return [{**event, "ts": stamp} for event, stamp in zip(events, stamps, strict=True)]


@pytest.mark.parametrize("digits", range(10))
@pytest.mark.parametrize("path", ["fast", "line by line"])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_ts_with_up_to_nine_fractional_digits_is_read_truncated_to_microseconds(support_bot, digits, path, suffix):
    """Go's time.RFC3339Nano writes up to nine digits, JavaScript's toISOString three, Python's isoformat six or
    none: each is read, and digits past the sixth are dropped, never rounded. "line by line" is the path a day
    takes when one of its lines is bad."""
    fraction = f".{FRACTION[:digits]}" if digits else ""
    events = _with_ts(
        _events(support_bot, 2), [f"2026-03-10T12:34:56{fraction}Z", f"2026-03-10T13:34:56{fraction}+01:00"]
    )
    body = _jsonl(events) + (b'{"event_id": "broken", \n' if path == "line by line" else b"")
    parsed = parse_log_object(f"a/x{suffix}", gzip.compress(body) if suffix.endswith(".gz") else body, support_bot, DAY)
    expected = datetime(2026, 3, 10, 12, 34, 56, int(FRACTION[:digits].ljust(6, "0")[:6]), UTC)
    assert parsed.table.column("ts").to_pylist() == [expected, expected]
    assert len(parsed.bad_lines) == (path == "line by line")


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-10T12:34:56.1234567890Z",  # ten digits: past nanoseconds
        "2026-03-10T12:34:56.123456",  # no offset: local time of an unknown zone
        "2026-03-10T12:34:56",
        "2026-03-10 12:34:56Z",  # a space, not a T
        "2026-03-10T12:34:56+0100",  # an offset without its colon
        "2026-03-10T12:34:56+24:00",  # no such offset
        "2026-02-30T12:34:56Z",  # no such day: matches the pattern, only the parse refuses it
    ],
)
def test_ts_in_another_form_is_a_bad_line_saying_which_forms_are_accepted(support_bot, stamp):
    events = _events(support_bot, 3)
    events[1]["ts"] = stamp
    parsed = parse_log_object("a/x.jsonl", _jsonl(events), support_bot, DAY)
    assert [(b["line"], b["field"]) for b in parsed.bad_lines] == [(2, "ts")]
    message = parsed.bad_lines[0]["message"]
    assert repr(stamp) in message
    for form in ("RFC 3339", "1 to 9 digits", "Z or +HH:MM/-HH:MM", "time.RFC3339Nano", "Date.toISOString()",
                 "datetime.isoformat() of an aware datetime"):  # fmt: skip
        assert form in message
    assert parsed.table.column("source_line").to_pylist() == [1, 3]


def test_parquet_ts_in_nanoseconds_or_nine_digit_text_is_read_truncated_to_microseconds(support_bot):
    events = _events(support_bot, 2)
    table = pa.Table.from_pylist(events, schema=read_schema(support_bot))
    at = table.schema.get_field_index("ts")
    nanoseconds = 1_773_146_096_123_456_789  # 2026-03-10T12:34:56.123456789Z
    expected = [datetime(2026, 3, 10, 12, 34, 56, 123456, UTC)] * 2
    for unit_tz in ("UTC", "America/New_York"):  # a zone is an instant's rendering: the same rows
        stamped = table.set_column(at, "ts", pa.array([nanoseconds] * 2, pa.timestamp("ns", tz=unit_tz)))
        parsed = parse_log_object("a/x.parquet", _parquet(stamped), support_bot, DAY)
        assert parsed.table.column("ts").to_pylist() == expected
    text = table.set_column(
        at, "ts", pa.array(["2026-03-10T12:34:56.123456789Z", "2026-03-10T13:34:56.123456789+01:00"])
    )
    assert parse_log_object("a/x.parquet", _parquet(text), support_bot, DAY).table.column("ts").to_pylist() == expected


def test_parquet_ts_without_an_offset_refuses_the_object_naming_the_row_and_the_forms(support_bot):
    table = pa.Table.from_pylist(_events(support_bot, 3), schema=read_schema(support_bot))
    at = table.schema.get_field_index("ts")
    naive = table.set_column(at, "ts", pa.array([1_773_146_096_000_000_000] * 3, pa.timestamp("ns")))
    with pytest.raises(UnreadableObject, match=r"timestamp without a time zone: write it with tz UTC") as error:
        parse_log_object("a/x.parquet", _parquet(naive), support_bot, DAY)
    assert error.value.fault["field"] == "ts"
    text = table.set_column(at, "ts", pa.array(["2026-03-10T12:34:56Z", "2026-03-10T12:34:56", "2026-02-30T00:00:00Z"]))
    with pytest.raises(
        UnreadableObject, match=r"2 row\(s\) are not an RFC 3339 timestamp .* row 2 is '2026-03-10T12:3"
    ):
        parse_log_object("a/x.parquet", _parquet(text), support_bot, DAY)


def test_ts_in_day_judges_the_utc_date_of_each_timestamp_whatever_its_offset(support_bot):
    """`dt=` is the UTC date: 23:30 at -02:00 on the 10th is the 11th in UTC (refused from dt=2026-03-10), and
    00:30 at +02:00 on the 11th is the 10th (kept). An agent that partitions by local time has its days refused."""
    from agent_retraining.datagate.expectations import run_suite

    stamps = [
        "2026-03-10T00:00:00Z",
        "2026-03-11T00:30:00+02:00",
        "2026-03-10T23:30:00-02:00",
        "2026-03-10T23:59:59.999999999Z",
    ]
    parsed = parse_log_object("a/x.jsonl", _jsonl(_with_ts(_events(support_bot, 4), stamps)), support_bot, DAY)
    _, checks = run_suite(support_bot, DAY, parsed.table.drop_columns(["dt"]).to_pandas())
    ts_in_day = next(c for c in checks if c["rule"] == "ts_in_day:ts")
    assert not ts_in_day["success"]
    assert [(e["key"], e["line"]) for e in ts_in_day["examples"]] == [("a/x.jsonl", 3)]
    assert "1 of 4 rows fail" in ts_in_day["message"]


def test_only_the_days_own_success_marker_completes_it(s3, buckets, support_bot):
    """A replica's `_SUCCESS` in a folder of its own is no log and completes nothing: `wait_for_logs` waits for
    `<agent_id>/dt=<day>/_SUCCESS` alone, and the data gate agrees with it."""
    spec = support_bot.model_copy(update={"agent_id": "marker-bot"})
    prefix = day_prefix(spec.agent_id, DAY)
    put_bytes(s3, buckets.logs, prefix + "replica-a/replica-a-000001.jsonl", _jsonl(_events(spec, 3)))
    put_bytes(s3, buckets.logs, prefix + "replica-a/_SUCCESS", b"")
    logs, complete = list_day(s3, buckets, spec, DAY)
    assert [o["key"] for o in logs] == [prefix + "replica-a/replica-a-000001.jsonl"]
    assert not complete
    put_bytes(s3, buckets.logs, prefix + SUCCESS_MARKER, b"")
    assert list_day(s3, buckets, spec, DAY) == (logs, True)


def _contract_block(kind: str) -> str:
    """The first ```<kind> block of docs/log-contract.md."""
    text = (REPO / "docs" / "log-contract.md").read_text()
    return re.search(rf"^```{kind}\n(.*?)^```$", text, re.M | re.S).group(1)


def test_the_log_contracts_example_event_is_read_in_every_format_and_passes_the_gates_rules(support_bot):
    """The example line, gzipped, and as Parquet of the schema the contract prints: the same row, and every rule of
    the day's suite passes on it. The doc cannot drift from the reader."""
    from agent_retraining.datagate.expectations import run_suite

    line = _contract_block("json").encode()
    event = json.loads(line)
    day = date.fromisoformat(event["ts"][:10])
    documented = {}
    for entry in re.split(r"\n(?=\w+:)", _contract_block("text").strip()):  # a field an entry, its lines joined
        name, kind = " ".join(entry.split()).split(": ", 1)
        documented[name] = re.sub(r"\s*\(.*\)$", "", kind)
    schema = read_schema(support_bot)
    schema = schema.set(schema.get_field_index("ts"), pa.field("ts", pa.timestamp("us", tz="UTC")))
    schema = pa.schema([f.with_nullable(EVENT_FIELDS[f.name][1]) for f in schema])
    assert documented == {f.name: f"{f.type}" + ("" if f.nullable else " not null") for f in schema}
    stamped = {**event, "ts": datetime(2026, 11, 29, 13, 4, 5, 123456, UTC)}
    parquet = _parquet(pa.Table.from_pylist([stamped], schema=schema))
    tables = [parse_log_object(key, body, support_bot, day) for key, body in
              (("a/x.jsonl", line), ("a/x.jsonl.gz", gzip.compress(line)), ("a/x.parquet", parquet))]  # fmt: skip
    assert all(t.bad_lines == [] for t in tables)
    rows = [t.table.drop(["source_key"]).to_pylist() for t in tables]
    assert rows[0] == rows[1] == rows[2]
    assert rows[0][0]["ts"] == stamped["ts"]
    _, checks = run_suite(support_bot, day, tables[0].table.drop_columns(["dt"]).to_pandas())
    assert [c["rule"] for c in checks if not c["success"]] == []
