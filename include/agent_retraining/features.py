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

from agent_retraining.contract import context_column, run_prefix
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
            values = column.to_numpy(zero_copy_only=False)
            onehot = np.zeros((len(values), len(feature.vocabulary) + 1), dtype=np.float32)
            index = {value: i for i, value in enumerate(feature.vocabulary)}
            positions = np.fromiter(
                (index.get(v, len(feature.vocabulary)) for v in values), dtype=np.int64, count=len(values)
            )
            onehot[np.arange(len(values)), positions] = 1.0
            blocks.append(onehot)
        else:
            missing = column.is_null().to_numpy(zero_copy_only=False)
            raw = pc.cast(column.fill_null(False if feature.type == "bool" else 0), pa.float64()).to_numpy()
            if isinstance(feature, NumericFeature):
                raw = np.clip((raw - feature.min) / (feature.max - feature.min), 0.0, 1.0)
            blocks.append(np.column_stack([np.where(missing, 0.0, raw), missing]).astype(np.float32))
    return np.hstack(blocks)


def with_actions(spec: AgentSpec, context: np.ndarray, action_index: np.ndarray) -> np.ndarray:
    """Full model input for the given action of each row."""
    onehot = np.zeros((len(context), len(spec.actions)), dtype=np.float32)
    onehot[np.arange(len(context)), action_index] = 1.0
    crossed = (onehot[:, :, None] * context[:, None, :]).reshape(len(context), -1)
    return np.hstack([context, onehot, crossed])


def action_indices(spec: AgentSpec, table: pa.Table) -> np.ndarray:
    lookup = {a: i for i, a in enumerate(spec.actions)}
    return np.array([lookup[a] for a in table.column("action").to_pylist()], dtype=np.int64)


def encode(spec: AgentSpec, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Model input for the logged (context, action) of each row, and the reward label."""
    matrix = with_actions(spec, encode_context(spec, table), action_indices(spec, table))
    return matrix, table.column("reward").to_numpy().astype(np.float32)


def split_by_time(table: pa.Table, window: Window) -> tuple[pa.Table, pa.Table]:
    """Train on the older days, hold out the newest: the way the model will be used."""
    is_holdout = pc.greater_equal(table.column("dt"), pa.scalar(window.holdout_first, pa.date32()))
    return table.filter(pc.invert(is_holdout)), table.filter(is_holdout)


def build_split(s3, buckets: Buckets, spec: AgentSpec, window: Window, snapshot_key: str) -> dict:
    """Write the train and holdout sets (snapshot rows, ordered) and their description."""
    table = read_parquet(s3, buckets.artifacts, snapshot_key).sort_by([("ts", "ascending"), ("event_id", "ascending")])
    train, holdout = split_by_time(table, window)
    if train.num_rows == 0 or holdout.num_rows == 0:
        raise ValueError(f"time split of {snapshot_key} left train={train.num_rows}, holdout={holdout.num_rows} rows")
    prefix = run_prefix(spec.agent_id, window.last) + "features/"
    write_parquet(s3, buckets.artifacts, prefix + "train.parquet", train)
    write_parquet(s3, buckets.artifacts, prefix + "holdout.parquet", holdout)
    record = {
        "train_key": prefix + "train.parquet",
        "holdout_key": prefix + "holdout.parquet",
        "train_rows": train.num_rows,
        "holdout_rows": holdout.num_rows,
        "holdout_first": window.holdout_first.isoformat(),
        "feature_columns": len(feature_columns(spec)),
        "encoding_id": encoding_id(spec),
    }
    write_json(s3, buckets.artifacts, prefix + "split.json", record)
    return record
