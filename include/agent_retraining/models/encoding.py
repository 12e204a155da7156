"""The feature encoding: how a context and an action become a model's input row, defined by a small description
that every manifest entry carries (its `encoding`), so an agent in any language needs the manifest alone.

The encoding has no fitted state (vocabularies and ranges come from the spec, text is hashed), so training,
evaluation and the agent at serving time compute exactly the same matrix from the same context. The context block
is the crossed part (every tabular column, and a small sketch of each text and embedding) followed by the wide part
(a text's hashed trigrams, an embedding's values). The crossed part is also crossed with the action, so that even
the linear candidate can learn which action suits which context; the wide part is not, or a 384-value embedding
would cost 384 columns per action. Actions with features (a handler's family, its cost) add those features, and
the crossed part crossed with each of them, so that what is learned of one action carries to those that share a
value, and to a new action before any log holds it. The algorithm, for a port in another language, is
docs/serving-contract.md; `encoding_id` fingerprints its column names, so a model is only ever used with the
encoding it was trained on.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.datagate.reading import FEATURE_TYPES, context_value_fault
from agent_retraining.feature_hashing import (
    ROWS_PER_PASS,
    count_sketch,
    embedding_values,
    text_counts,
    unit_scaled,
    value_sketch,
)
from agent_retraining.hashing import buckets_of
from agent_retraining.spec import (
    AgentSpec,
    CategoryFeature,
    EmbeddingFeature,
    NumericFeature,
    OpenCategoryFeature,
    TextFeature,
)

OTHER = "__other__"  # a category value outside the vocabulary, or null
CROSS_DIMS = 32  # sketch columns of a text or an embedding, crossed with each action
WIDE = ("text", "embedding")  # feature types with a wide part


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
        elif isinstance(feature, TextFeature):
            described |= {"buckets": feature.buckets, "max_bytes": feature.max_bytes, "cross_dims": CROSS_DIMS}
        elif isinstance(feature, EmbeddingFeature):
            described |= {"dim": feature.dim, "cross_dims": CROSS_DIMS}
        features.append(described)
    encoding = {"context": features, "actions": list(spec.actions)}
    if spec.action_features:  # absent otherwise, so encodings from before action features stay equal
        encoding["action_features"] = [
            {"name": name, **feature.model_dump(exclude={"values"}, exclude_none=True),
             "values": [feature.values[action] for action in spec.actions]}
            for name, feature in spec.action_features.items()
        ]  # fmt: skip
    return encoding


def crossed_columns(encoding: dict) -> list[str]:
    """The context block's first part, the one crossed with each action."""
    names = []
    for feature in encoding["context"]:
        name = feature["name"]
        if feature["type"] == "category":
            names.extend(f"{name}={value}" for value in [*feature["vocabulary"], OTHER])
        elif feature["type"] == "open_category":
            names.extend([*(f"{name}#{bucket}" for bucket in range(feature["buckets"])), f"{name}__missing"])
        elif feature["type"] in WIDE:
            names.extend([*(f"{name}~{column}" for column in range(feature["cross_dims"])), f"{name}__missing"])
        else:
            names.extend([name, f"{name}__missing"])
    return names


def context_columns(encoding: dict) -> list[str]:
    """The context block: the crossed part, then the wide part (a text's buckets, an embedding's values)."""
    wide = []
    for feature in encoding["context"]:
        if feature["type"] == "text":
            wide.extend(f"{feature['name']}#{bucket}" for bucket in range(feature["buckets"]))
        elif feature["type"] == "embedding":
            wide.extend(f"{feature['name']}[{index}]" for index in range(feature["dim"]))
    return crossed_columns(encoding) + wide


def action_features(encoding: dict) -> tuple[list[str], np.ndarray]:
    """The action-feature columns' names and every action's values (actions x columns, float32): a category's
    `action.<name>=<value>` one-hot per vocabulary value, a number's `action.<name>` scaled to [0, 1] by its min
    and max (clipped), a bool's `action.<name>` 1 or 0."""
    names, blocks = [], [np.zeros((len(encoding["actions"]), 0))]
    for feature in encoding.get("action_features", []):
        name, values = f"action.{feature['name']}", feature["values"]
        if feature["type"] == "category":
            names.extend(f"{name}={value}" for value in feature["vocabulary"])
            blocks.append(np.array([[float(v == value) for value in feature["vocabulary"]] for v in values]))
        else:
            names.append(name)
            raw = np.array(values, dtype=np.float64)
            if feature["type"] != "bool":
                raw = np.clip((raw - feature["min"]) / (feature["max"] - feature["min"]), 0.0, 1.0)
            blocks.append(raw[:, None])
    return names, np.hstack(blocks).astype(np.float32)


def columns(encoding: dict) -> list[str]:
    """Names of the model's input columns, in order: context block, action one-hot, action features, crossed part
    x each action, crossed part x each action-feature column."""
    actions = [f"action={a}" for a in encoding["actions"]]
    crossed = crossed_columns(encoding)
    features, _ = action_features(encoding)
    return (context_columns(encoding) + actions + features + [f"{c}*{a}" for a in actions for c in crossed]
            + [f"{c}*{f}" for f in features for c in crossed])  # fmt: skip


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
        if not problem and kind == "embedding":
            problem = next((f"must hold {feature['dim']} numbers, got {len(v)}" for v in values
                            if v is not None and len(v) != feature["dim"]), None)  # fmt: skip
        if problem:
            raise ValueError(f"context feature '{name}' {problem}")
        arrays[context_column(name)] = pa.array(values, FEATURE_TYPES[kind])
    return pa.table(arrays)


def context_block(encoding: dict, table: pa.Table) -> np.ndarray:
    """Context block of the matrix for every row of a table with one column per feature (`ctx_<name>`)."""
    crossed, wide = [np.zeros((table.num_rows, 0), dtype=np.float32)], []
    for feature in encoding["context"]:
        column = table.column(context_column(feature["name"]))
        if feature["type"] == "category":
            vocabulary = pa.array(feature["vocabulary"], column.type)
            positions = pc.fill_null(pc.index_in(column, value_set=vocabulary), len(vocabulary)).to_numpy()
            crossed.append(_onehot(positions, len(vocabulary) + 1))
        elif feature["type"] == "open_category":  # the value's bucket, or the last column for a null
            positions = buckets_of(column, feature["buckets"])
            crossed.append(_onehot(np.where(positions < 0, feature["buckets"], positions), feature["buckets"] + 1))
        elif feature["type"] == "text":
            sketch, counts = _text_parts(feature, column)
            crossed.append(sketch)
            wide.append(counts)
        elif feature["type"] == "embedding":
            sketch, values = _embedding_parts(feature, column)
            crossed.append(sketch)
            wide.append(values)
        else:
            missing = column.is_null().to_numpy(zero_copy_only=False)
            raw = pc.cast(column.fill_null(False if feature["type"] == "bool" else 0), pa.float64()).to_numpy()
            if feature["type"] != "bool":
                raw = np.clip((raw - feature["min"]) / (feature["max"] - feature["min"]), 0.0, 1.0)
            crossed.append(np.column_stack([np.where(missing, 0.0, raw), missing]).astype(np.float32))
    return np.hstack(crossed + wide)


def _onehot(positions: np.ndarray, width: int) -> np.ndarray:
    onehot = np.zeros((len(positions), width), dtype=np.float32)
    onehot[np.arange(len(positions)), positions] = 1.0
    return onehot


def _text_parts(feature: dict, column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A text column's sketch and missing flag (crossed part) and its unit-length trigram counts (wide part),
    hashed ROWS_PER_PASS texts at a time: the integer counts of all rows at once would be rows x buckets x 8 bytes."""
    texts = column.combine_chunks()
    sketch = np.zeros((len(texts), feature["cross_dims"] + 1), dtype=np.float32)
    counts = np.zeros((len(texts), feature["buckets"]), dtype=np.float32)
    for start in range(0, len(texts), ROWS_PER_PASS):
        part = texts.slice(start, ROWS_PER_PASS)
        whole = text_counts(part, feature["max_bytes"], feature["buckets"])
        scaled, folded = unit_scaled(whole, count_sketch(whole, feature["cross_dims"]))
        counts[start : start + len(part)] = scaled
        sketch[start : start + len(part), :-1] = folded
    sketch[:, -1] = texts.is_null().to_numpy(zero_copy_only=False)
    return sketch, counts


def _embedding_parts(feature: dict, column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """An embedding column's sketch and missing flag (crossed part) and its values (wide part), ROWS_PER_PASS rows
    at a time: the float64 values of every row at once would be twice the float32 block."""
    vectors = column.combine_chunks()
    sketch = np.zeros((len(vectors), feature["cross_dims"] + 1), dtype=np.float32)
    values = np.zeros((len(vectors), feature["dim"]), dtype=np.float32)
    for start in range(0, len(vectors), ROWS_PER_PASS):
        part, usable = embedding_values(vectors.slice(start, ROWS_PER_PASS), feature["dim"])
        rows = slice(start, start + len(part))
        sketch[rows, :-1] = value_sketch(part, feature["cross_dims"])
        sketch[rows, -1] = ~usable
        values[rows] = part
    return sketch, values


def crossed_width(encoding: dict) -> int:
    return len(crossed_columns(encoding))


def with_actions(encoding: dict, context: np.ndarray, action_index: np.ndarray) -> np.ndarray:
    """Full model input for the given action of each row, written into one allocation (it is the biggest
    array of a run: rows x (context + (actions + action-feature columns) x (crossed + 1)))."""
    rows, width = context.shape
    action_count, crossed = len(encoding["actions"]), crossed_width(encoding)
    _, values = action_features(encoding)
    chosen = values[action_index]
    features = chosen.shape[1]
    matrix = np.zeros((rows, width + (action_count + features) * (crossed + 1)), dtype=np.float32)
    every_row = np.arange(rows)
    matrix[:, :width] = context
    matrix[every_row, width + action_index] = 1.0
    matrix[:, width + action_count : width + action_count + features] = chosen
    by_action = width + action_count + features
    by_feature = by_action + action_count * crossed
    matrix[:, by_action:by_feature].reshape(rows, action_count, crossed)[every_row, action_index] = context[:, :crossed]
    matrix[:, by_feature:].reshape(rows, features, crossed)[:] = chosen[:, :, None] * context[:, None, :crossed]
    return matrix


SCORE_BLOCK_BYTES = 160 * 2**20  # one action's input matrix while scoring: a block of rows of about this size


def action_scores(encoding: dict, context: np.ndarray, models: list) -> list[np.ndarray]:
    """P(reward = 1) of every action for every row, per model (anything with `predict(matrix)`): shape
    (rows, actions) each.

    Each action's input matrix is built once per block of rows and shared by all models; blocks of about
    SCORE_BLOCK_BYTES keep that matrix small however big the holdout and however wide the encoding is.
    """
    action_count = len(encoding["actions"])
    block_rows = max(1, SCORE_BLOCK_BYTES // (4 * len(columns(encoding))))
    scores = [np.empty((len(context), action_count)) for _ in models]
    for start in range(0, len(context), block_rows):
        block = context[start : start + block_rows]
        for action in range(action_count):
            matrix = with_actions(encoding, block, np.full(len(block), action))
            for model, score in zip(models, scores, strict=True):
                score[start : start + len(block), action] = model.predict(matrix)
    return scores
