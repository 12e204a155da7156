"""The feature encoding: how a context and an action become a model's input row, defined by a small description
that every manifest entry carries (its `encoding`), so an agent in any language needs the manifest alone.

The encoding has no fitted state (vocabularies and ranges come from the spec), so training, evaluation and the
agent at serving time compute exactly the same matrix from the same context. Every context column is also crossed
with the action so that even the linear candidate can learn which action suits which context. The algorithm, for a
port in another language, is docs/serving-contract.md; `encoding_id` fingerprints its column names, so a model is
only ever used with the encoding it was trained on.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.datagate.reading import FEATURE_TYPES, context_value_fault
from agent_retraining.hashing import buckets_of
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature, OpenCategoryFeature

OTHER = "__other__"  # a category value outside the vocabulary, or null


def encoding_of(spec: AgentSpec) -> dict:
    """The description of the spec's encoding, as a manifest carries it: features in order, then the actions."""
    features = []
    for name, feature in spec.context.items():
        described = {"name": name, "type": feature.type}
        if isinstance(feature, CategoryFeature):
            described["vocabulary"] = list(feature.vocabulary)
        elif isinstance(feature, OpenCategoryFeature):
            described["buckets"] = feature.buckets
        elif isinstance(feature, NumericFeature):
            described |= {"min": feature.min, "max": feature.max}
        features.append(described)
    return {"context": features, "actions": list(spec.actions)}


def context_columns(encoding: dict) -> list[str]:
    names = []
    for feature in encoding["context"]:
        name = feature["name"]
        if feature["type"] == "category":
            names.extend(f"{name}={value}" for value in [*feature["vocabulary"], OTHER])
        elif feature["type"] == "open_category":
            names.extend([*(f"{name}#{bucket}" for bucket in range(feature["buckets"])), f"{name}__missing"])
        else:
            names.extend([name, f"{name}__missing"])
    return names


def columns(encoding: dict) -> list[str]:
    """Names of the model's input columns, in order: context, action one-hot, context crossed with each action."""
    base = context_columns(encoding)
    actions = [f"action={a}" for a in encoding["actions"]]
    return base + actions + [f"{c}*{a}" for a in actions for c in base]


def fingerprint(encoding: dict) -> str:
    return hashlib.sha256("\n".join(columns(encoding)).encode()).hexdigest()[:16]


def context_table(encoding: dict, contexts: list[dict]) -> pa.Table:
    """Contexts as the agent holds them (feature name -> JSON value; absent means null) as typed columns; a value
    of the wrong type is refused by the feature's name."""
    arrays = {}
    for feature in encoding["context"]:
        name, kind = feature["name"], feature["type"]
        values = [context.get(name) for context in contexts]
        problem = next((p for p in (context_value_fault(v, kind) for v in values) if p), None)
        if problem:
            raise ValueError(f"context feature '{name}' {problem}")
        arrays[context_column(name)] = pa.array(values, FEATURE_TYPES[kind])
    return pa.table(arrays)


def context_block(encoding: dict, table: pa.Table) -> np.ndarray:
    """Context block of the matrix for every row of a table with one column per feature (`ctx_<name>`)."""
    blocks = [np.zeros((table.num_rows, 0), dtype=np.float32)]
    for feature in encoding["context"]:
        column = table.column(context_column(feature["name"]))
        if feature["type"] == "category":
            vocabulary = pa.array(feature["vocabulary"], column.type)
            positions = pc.fill_null(pc.index_in(column, value_set=vocabulary), len(vocabulary)).to_numpy()
            onehot = np.zeros((len(positions), len(vocabulary) + 1), dtype=np.float32)
            onehot[np.arange(len(positions)), positions] = 1.0
            blocks.append(onehot)
        elif feature["type"] == "open_category":  # the value's bucket, or the last column for a null
            positions = buckets_of(column, feature["buckets"])
            onehot = np.zeros((len(positions), feature["buckets"] + 1), dtype=np.float32)
            onehot[np.arange(len(positions)), np.where(positions < 0, feature["buckets"], positions)] = 1.0
            blocks.append(onehot)
        else:
            missing = column.is_null().to_numpy(zero_copy_only=False)
            raw = pc.cast(column.fill_null(False if feature["type"] == "bool" else 0), pa.float64()).to_numpy()
            if feature["type"] != "bool":
                raw = np.clip((raw - feature["min"]) / (feature["max"] - feature["min"]), 0.0, 1.0)
            blocks.append(np.column_stack([np.where(missing, 0.0, raw), missing]).astype(np.float32))
    return np.hstack(blocks)


def with_actions(context: np.ndarray, action_index: np.ndarray, action_count: int) -> np.ndarray:
    """Full model input for the given action of each row, written into one allocation (it is the biggest
    array of a run: rows x (context + actions x (context + 1)))."""
    rows, width = context.shape
    matrix = np.zeros((rows, width + action_count + action_count * width), dtype=np.float32)
    every_row = np.arange(rows)
    matrix[:, :width] = context
    matrix[every_row, width + action_index] = 1.0
    matrix[:, width + action_count :].reshape(rows, action_count, width)[every_row, action_index] = context
    return matrix


SCORE_BLOCK_ROWS = 250_000  # rows scored at once: 155 feature columns make that about 150 MB a matrix


def action_scores(context: np.ndarray, action_count: int, models: list) -> list[np.ndarray]:
    """P(reward = 1) of every action for every row, per model (anything with `predict(matrix)`): shape
    (rows, actions) each.

    Each action's input matrix is built once per block of rows and shared by all models; blocks of
    SCORE_BLOCK_ROWS keep that matrix (rows x every feature column) small however big the holdout is.
    """
    scores = [np.empty((len(context), action_count)) for _ in models]
    for start in range(0, len(context), SCORE_BLOCK_ROWS):
        block = context[start : start + SCORE_BLOCK_ROWS]
        for action in range(action_count):
            matrix = with_actions(block, np.full(len(block), action), action_count)
            for model, score in zip(models, scores, strict=True):
                score[start : start + len(block), action] = model.predict(matrix)
    return scores
