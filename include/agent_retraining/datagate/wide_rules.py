"""The data gate's rules for text and embedding features, judged on the day's Arrow rows before GX sees them: GX has
no rule for a text's length in bytes or a vector's length and norm, and checking them in Arrow costs one pass.

- `text_length`: texts longer than the feature's `max_bytes` are cut there by the featurizer; more than
  `max_truncated_fraction` of them means the agent logs something else than the spec expects (warns by default).
- `embedding_valid`: every embedding logged has exactly `dim` numbers, all finite (a model version that changed
  its encoder, a NaN from a failed call): a day with one wrong vector is refused (blocks by default), since the
  featurizer would have to treat it as missing.
- `embedding_norm`: the share of vectors whose Euclidean norm is outside [min_norm, max_norm] is at most
  `max_off_norm_fraction` (an unnormalized encoder, a zero vector logged for a timeout).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.datagate.rules import EXAMPLES, check, tier_of
from agent_retraining.feature_hashing import byte_lengths
from agent_retraining.spec import AgentSpec, EmbeddingFeature, TextFeature

REJECTED_ROWS_KEPT = 10_000  # failing rows of one rule named in the quarantine's rejected-rows.jsonl


def _failing(table: pa.Table, failing: np.ndarray, shown) -> dict:
    """The failing rows' object key, line and value (`shown(row)`): the first few as the check's examples, up to
    REJECTED_ROWS_KEPT of them for the quarantine when the rule blocks."""
    rows = [int(r) for r in np.flatnonzero(failing)[:REJECTED_ROWS_KEPT]]
    keys, lines = table.column("source_key"), table.column("source_line")
    located = [{"key": keys[r].as_py(), "line": lines[r].as_py(), "value": shown(r)} for r in rows]
    return {"examples": located[:EXAMPLES], "rejected": located}


def _share_rule(spec, table, kind: str, column: str, failing: np.ndarray, limit: float, what: str, shown) -> dict:
    logged = table.num_rows
    share = float(failing.sum() / logged) if logged else 0.0
    message = f"field '{column}': {int(failing.sum())} of {logged} rows {what} ({share:.2%}, limit {limit:.2%})"
    return check(f"{kind}:{column}", tier_of(spec, kind, column), share <= limit, message, column=column,
                 observed=share, **_failing(table, failing, shown))  # fmt: skip


def text_checks(spec: AgentSpec, name: str, feature: TextFeature, table: pa.Table) -> list[dict]:
    column = context_column(name)
    lengths = byte_lengths(table.column(column))
    failing = lengths > feature.max_bytes
    what = f"longer than max_bytes {feature.max_bytes} (cut there)"
    return [_share_rule(spec, table, "text_length", column, failing, feature.max_truncated_fraction, what,
                        lambda row: f"{lengths[row]:,} bytes")]  # fmt: skip


def embedding_checks(spec: AgentSpec, name: str, feature: EmbeddingFeature, table: pa.Table) -> list[dict]:
    column = context_column(name)
    lists = table.column(column).combine_chunks()
    present = lists.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    values = pc.list_flatten(lists).to_numpy(zero_copy_only=False)  # null items are NaN
    owner = np.repeat(np.arange(len(lists)), np.where(present, lengths, 0))
    finite = np.ones(len(lists), bool)
    np.logical_and.at(finite, owner, np.isfinite(values))
    squares = np.bincount(owner, weights=np.where(np.isfinite(values), values, 0.0) ** 2, minlength=len(lists))
    norms = np.sqrt(squares)
    wrong = present & ((lengths != feature.dim) | ~finite)
    message = (f"field '{column}': {int(wrong.sum())} of {table.num_rows} rows are not {feature.dim} finite numbers"
               if wrong.any() else f"field '{column}': every embedding has {feature.dim} finite numbers")  # fmt: skip
    located = _failing(table, wrong, lambda row: f"{lengths[row]} values" + ("" if finite[row] else ", not all finite"))
    valid = check(f"embedding_valid:{column}", tier_of(spec, "embedding_valid", column), not wrong.any(), message,
                  column=column, observed=int(wrong.sum()), **located)  # fmt: skip
    usable = present & ~wrong
    off_norm = usable & ((norms < feature.min_norm) | (norms > feature.max_norm))
    what = f"with a norm outside [{feature.min_norm:g}, {feature.max_norm:g}]"
    norm = _share_rule(spec, table, "embedding_norm", column, off_norm, feature.max_off_norm_fraction, what,
                       lambda row: f"norm {norms[row]:.4g}")  # fmt: skip
    return [valid, norm]


def wide_feature_checks(spec: AgentSpec, table: pa.Table) -> list[dict]:
    """Every text and embedding rule of one day's rows."""
    checks = []
    for name, feature in spec.context.items():
        if isinstance(feature, TextFeature):
            checks += text_checks(spec, name, feature, table)
        elif isinstance(feature, EmbeddingFeature):
            checks += embedding_checks(spec, name, feature, table)
    return checks
