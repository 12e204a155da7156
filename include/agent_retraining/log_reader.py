"""Reading one day of an agent's raw logs into flat rows, whatever the files' format.

A day is the unit the pipeline reads: every object under `dt=<day>/` is read
once, its ETag recorded, and parsed into one Arrow table with a column per
context feature and the source object and line of every row, so any later
complaint about a row can name where it came from. Raw logs are only ever read.

Faults found while reading (an unreadable object, a line that is not JSON or
has a value of the wrong type, an empty day) do not stop the reading: they are
recorded with object key, line and field, the offending lines or objects are
copied to the day's quarantine prefix, and the data gate decides.
"""

from __future__ import annotations

import gzip
import io
import json
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
)
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, get_bytes, list_keys, put_bytes, write_json

FEATURE_TYPES = {"category": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_SCALARS = {"string": pa.string(), "double": pa.float64(), "timestamp": pa.string()}
_RFC3339_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# JSON types a value may have, by contract or feature type (bool is not a number here).
_JSON_TYPES = {"string": (str,), "double": (int, float), "timestamp": (str,), "object": (dict,)}
_FEATURE_JSON_TYPES = {"category": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def fault(rule: str, message: str, key: str | None = None, line: int | None = None, field: str | None = None) -> dict:
    return {"rule": rule, "key": key, "line": line, "field": field, "message": message}


class UnreadableObject(Exception):
    """A whole object that cannot be read as contract v1 (wrong format, corrupt, missing columns)."""

    def __init__(self, key: str, message: str, field: str | None = None):
        super().__init__(f"{key}: {message}")
        self.fault = fault("unreadable_object", str(self), key=key, field=field)


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


def _type_fault(event: object, spec: AgentSpec) -> tuple[str | None, str] | None:
    """The first field whose JSON value has the wrong type, as (field, rule); presence is the gate's job."""
    if not isinstance(event, dict):
        return None, f"an event must be a JSON object, got {type(event).__name__}"
    for name, (kind, _) in EVENT_FIELDS.items():
        value = event.get(name)
        allowed = _JSON_TYPES[kind]
        if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
            return name, f"must be a {kind}, got {type(value).__name__} {json.dumps(value)[:40]}"
    ts = event.get("ts")
    if isinstance(ts, str) and not _is_rfc3339(ts):
        return "ts", f"must be an RFC 3339 timestamp with an offset (at most microseconds), got {ts!r}"
    for name, feature in spec.context.items():
        value = (event.get("context") or {}).get(name)
        allowed = _FEATURE_JSON_TYPES[feature.type]
        wrong_bool = isinstance(value, bool) and feature.type != "bool"
        if value is not None and (not isinstance(value, allowed) or wrong_bool):
            return f"context.{name}", f"must be {feature.type}, got {type(value).__name__} {json.dumps(value)[:40]}"
    return None


def _is_rfc3339(value: str) -> bool:
    if not re.match(_RFC3339_WITH_OFFSET, value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _read_jsonl(data: bytes, schema: pa.Schema) -> pa.Table:
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return pj.read_json(pa.BufferReader(data), parse_options=options)


def _parse_jsonl(key: str, data: bytes, spec: AgentSpec) -> tuple[pa.Table, np.ndarray, list[dict]]:
    """Rows, their line numbers, and one fault per rejected line.

    The fast path hands the whole object to Arrow and keeps its rows when there
    is one per line (Arrow skips blank lines, so a count that differs means line
    numbers would be ambiguous); otherwise the object is parsed line by line to
    find the culprits.
    """
    schema = read_schema(spec)
    line_count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    try:
        table = _read_jsonl(data, schema)
        timestamps_ok = pc.all(pc.match_substring_regex(table.column("ts"), _RFC3339_WITH_OFFSET)).as_py()
        if table.num_rows == line_count and timestamps_ok in (True, None):
            return table, np.arange(1, line_count + 1, dtype=np.int32), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    good, numbers, bad = [], [], []
    for number, raw in enumerate(data.split(b"\n")[:line_count], start=1):
        if not raw.strip():
            continue
        try:
            problem = _type_fault(json.loads(raw), spec)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = (None, f"malformed JSON: {exc}")
        if problem:
            bad.append({**fault("bad_lines", problem[1], key, number, problem[0]), "raw": raw.decode(errors="replace")})
        else:
            good.append(raw)
            numbers.append(number)
    table = _read_jsonl(b"\n".join(good), schema) if good else schema.empty_table()
    return table, np.array(numbers, dtype=np.int32), bad


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
        try:
            columns.append(table.column(target.name).cast(target.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            found = table.schema.field(target.name).type
            message = f"field '{target.name}' is {found}, expected {target.type}: {exc}"
            raise UnreadableObject(key, message, target.name) from exc
    return pa.Table.from_arrays(columns, schema=schema)


def parse_log_object(key: str, body: bytes, spec: AgentSpec, day: date) -> ParsedObject:
    """Parse one log object, whatever its format, into flattened snapshot rows."""
    if key.endswith(".parquet"):
        table = _parse_parquet(key, body, spec)
        numbers, bad = np.arange(1, table.num_rows + 1, dtype=np.int32), []
    elif key.endswith((".jsonl", ".jsonl.gz")):
        if key.endswith(".gz"):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise UnreadableObject(key, f"truncated or corrupt gzip: {exc}") from exc
        table, numbers, bad = _parse_jsonl(key, body, spec)
    else:
        raise UnreadableObject(key, "unknown log file type (expected .jsonl, .jsonl.gz or .parquet)")
    return ParsedObject(flatten(table, spec, key, day, numbers), len(numbers) + len(bad), bad)


def flatten(table: pa.Table, spec: AgentSpec, key: str, day: date, line_numbers: np.ndarray) -> pa.Table:
    """Contract columns plus one column per context feature, the source of each row, and its day."""
    context = table.column("context").combine_chunks()
    columns = {name: table.column(name) for name in EVENT_FIELDS if name not in ("context", "ts")}
    columns["ts"] = pc.cast(table.column("ts"), pa.timestamp("us", tz="UTC"))
    for name in spec.context:
        columns[context_column(name)] = pc.struct_field(context, name)
    rows = table.num_rows
    columns["dt"] = pa.repeat(pa.scalar(day, pa.date32()), rows)
    columns["source_key"] = pa.repeat(pa.scalar(key, pa.string()), rows)
    columns["source_line"] = pa.array(line_numbers, pa.int32())
    return pa.table(columns)


def _quarantine_lines(s3, buckets: Buckets, spec: AgentSpec, day: date, key: str, bad: list[dict]) -> str:
    target = f"{quarantine_prefix(spec.agent_id, day)}{key.rsplit('/', 1)[-1]}.rejected-lines.jsonl"
    put_bytes(s3, buckets.artifacts, target, "".join(json.dumps(b) + "\n" for b in bad).encode())
    return target


def _quarantine_object(s3, buckets: Buckets, spec: AgentSpec, day: date, key: str, body: bytes, why: dict) -> str:
    target = quarantine_prefix(spec.agent_id, day) + key.rsplit("/", 1)[-1]
    put_bytes(s3, buckets.artifacts, target, body)
    write_json(s3, buckets.artifacts, target + ".reason.json", {**why, "source": f"s3://{buckets.logs}/{key}"})
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
    """The day's log objects (key, size, ETag), and whether its `_SUCCESS` marker says they are complete."""
    objects = list_keys(s3, buckets.logs, day_prefix(spec.agent_id, day))
    logs = [o for o in objects if o["key"].rsplit("/", 1)[-1] != SUCCESS_MARKER]
    return logs, len(logs) < len(objects)


def read_day(s3, buckets: Buckets, spec: AgentSpec, day: date, objects: list[dict]) -> DayOfLogs:
    """Read and parse the listed objects of one day (as `list_day` lists them)."""
    tables, sources, faults, quarantined, lines, bad_lines = [empty_rows(spec, day)], [], [], [], 0, 0
    for obj in objects:
        body, etag = get_bytes(s3, buckets.logs, obj["key"])
        sources.append({"key": obj["key"], "etag": etag, "size": len(body)})
        try:
            parsed = parse_log_object(obj["key"], body, spec, day)
        except UnreadableObject as exc:
            faults.append(exc.fault)
            quarantined.append(_quarantine_object(s3, buckets, spec, day, obj["key"], body, exc.fault))
            continue
        if parsed.bad_lines:
            faults.extend({k: v for k, v in b.items() if k != "raw"} for b in parsed.bad_lines)
            quarantined.append(_quarantine_lines(s3, buckets, spec, day, obj["key"], parsed.bad_lines))
        lines += parsed.lines
        bad_lines += len(parsed.bad_lines)
        tables.append(parsed.table)
    if lines == 0:
        prefix = day_prefix(spec.agent_id, day)
        faults.append(fault("empty_day", f"no log events under s3://{buckets.logs}/{prefix}", key=prefix))
    return DayOfLogs(day, pa.concat_tables(tables), sources, faults, quarantined, lines, bad_lines)
