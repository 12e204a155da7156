"""Snapshot: freeze the training window's raw logs into one Parquet file.

Everything downstream reads the snapshot, never the raw logs, so a run can be
reproduced and audited: the snapshot record lists every source object with the
ETag it had when it was read. Raw logs are only ever read.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from agent_retraining.contract import (
    EVENT_FIELDS,
    SUCCESS_MARKER,
    context_column,
    day_prefix,
    run_prefix,
)
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, exists, get_bytes, list_keys, write_json, write_parquet

_ARROW_TYPES = {"category": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_SCALARS = {"string": pa.string(), "double": pa.float64(), "timestamp": pa.string()}


class SnapshotError(Exception):
    """Logs that cannot be read as contract v1; the message names the object and the fault."""


@dataclass(frozen=True)
class Window:
    """The days a run trains on; the newest `holdout_days` of them are held out."""

    first: date
    last: date
    holdout_days: int

    @classmethod
    def ending(cls, day: date, spec: AgentSpec, window_days: int | None = None) -> Window:
        days = window_days or spec.training.window_days
        return cls(day - timedelta(days=days - 1), day, spec.training.holdout_days)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def holdout_first(self) -> date:
        return self.last - timedelta(days=self.holdout_days - 1)


def read_schema(spec: AgentSpec) -> pa.Schema:
    """The Arrow schema of contract v1 with this agent's context features."""
    context = pa.struct([pa.field(name, _ARROW_TYPES[f.type]) for name, f in spec.context.items()])
    fields = [
        pa.field(name, context if kind == "object" else _SCALARS[kind]) for name, (kind, _) in EVENT_FIELDS.items()
    ]
    return pa.schema(fields)


def parse_log_object(key: str, body: bytes, spec: AgentSpec) -> pa.Table:
    """Parse one log object into the contract's columns, whatever its format."""
    schema = read_schema(spec)
    try:
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(body))
            missing = [name for name in schema.names if name not in table.column_names]
            if missing:
                raise SnapshotError(f"{key}: missing contract field(s) {missing}")
            table = table.select(schema.names).cast(schema)
        elif key.endswith((".jsonl", ".jsonl.gz")):
            data = gzip.decompress(body) if key.endswith(".gz") else body
            options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
            table = pj.read_json(io.BytesIO(data), parse_options=options)
        else:
            raise SnapshotError(f"{key}: unknown log file type (expected one of .jsonl, .jsonl.gz, .parquet)")
    except SnapshotError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError) as exc:
        raise SnapshotError(f"{key}: cannot be read as log contract v1: {exc}") from exc
    return table


def flatten(table: pa.Table, spec: AgentSpec, key: str, day: date) -> pa.Table:
    """Contract columns plus one column per context feature, the source of each row, and its day."""
    context = table.column("context").combine_chunks()
    try:
        ts = pc.cast(table.column("ts"), pa.timestamp("ms", tz="UTC"))
    except pa.ArrowInvalid as exc:
        raise SnapshotError(f"{key}: field 'ts' is not an RFC 3339 timestamp: {exc}") from exc
    columns = {name: table.column(name) for name in EVENT_FIELDS if name not in ("context", "ts")}
    columns["ts"] = ts
    for name in spec.context:
        columns[context_column(name)] = pc.struct_field(context, name)
    rows = table.num_rows
    columns["dt"] = pa.array([day] * rows, pa.date32())
    columns["source_key"] = pa.array([key] * rows, pa.string()).dictionary_encode()
    columns["source_line"] = pa.array(range(1, rows + 1), pa.int32())
    return pa.table(columns)


def take_snapshot(s3, buckets: Buckets, spec: AgentSpec, window: Window) -> dict:
    """Read every complete day of the window, write the Parquet snapshot and its record."""
    if not exists(s3, buckets.logs, day_prefix(spec.agent_id, window.last) + SUCCESS_MARKER):
        raise SnapshotError(
            f"s3://{buckets.logs}/{day_prefix(spec.agent_id, window.last)}{SUCCESS_MARKER} is missing: "
            f"the logs of {window.last} are not complete"
        )
    tables, sources, skipped_days = [], [], []
    for day in window.days:
        prefix = day_prefix(spec.agent_id, day)
        objects = [o for o in list_keys(s3, buckets.logs, prefix) if not o["key"].endswith(SUCCESS_MARKER)]
        if not exists(s3, buckets.logs, prefix + SUCCESS_MARKER) or not objects:
            skipped_days.append(day.isoformat())
            continue
        for obj in objects:
            body, etag = get_bytes(s3, buckets.logs, obj["key"])
            table = flatten(parse_log_object(obj["key"], body, spec), spec, obj["key"], day)
            tables.append(table)
            sources.append({"key": obj["key"], "etag": etag, "size": len(body), "rows": table.num_rows})
    snapshot = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    prefix = run_prefix(spec.agent_id, window.last)
    write_parquet(s3, buckets.artifacts, prefix + "snapshot.parquet", snapshot)
    record = {
        "agent_id": spec.agent_id,
        "window": {"first": window.first.isoformat(), "last": window.last.isoformat()},
        "holdout_first": window.holdout_first.isoformat(),
        "rows": snapshot.num_rows,
        "sources": sources,
        "skipped_days": skipped_days,
        "snapshot_key": prefix + "snapshot.parquet",
    }
    write_json(s3, buckets.artifacts, prefix + "snapshot.json", record)
    return record
