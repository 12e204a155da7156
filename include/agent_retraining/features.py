"""Features: a fixed encoding of (context, action) derived from the spec alone.

The encoding has no fitted state (vocabularies and ranges come from the spec),
so training, evaluation and the agent at serving time compute exactly the same
matrix from the same row, and a model artifact needs nothing else to be used.
Every context column is also crossed with the action so that even the linear
candidate can learn which action suits which context.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.snapshot import Window
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature
from agent_retraining.storage import Buckets, read_parquet, write_json, write_parquet

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
    """Context block of the matrix for every row of a snapshot-shaped table."""
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


def split_by_time(table: pa.Table, window: Window) -> tuple[pa.Array, pa.Array]:
    """Row positions to train on (the older days) and to hold out (the newest), each in time order.

    Positions rather than tables, so the window is copied once, into the two sets, however big it is.
    """
    order = pc.sort_indices(table, sort_keys=[("ts", "ascending"), ("event_id", "ascending")])
    is_holdout = pc.greater_equal(pc.take(table.column("dt"), order), pa.scalar(window.holdout_first, pa.date32()))
    return pc.filter(order, pc.invert(is_holdout)), pc.filter(order, is_holdout)


def sample_rows(rows: pa.Table | pa.Array, limit: int | None, seed: int) -> pa.Table | pa.Array:
    """A uniform sample of at most `limit` rows, in their original order; the same seed gives the same rows."""
    if limit is None or len(rows) <= limit:
        return rows
    return rows.take(pa.array(np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))))


def build_split(s3, buckets: Buckets, spec: AgentSpec, window: Window, run_dir: str) -> dict:
    """Write the run's train and holdout sets (snapshot rows in time order) and their description."""
    snapshot_key = run_dir + "snapshot.parquet"
    table = read_parquet(s3, buckets.artifacts, snapshot_key)
    train_rows, holdout_rows = split_by_time(table, window)
    if len(train_rows) == 0 or len(holdout_rows) == 0:
        raise ValueError(f"time split of {snapshot_key} left train={len(train_rows)}, holdout={len(holdout_rows)} rows")
    train_rows_in_window = len(train_rows)
    train = table.take(sample_rows(train_rows, spec.training.max_train_rows, spec.training.seed))
    holdout = table.take(holdout_rows)
    del table
    prefix = run_dir + "features/"
    write_parquet(s3, buckets.artifacts, prefix + "train.parquet", train)
    write_parquet(s3, buckets.artifacts, prefix + "holdout.parquet", holdout)
    record = {
        "train_key": prefix + "train.parquet",
        "holdout_key": prefix + "holdout.parquet",
        "train_rows": train.num_rows,
        "train_rows_in_window": train_rows_in_window,
        "holdout_rows": holdout.num_rows,
        "holdout_first": window.holdout_first.isoformat(),
        "feature_columns": len(feature_columns(spec)),
        "encoding_id": encoding_id(spec),
    }
    write_json(s3, buckets.artifacts, prefix + "split.json", record)
    return record
