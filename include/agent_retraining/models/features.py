"""Features: a fixed encoding of (context, action) derived from the spec alone.

The encoding has no fitted state (vocabularies and ranges come from the spec),
so training, evaluation and the agent at serving time compute exactly the same
matrix from the same row, and a model artifact needs nothing else to be used.
Every context column is also crossed with the action so that even the linear
candidate can learn which action suits which context.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.datagate.reading import empty_rows
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature
from agent_retraining.storage import Buckets, read_json, read_parquet, write_json, write_parquet
from agent_retraining.window import Window

OTHER = "__other__"  # a category value outside the vocabulary, or null


def context_columns(spec: AgentSpec) -> list[str]:
    names = []
    for name, feature in spec.context.items():
        if isinstance(feature, CategoryFeature):
            names.extend(f"{name}={value}" for value in [*feature.vocabulary, OTHER])
        else:
            names.extend([name, f"{name}__missing"])
    return names


def feature_columns(spec: AgentSpec) -> list[str]:
    """Names of the model's input columns, in order."""
    base = context_columns(spec)
    actions = [f"action={a}" for a in spec.actions]
    return base + actions + [f"{c}*{a}" for a in actions for c in base]


def encoding_id(spec: AgentSpec) -> str:
    """Fingerprint of the encoding: a model is only usable with the encoding it was trained on."""
    return hashlib.sha256("\n".join(feature_columns(spec)).encode()).hexdigest()[:16]


def encode_context(spec: AgentSpec, table: pa.Table) -> np.ndarray:
    """Context block of the matrix for every row of a table of log rows."""
    blocks = []
    for name, feature in spec.context.items():
        column = table.column(context_column(name))
        if isinstance(feature, CategoryFeature):
            vocabulary = pa.array(feature.vocabulary, column.type)
            positions = pc.fill_null(pc.index_in(column, value_set=vocabulary), len(feature.vocabulary)).to_numpy()
            onehot = np.zeros((len(positions), len(feature.vocabulary) + 1), dtype=np.float32)
            onehot[np.arange(len(positions)), positions] = 1.0
            blocks.append(onehot)
        else:
            missing = column.is_null().to_numpy(zero_copy_only=False)
            raw = pc.cast(column.fill_null(False if feature.type == "bool" else 0), pa.float64()).to_numpy()
            if isinstance(feature, NumericFeature):
                raw = np.clip((raw - feature.min) / (feature.max - feature.min), 0.0, 1.0)
            blocks.append(np.column_stack([np.where(missing, 0.0, raw), missing]).astype(np.float32))
    return np.hstack(blocks)


def with_actions(spec: AgentSpec, context: np.ndarray, action_index: np.ndarray) -> np.ndarray:
    """Full model input for the given action of each row, written into one allocation (it is the biggest
    array of a run: rows x (context + actions x (context + 1)))."""
    rows, width, actions = len(context), context.shape[1], len(spec.actions)
    matrix = np.zeros((rows, width + actions + actions * width), dtype=np.float32)
    every_row = np.arange(rows)
    matrix[:, :width] = context
    matrix[every_row, width + action_index] = 1.0
    matrix[:, width + actions :].reshape(rows, actions, width)[every_row, action_index] = context
    return matrix


def action_indices(spec: AgentSpec, table: pa.Table) -> np.ndarray:
    """The position of each row's logged action in the spec (the data gate has refused unknown actions)."""
    positions = pc.index_in(table.column("action"), value_set=pa.array(spec.actions))
    if positions.null_count:
        raise ValueError(f"{positions.null_count} rows log an action that is not in the spec")
    return positions.to_numpy().astype(np.int64)


def encode(spec: AgentSpec, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Model input for the logged (context, action) of each row, and the reward label."""
    matrix = with_actions(spec, encode_context(spec, table), action_indices(spec, table))
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
