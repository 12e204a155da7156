"""The `build_features` task: the run's train and holdout sets from its validated days, and the spec's view of the
encoding (models/encoding.py) that training and evaluation apply to them."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.datagate.reading import empty_rows
from agent_retraining.models.encoding import (
    columns,
    context_block,
    encoding_of,
    fingerprint,
    with_actions,
)
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, read_json, read_parquet, write_json, write_parquet
from agent_retraining.window import Window


def feature_columns(spec: AgentSpec) -> list[str]:
    """Names of the model's input columns, in order."""
    return columns(encoding_of(spec))


def encoding_id(spec: AgentSpec) -> str:
    """Fingerprint of the spec's encoding: a model is only usable with the encoding it was trained on."""
    return fingerprint(encoding_of(spec))


def encodes_like(entry: dict, spec: AgentSpec) -> bool:
    """Whether a model (a manifest entry) was trained with the spec's encoding: the same columns (`encoding_id`)
    and, where the entry carries them (schema_version 2 on), the same vocabularies and ranges: a changed range
    keeps every column but moves every scaled value."""
    encoding = encoding_of(spec)
    return entry.get("encoding_id") == fingerprint(encoding) and entry.get("encoding", encoding) == encoding


def encode_context(spec: AgentSpec, table: pa.Table) -> np.ndarray:
    """Context block of the matrix for every row of a table of log rows."""
    return context_block(encoding_of(spec), table)


def action_indices(spec: AgentSpec, table: pa.Table) -> np.ndarray:
    """The position of each row's logged action in the spec (the data gate has refused unknown actions)."""
    positions = pc.index_in(table.column("action"), value_set=pa.array(spec.actions))
    if positions.null_count:
        raise ValueError(f"{positions.null_count} rows log an action that is not in the spec")
    return positions.to_numpy().astype(np.int64)


def encode(spec: AgentSpec, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Model input for the logged (context, action) of each row, and the reward label."""
    encoding = encoding_of(spec)
    matrix = with_actions(encoding, context_block(encoding, table), action_indices(spec, table))
    return matrix, table.column("reward").to_numpy().astype(np.float32)


def sample_rows(rows: pa.Table | pa.Array, limit: int | None, seed: int) -> pa.Table | pa.Array:
    """A uniform sample of at most `limit` rows, in their original order; the same seed gives the same rows."""
    positions = _sample_positions([len(rows)], limit, seed)[0]
    return rows if positions is None else rows.take(pa.array(positions))


def _time_ordered(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending"), ("event_id", "ascending")]))


def _sample_positions(counts: list[int], limit: int | None, seed: int) -> list[np.ndarray | None]:
    """For each day, the positions of its rows in a uniform sample of at most `limit` rows of all the days
    (None: every row); the same seed and counts give the same rows."""
    total = sum(counts)
    if limit is None or total <= limit:
        return [None] * len(counts)
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
    bounds = np.cumsum([0, *counts])
    return [chosen[(chosen >= lo) & (chosen < hi)] - lo for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def _read_days(s3, buckets: Buckets, spec: AgentSpec, days: list[dict], limit: int | None) -> pa.Table:
    """The rows of the given validated days, sampled down to `limit`, in time order; one day in memory at a time."""
    parts = [empty_rows(spec, date.fromisoformat(days[0]["day"]))]
    for day, positions in zip(days, _sample_positions([d["rows"] for d in days], limit, spec.training.seed),
                              strict=True):  # fmt: skip
        rows = read_parquet(s3, buckets.artifacts, day["rows_key"])
        parts.append(rows if positions is None else rows.take(pa.array(positions)))
        del rows
    return _time_ordered(pa.concat_tables(parts))


def build_split(s3, buckets: Buckets, spec: AgentSpec, window: Window, run_dir: str) -> dict:
    """Write the run's train and holdout sets from the usable validated days and their description.

    The train set is a uniform sample (at most `max_train_rows`) of the usable days before the holdout,
    drawn day by day; the holdout is every row of the usable held-out days. Both are in time order.
    """
    validation = read_json(s3, buckets.artifacts, run_dir + "validation.json")
    usable = [entry for entry in validation["days"] if entry["usable"]]
    train_days = [e for e in usable if date.fromisoformat(e["day"]) < window.holdout_first]
    holdout_days = [e for e in usable if date.fromisoformat(e["day"]) >= window.holdout_first]
    train_rows_in_window, holdout_rows = (sum(e["rows"] for e in days) for days in (train_days, holdout_days))
    if not train_rows_in_window or not holdout_rows:
        raise ValueError(f"the usable days of {run_dir} leave train={train_rows_in_window}, holdout={holdout_rows} "
                         "rows")  # fmt: skip
    prefix = run_dir + "features/"
    train = _read_days(s3, buckets, spec, train_days, spec.training.max_train_rows)
    write_parquet(s3, buckets.artifacts, prefix + "train.parquet", train)
    train_rows = train.num_rows
    del train
    holdout = _read_days(s3, buckets, spec, holdout_days, None)
    write_parquet(s3, buckets.artifacts, prefix + "holdout.parquet", holdout)
    record = {
        "train_key": prefix + "train.parquet",
        "holdout_key": prefix + "holdout.parquet",
        "train_rows": train_rows,
        "train_rows_in_window": train_rows_in_window,
        "holdout_rows": holdout.num_rows,
        "holdout_first": window.holdout_first.isoformat(),
        "train_days": [e["day"] for e in train_days],
        "holdout_days": [e["day"] for e in holdout_days],
        "left_out_days": validation["left_out"],
        "feature_columns": len(feature_columns(spec)),
        "encoding_id": encoding_id(spec),
    }
    write_json(s3, buckets.artifacts, prefix + "split.json", record)
    return record
