"""Reading one day of an agent's raw logs into flat rows, whatever the files' format.

A day is the unit the pipeline reads: every object under `dt=<day>/` is read
once, its ETag recorded, and parsed into one Arrow table with a column per
context feature and the source object and line of every row, so any later
complaint about a row can name where it came from. Raw logs are only ever read.

Faults found while reading (an unreadable object, a line that is not JSON or
has a value of the wrong type, an empty day) do not stop the reading: they are
recorded with object key, line and field, the offending lines or objects are
copied to the day's quarantine prefix, and the data gate decides.

Every byte is hostile until checked. Whatever a line holds (a number beyond
float or int64, NaN, a lone surrogate, bytes that are not UTF-8, brackets nested
beyond any parser's depth, a line longer than `max_line_bytes`) it becomes rows
or a fault naming the object, the line, the field and the rule; whatever an
object holds, it becomes rows or an `unreadable_object` fault. Memory is bounded
by the spec's caps, checked before anything is held: an object whose stored size
is above `max_object_bytes` is never fetched, and decompression streams and
stops at `max_decompressed_bytes`; either is an `object_too_large` fault, and
the object is quarantined by reference (a reason naming it), not copied.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from agent_retraining.contract import (
    EVENT_FIELDS,
    SUCCESS_MARKER,
    context_column,
    day_prefix,
    quarantine_prefix,
    success_key,
)
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, get_bytes, list_keys, put_bytes, write_json

log = logging.getLogger(__name__)

FEATURE_TYPES = {"category": pa.string(), "open_category": pa.string(), "int": pa.int64(), "float": pa.float64(),
                 "bool": pa.bool_(), "text": pa.string(), "embedding": pa.list_(pa.float64())}  # fmt: skip
_SCALARS = {"string": pa.string(), "double": pa.float64(), "timestamp": pa.string()}
# `ts` as text: RFC 3339 with an offset and up to nine fractional digits (Go's time.RFC3339Nano writes nine), which
# the pipeline truncates to the microseconds it stores. Offsets are checked to be real (hours to 23, minutes to 59)
# so that whatever passes here and `datetime.fromisoformat` also passes Arrow's parse in `_timestamps`.
_RFC3339_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
_PAST_MICROSECONDS = r"(\.\d{6})\d+"
_TS_FORMS = ("an RFC 3339 timestamp with an offset: YYYY-MM-DDTHH:MM:SS, optionally '.' and 1 to 9 digits, then Z or "
            "+HH:MM/-HH:MM, e.g. 2026-11-29T13:04:05.123456789Z (Go: time.RFC3339Nano; JavaScript: "
            "Date.toISOString(); Python: datetime.isoformat() of an aware datetime)")  # fmt: skip
_UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
# JSON types a value may have, by contract or feature type (bool is not a number here).
_JSON_TYPES = {"string": (str,), "double": (int, float), "timestamp": (str,), "object": (dict,)}
_FEATURE_JSON_TYPES = {"category": (str,), "open_category": (str,), "int": (int,), "float": (int, float),
                       "bool": (bool,), "text": (str,), "embedding": (list,)}  # fmt: skip


def fault(rule: str, message: str, key: str | None = None, line: int | None = None, field: str | None = None) -> dict:
    return {"rule": rule, "key": key, "line": line, "field": field, "message": message}


class UnreadableObject(Exception):
    """A whole object that cannot be read as contract v1 (wrong format, corrupt, missing columns)."""

    rule = "unreadable_object"
    copied = True  # quarantined as a copy; too large an object is quarantined by reference only

    def __init__(self, key: str, message: str, field: str | None = None):
        super().__init__(f"{key}: {message}")
        self.fault = fault(self.rule, str(self), key=key, field=field)


class ObjectTooLarge(UnreadableObject):
    """An object above the spec's caps on stored or decompressed size: refused before it can exhaust memory."""

    rule = "object_too_large"
    copied = False


@dataclass
class ParsedObject:
    table: pa.Table  # flattened rows that could be read
    lines: int  # events in the object (lines of JSONL, rows of Parquet)
    bad_lines: list[dict] = field(default_factory=list)  # faults with the raw line, one per rejected line


def read_schema(spec: AgentSpec) -> pa.Schema:
    """The Arrow schema of contract v1 with this agent's context features."""
    context = pa.struct([pa.field(name, FEATURE_TYPES[f.type]) for name, f in spec.context.items()])
    fields = [
        pa.field(name, context if kind == "object" else _SCALARS[kind]) for name, (kind, _) in EVENT_FIELDS.items()
    ]
    return pa.schema(fields)


INT64 = (-(2**63), 2**63 - 1)
_DOUBLE_FIELDS = tuple(name for name, (kind, _) in EVENT_FIELDS.items() if kind == "double")


def _shown(value: object) -> str:
    return f"{type(value).__name__} {json.dumps(value, ensure_ascii=True)[:40]}"


def _value_fault(value: object, kind: str) -> str | None:
    """Why a JSON value of the right type still cannot be a row's value (text or number), if it cannot."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"must be valid UTF-8 text, got a lone surrogate in {_shown(value)}"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    elif isinstance(value, int) and kind == "int" and not INT64[0] <= value <= INT64[1]:
        return f"must fit a 64-bit integer, got {str(value)[:40]}"
    return None


def _type_fault(event: object, spec: AgentSpec) -> tuple[str | None, str] | None:
    """The first field whose JSON value has the wrong type or an unusable value, as (field, message); presence
    is the gate's job."""
    if not isinstance(event, dict):
        return None, f"an event must be a JSON object, got {type(event).__name__}"
    for name, (kind, _) in EVENT_FIELDS.items():
        value = event.get(name)
        allowed = _JSON_TYPES[kind]
        if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
            return name, f"must be a {kind}, got {_shown(value)}"
        problem = value is not None and _value_fault(value, kind)
        if problem:
            return name, problem
    ts = event.get("ts")
    if isinstance(ts, str) and not is_rfc3339(ts):
        return "ts", f"must be {_TS_FORMS}, got {ts!r}"
    for name, feature in spec.context.items():
        problem = context_value_fault((event.get("context") or {}).get(name), feature.type)
        if problem:
            return f"context.{name}", problem
    return None


def context_value_fault(value: object, feature_type: str) -> str | None:
    """Why a context value (JSON) cannot be a feature of this type, if it cannot: the same rule for a logged
    event and for a context the agent's client is asked to score."""
    if value is None:
        return None
    wrong_bool = isinstance(value, bool) and feature_type != "bool"
    if not isinstance(value, _FEATURE_JSON_TYPES[feature_type]) or wrong_bool:
        return f"must be {feature_type}, got {_shown(value)}"
    if feature_type == "embedding":  # its length is the gate's rule (embedding_valid), judged for the whole day
        position = next((i for i, v in enumerate(value) if not isinstance(v, int | float) or isinstance(v, bool)
                         or not math.isfinite(v)), None)  # fmt: skip
        return None if position is None else f"must be a list of finite numbers, item {position} is {value[position]!r}"
    return _value_fault(value, feature_type)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _row(event: dict, spec: AgentSpec) -> dict:
    """The event as the read schema's row: only its fields, numbers of double fields as floats."""
    row = {name: event.get(name) for name in EVENT_FIELDS if name != "context"}
    for name in _DOUBLE_FIELDS:
        row[name] = None if row[name] is None else float(row[name])
    context = event.get("context") or {}
    row["context"] = {name: _context_value(context.get(name), feature.type) for name, feature in spec.context.items()}
    return row


def _context_value(value: object, feature_type: str) -> object:
    if value is None:
        return None
    if feature_type == "float":
        return float(value)
    return [float(v) for v in value] if feature_type == "embedding" else value


def _timestamps(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`ts` text as UTC microseconds. Arrow's parse stops at six fractional digits: when it refuses, digits past
    the sixth are dropped (truncated, never rounded) and the text parsed again, so a writer pays for the
    rewrite only when it sends nanoseconds."""
    try:
        return pc.cast(text, _UTC_MICROSECONDS)
    except pa.ArrowInvalid:
        return pc.cast(pc.replace_substring_regex(text, _PAST_MICROSECONDS, r"\1"), _UTC_MICROSECONDS)


def _parses(text: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every `ts` that matched the pattern is a real instant (no 30 February, no hour 24)."""
    try:
        _timestamps(text)
    except pa.ArrowInvalid:
        return False
    return True


def is_rfc3339(value: str) -> bool:
    if not re.match(_RFC3339_WITH_OFFSET, value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _read_jsonl(data: bytes, schema: pa.Schema, max_line_bytes: int) -> pa.Table:
    """Arrow's parse of a whole object; its blocks are as large as the longest line allowed, so a longer line
    fails it (as straddling two blocks) and goes to the line-by-line path, which names it."""
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return pj.read_json(pa.BufferReader(data), parse_options=options,
                        read_options=pj.ReadOptions(block_size=max_line_bytes))  # fmt: skip


def _trusted(table: pa.Table, spec: AgentSpec, line_count: int) -> bool:
    """Whether Arrow's fast parse can be kept as is: one row per line, valid UTF-8 everywhere, finite numbers
    (Arrow reads a bare NaN), real timestamps with an offset. Anything else goes line by line, to name the
    culprits."""
    if table.num_rows != line_count:
        return False  # Arrow skips blank lines: line numbers would be ambiguous
    table.validate(full=True)  # raises on invalid UTF-8
    context = table.column("context")
    floats = [table.column(name) for name in _DOUBLE_FIELDS]
    floats += [pc.struct_field(context, name) for name, f in spec.context.items() if f.type == "float"]
    vectors = [pc.list_flatten(pc.struct_field(context, name)) for name, f in spec.context.items()
               if f.type == "embedding"]  # fmt: skip
    finite = all(pc.all(pc.is_finite(column)).as_py() in (True, None) for column in floats + vectors)
    finite = finite and not any(values.null_count for values in vectors)  # [0.1, null] is no vector
    timestamps_ok = pc.all(pc.match_substring_regex(table.column("ts"), _RFC3339_WITH_OFFSET)).as_py()
    return finite and timestamps_ok in (True, None) and _parses(table.column("ts"))


RAW_LINE_KEPT = 65_536  # bytes of a rejected line copied to the quarantine; a longer line is cut, and says so


def parse_line(raw: bytes, limit: int, fault_of) -> tuple[object, tuple[str | None, str] | None]:
    """One JSON line, and why it is not a usable record if it is not, as (field, message): longer than `limit`
    bytes, not JSON, or what `fault_of` finds wrong with the parsed value."""
    if len(raw) > limit:
        return None, (None, f"line of {len(raw):,} bytes, above max_line_bytes {limit:,}")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        return None, (None, f"malformed JSON: {exc}")
    except RecursionError:
        return None, (None, "malformed JSON: nested too deeply to parse")
    return value, fault_of(value)


def line_fault(key: str, number: int, raw: bytes, field: str | None, message: str) -> dict:
    """A rejected line's fault, with (the start of) the raw line for the quarantine."""
    shown = raw[:RAW_LINE_KEPT].decode(errors="replace") + (
        f"... ({len(raw):,} bytes)" if len(raw) > RAW_LINE_KEPT else ""
    )
    return {**fault("bad_lines", message, key, number, field), "raw": shown}


def _parse_jsonl(key: str, data: bytes, spec: AgentSpec) -> tuple[pa.Table, np.ndarray, list[dict]]:
    """Rows, their line numbers, and one fault per rejected line.

    The fast path hands the whole object to Arrow and keeps its rows when they can be trusted (see `_trusted`);
    otherwise every line is parsed on its own, checked, and the good ones are built into rows from the values
    that were checked, so nothing reaches the table that a check did not see.
    """
    schema = read_schema(spec)
    line_count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    try:
        table = _read_jsonl(data, schema, spec.validation.max_line_bytes)
        if _trusted(table, spec, line_count):
            return table, np.arange(1, line_count + 1, dtype=np.int32), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    rows, numbers, bad = [], [], []
    limit = spec.validation.max_line_bytes
    for number, raw in enumerate(data.split(b"\n")[:line_count], start=1):
        if not raw.strip():
            continue
        event, problem = parse_line(raw, limit, lambda value: _type_fault(value, spec))
        if problem:
            bad.append(line_fault(key, number, raw, problem[0], problem[1]))
        else:
            rows.append(_row(event, spec))
            numbers.append(number)
    return _rows_table(key, rows, numbers, bad, schema)


def _rows_table(key: str, rows: list[dict], numbers: list[int], bad: list[dict], schema: pa.Schema):
    """The checked rows as a table; a row Arrow still refuses becomes one more bad line, naming Arrow's reason."""
    try:
        return pa.Table.from_pylist(rows, schema=schema), np.array(numbers, dtype=np.int32), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    kept, kept_numbers = [], []
    for row, number in zip(rows, numbers, strict=True):
        try:
            pa.Table.from_pylist([row], schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raw = json.dumps(row, ensure_ascii=True).encode()
            bad.append(line_fault(key, number, raw, None, f"value Arrow cannot hold: {exc}"))
            continue
        kept.append(row)
        kept_numbers.append(number)
    bad.sort(key=lambda b: b["line"])
    return pa.Table.from_pylist(kept, schema=schema), np.array(kept_numbers, dtype=np.int32), bad


def _parse_parquet(key: str, body: bytes, spec: AgentSpec) -> pa.Table:
    schema = read_schema(spec)
    try:
        table = pq.read_table(io.BytesIO(body))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableObject(key, f"not a readable Parquet file: {exc}") from exc
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise UnreadableObject(key, f"missing contract field(s) {missing}", field=missing[0])
    columns = []
    for target in schema:
        column, found = table.column(target.name), table.schema.field(target.name).type
        if target.name == "ts" and pa.types.is_timestamp(found) and found.tz is None:
            raise UnreadableObject(key, "field 'ts' is a timestamp without a time zone: write it with tz UTC "
                                        "(e.g. pa.timestamp('us', tz='UTC'))", "ts")  # fmt: skip
        try:
            if target.name == "ts" and pa.types.is_timestamp(found):
                if found.unit == "ns":  # truncated to microseconds, as text timestamps are
                    column = pc.floor_temporal(column.cast(pa.timestamp("ns", tz="UTC")), unit="microsecond")
                column = pc.strftime(column.cast(_UTC_MICROSECONDS), "%Y-%m-%dT%H:%M:%SZ")
            columns.append(column.cast(target.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            message = f"field '{target.name}' is {found}, expected {target.type}: {exc}"
            raise UnreadableObject(key, message, target.name) from exc
    table = pa.Table.from_arrays(columns, schema=schema)
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise UnreadableObject(key, f"a text column is not valid UTF-8: {exc}") from exc
    stamps = pc.match_substring_regex(table.column("ts"), _RFC3339_WITH_OFFSET)
    if pc.all(stamps).as_py() not in (True, None) or not _parses(table.column("ts")):
        wrong = [(row, value) for row, value in enumerate(table.column("ts").to_pylist(), start=1)
                 if value is not None and not is_rfc3339(value)]  # fmt: skip
        first = f"; row {wrong[0][0]} is {wrong[0][1]!r}" if wrong else ""
        raise UnreadableObject(key, f"field 'ts': {len(wrong)} row(s) are not {_TS_FORMS}, nor is the column a "
                                    f"timestamp with a time zone{first}", "ts")  # fmt: skip
    return table


def gunzip(key: str, body: bytes, cap: int) -> bytes:
    """The decompressed bytes, streamed and stopped one byte past `cap`: a small bomb never inflates in memory."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            data = stream.read(cap + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableObject(key, f"truncated or corrupt gzip: {exc}") from exc
    if len(data) > cap:
        raise ObjectTooLarge(key, f"decompresses to more than max_decompressed_bytes ({cap:,} bytes) from "
                                  f"{len(body):,} bytes")  # fmt: skip
    return data


def parse_log_object(key: str, body: bytes, spec: AgentSpec, day: date) -> ParsedObject:
    """Parse one log object, whatever its format, into flattened snapshot rows."""
    if key.endswith(".parquet"):
        table = _parse_parquet(key, body, spec)
        numbers, bad = np.arange(1, table.num_rows + 1, dtype=np.int32), []
    elif key.endswith((".jsonl", ".jsonl.gz")):
        cap = spec.validation.max_decompressed_bytes
        if key.endswith(".gz"):
            body = gunzip(key, body, cap)
        elif len(body) > cap:
            raise ObjectTooLarge(key, f"{len(body):,} bytes, above max_decompressed_bytes ({cap:,})")
        table, numbers, bad = _parse_jsonl(key, body, spec)
    else:
        raise UnreadableObject(key, "unknown log file type (expected .jsonl, .jsonl.gz or .parquet)")
    return ParsedObject(flatten(table, spec, key, day, numbers), len(numbers) + len(bad), bad)


def flatten(table: pa.Table, spec: AgentSpec, key: str, day: date, line_numbers: np.ndarray) -> pa.Table:
    """Contract columns plus one column per context feature, the source of each row, and its day."""
    context = table.column("context").combine_chunks()
    columns = {name: table.column(name) for name in EVENT_FIELDS if name not in ("context", "ts")}
    columns["ts"] = _timestamps(table.column("ts"))
    for name in spec.context:
        columns[context_column(name)] = pc.struct_field(context, name)
    rows = table.num_rows
    columns["dt"] = pa.repeat(pa.scalar(day, pa.date32()), rows)
    columns["source_key"] = pa.repeat(pa.scalar(key, pa.string()), rows)
    columns["source_line"] = pa.array(line_numbers, pa.int32())
    return pa.table(columns)


def quarantine_name(spec: AgentSpec, day: date, key: str) -> str:
    """Where the quarantine keeps what was wrong with one object: its file name, `feedback-` first for a feedback
    object (a day's decisions and its feedback may use the same file names)."""
    stream = "feedback-" if key.startswith(f"{spec.agent_id}/feedback/") else ""
    return quarantine_prefix(spec.agent_id, day) + stream + key.rsplit("/", 1)[-1]


def quarantine_lines(s3, buckets: Buckets, spec: AgentSpec, day: date, key: str, bad: list[dict]) -> str:
    target = quarantine_name(spec, day, key) + ".rejected-lines.jsonl"
    put_bytes(s3, buckets.artifacts, target, "".join(json.dumps(b) + "\n" for b in bad).encode())
    return target


def quarantine_object(s3, buckets: Buckets, spec: AgentSpec, day: date, key: str, body: bytes | None,
                      why: dict) -> str:  # fmt: skip
    """A copy of the object beside its reason; without `body` (too large to hold) the reason alone, naming it."""
    target = quarantine_name(spec, day, key)
    if body is not None:
        put_bytes(s3, buckets.artifacts, target, body)
    write_json(s3, buckets.artifacts, target + ".reason.json", {**why, "source": f"s3://{buckets.logs}/{key}",
                                                                 "copied": body is not None})  # fmt: skip
    return target


@dataclass
class DayOfLogs:
    """Everything read from one day's objects: the usable rows and what was wrong with the rest."""

    day: date
    table: pa.Table
    sources: list[dict]  # key, ETag as read, size of every object
    faults: list[dict]  # unreadable objects, one per rejected line, an empty day
    quarantined: list[str]
    lines: int
    bad_lines: int


def empty_rows(spec: AgentSpec, day: date) -> pa.Table:
    """A table of no rows with the columns every day's rows have."""
    return flatten(read_schema(spec).empty_table(), spec, "", day, np.array([], np.int32))


def list_day(s3, buckets: Buckets, spec: AgentSpec, day: date) -> tuple[list[dict], bool]:
    """The day's log objects (key, size, ETag), and whether its `_SUCCESS` marker says they are complete.

    Only `<agent_id>/dt=<day>/_SUCCESS` completes the day, the key `wait_for_logs` waits for; a `_SUCCESS` deeper
    in the day's folder (one replica's own) is no log and is not read, but completes nothing.
    """
    objects = list_keys(s3, buckets.logs, day_prefix(spec.agent_id, day))
    logs = [o for o in objects if o["key"].rsplit("/", 1)[-1] != SUCCESS_MARKER]
    return logs, any(o["key"] == success_key(spec.agent_id, day) for o in objects)


def read_day(s3, buckets: Buckets, spec: AgentSpec, day: date, objects: list[dict]) -> DayOfLogs:
    """Read and parse the listed objects of one day (as `list_day` lists them)."""
    logs = read_objects(s3, buckets, spec, day, objects, lambda key, body: parse_log_object(key, body, spec, day),
                        empty_rows(spec, day))  # fmt: skip
    if logs.lines == 0:
        prefix = day_prefix(spec.agent_id, day)
        logs.faults.append(fault("empty_day", f"no log events under s3://{buckets.logs}/{prefix}", key=prefix))
    return logs


def read_objects(s3, buckets: Buckets, spec: AgentSpec, day: date, objects: list[dict], parse,
                 empty: pa.Table) -> DayOfLogs:  # fmt: skip
    """Fetch and `parse` (key, body -> ParsedObject) each listed object of a day's stream, decisions or feedback,
    under the spec's caps; every fault is named and quarantined, never raised. `empty` gives the rows' columns."""
    tables, sources, faults, quarantined, lines, bad_lines = [empty], [], [], [], 0, 0
    limit = spec.validation.max_object_bytes

    def refuse(refused: UnreadableObject, body: bytes | None) -> None:
        faults.append(refused.fault)
        kept = body if refused.copied else None
        quarantined.append(quarantine_object(s3, buckets, spec, day, refused.fault["key"], kept, refused.fault))

    for obj in objects:
        if obj["size"] > limit:  # never fetched: the listing's size is enough to refuse it
            sources.append({"key": obj["key"], "etag": obj["etag"], "size": obj["size"]})
            too_large = f"{obj['size']:,} bytes stored, above max_object_bytes ({limit:,})"
            refuse(ObjectTooLarge(obj["key"], too_large), None)
            continue
        body, etag = get_bytes(s3, buckets.logs, obj["key"])
        sources.append({"key": obj["key"], "etag": etag, "size": len(body)})
        try:
            parsed = parse(obj["key"], body)
        except UnreadableObject as exc:
            refuse(exc, body)
            continue
        except Exception as exc:  # noqa: BLE001 - whatever nobody foresaw is a named fault of this object, not a crash
            log.exception("reading %s failed", obj["key"])
            refuse(UnreadableObject(obj["key"], f"could not be read: {type(exc).__name__}: {exc}"), body)
            continue
        if parsed.bad_lines:
            faults.extend({k: v for k, v in b.items() if k != "raw"} for b in parsed.bad_lines)
            quarantined.append(quarantine_lines(s3, buckets, spec, day, obj["key"], parsed.bad_lines))
        lines += parsed.lines
        bad_lines += len(parsed.bad_lines)
        tables.append(parsed.table)
    return DayOfLogs(day, pa.concat_tables(tables), sources, faults, quarantined, lines, bad_lines)
