"""Drift: a day's feature distributions against the earlier days of the window.

Each validated day stores a small summary of itself (a histogram per context
feature on bins fixed by the spec), so a run compares its
new day with the week before it without reading the week again. The bins depend
only on the spec: every category of the vocabulary plus one for the rest; an
open category's hash buckets;
`FINE_BINS` equal slices of a number's declared range plus one below, one above;
and one for missing values. Texts and embeddings have several: an embedding one
per fixed random direction (feature_hashing.projection_signs), the cosine with
it times the square root of the dimension, on slices of [-4, 4], so a move of
the mean direction or of the spread shows on at least one of them; a text the
same of its unit-length trigram counts (a new mix of intents moves them), and
its length in bytes on slices of `max_bytes`. Fine bins are regrouped into about ten groups of
equal reference mass, plus one below and one above everything the reference
saw, before the PSI is taken, so a skewed feature (most message lengths are
short) is not judged on one crowded bin.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.datagate.rules import check, tier_of
from agent_retraining.feature_hashing import byte_lengths, embedding_directions, text_directions
from agent_retraining.hashing import buckets_of
from agent_retraining.spec import (
    AgentSpec,
    CategoryFeature,
    EmbeddingFeature,
    NumericFeature,
    OpenCategoryFeature,
    TextFeature,
)

FINE_BINS = 100
PSI_GROUPS = 10
PROJECTION_RANGE = 4.0


def _slices(values: np.ndarray, low: float, high: float, missing: np.ndarray) -> tuple[np.ndarray, int]:
    """FINE_BINS slices of [low, high], one bin below and one above, the last for missing values."""
    scaled = (values - low) / (high - low) * FINE_BINS
    codes = np.clip(np.floor(np.nan_to_num(scaled, nan=0.0)), -1, FINE_BINS) + 1
    return np.where(missing, FINE_BINS + 2, codes).astype(np.int64), FINE_BINS + 3


def _wide_histograms(feature: TextFeature | EmbeddingFeature, column: pa.ChunkedArray) -> dict[str, list[int]]:
    """The signals of a text or an embedding, by name, as counts per bin."""
    result = {}
    if isinstance(feature, TextFeature):
        missing = column.is_null().to_numpy(zero_copy_only=False)
        codes, bins = _slices(byte_lengths(column).astype(float), 0.0, feature.max_bytes, missing)
        result["length"] = np.bincount(codes, minlength=bins).tolist()
        directions = text_directions(column.combine_chunks(), feature.max_bytes, feature.buckets)
        missing |= ~directions.any(axis=1)
    else:
        directions, missing = embedding_directions(column.combine_chunks(), feature.dim)
    for index, projected in enumerate(directions.T):
        codes, bins = _slices(projected, -PROJECTION_RANGE, PROJECTION_RANGE, missing)
        result[f"direction_{index}"] = np.bincount(codes, minlength=bins).tolist()
    return result


def _bin_codes(spec: AgentSpec, name: str, column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """A bin number per row and the number of bins; missing values go to the last bin."""
    feature = spec.context[name]
    if isinstance(feature, OpenCategoryFeature):  # its buckets, then missing
        return np.where(column.is_null().to_numpy(zero_copy_only=False), feature.buckets,
                        buckets_of(column, feature.buckets)), feature.buckets + 1  # fmt: skip
    if isinstance(feature, CategoryFeature):
        vocabulary = pa.array(feature.vocabulary, pa.string())
        codes = pc.fill_null(pc.index_in(column, value_set=vocabulary), len(feature.vocabulary)).to_numpy()
        missing = column.is_null().to_numpy(zero_copy_only=False)
        return np.where(missing, len(feature.vocabulary) + 1, codes), len(feature.vocabulary) + 2
    numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN
    if isinstance(feature, NumericFeature):
        return _slices(numbers, feature.min, feature.max, np.isnan(numbers))
    return np.where(np.isnan(numbers), 2, numbers).astype(np.int64), 3  # bool: false, true, missing


def histograms(spec: AgentSpec, table: pa.Table) -> dict[str, list[int] | dict[str, list[int]]]:
    """Counts per bin of every context feature of one day's rows (a text's or embedding's: per signal)."""
    result = {}
    for name, feature in spec.context.items():
        column = table.column(context_column(name))
        if isinstance(feature, TextFeature | EmbeddingFeature):
            result[name] = _wide_histograms(feature, column)
        else:
            codes, bins = _bin_codes(spec, name, column)
            result[name] = np.bincount(codes, minlength=bins).tolist()
    return result


def population_stability(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI between two histograms over the same bins."""
    reference = reference_counts / max(reference_counts.sum(), 1) + 1e-4
    current = current_counts / max(current_counts.sum(), 1) + 1e-4
    return float(np.sum((current - reference) * np.log(current / reference)))


def _equal_mass_groups(reference: np.ndarray) -> tuple[np.ndarray, int]:
    """A group number per fine bin, and the number of groups: neighbouring bins merged until each group holds
    about 1/PSI_GROUPS of the reference, plus a group for the bins below the reference's lowest value, one for
    those above its highest (mass moving there is the plainest shift) and the missing-value bin on its own."""
    values = reference[:-1]
    start_share = (np.cumsum(values) - values) / max(values.sum(), 1)  # reference mass before each bin
    groups = 1 + np.minimum(np.floor(start_share * PSI_GROUPS), PSI_GROUPS - 1)
    groups[np.cumsum(values) == 0] = 0  # below the reference
    groups[start_share >= 1.0] = PSI_GROUPS + 1  # above it
    return np.append(groups, PSI_GROUPS + 2).astype(np.int64), PSI_GROUPS + 3


def feature_psi(spec: AgentSpec, name: str, reference: list[int], current: list[int]) -> float:
    reference_counts, current_counts = np.asarray(reference), np.asarray(current)
    if isinstance(spec.context[name], NumericFeature | EmbeddingFeature | TextFeature):  # ordered bins
        groups, count = _equal_mass_groups(reference_counts)
        reference_counts = np.bincount(groups, weights=reference_counts, minlength=count)
        current_counts = np.bincount(groups, weights=current_counts, minlength=count)
    return population_stability(reference_counts, current_counts)


def drift_checks(spec: AgentSpec, day: dict, earlier: list[dict]) -> list[dict]:
    """The day's drift per feature against the earlier usable days (stored summaries)."""
    if not earlier or not day["rows"]:
        return []
    checks, limit = [], spec.validation.max_drift_psi
    for name in spec.context:
        current = day["histograms"][name]
        signals = current if isinstance(current, dict) else {"": current}
        stored, by_signal = [e["histograms"][name] for e in earlier], {}
        for signal, counts in signals.items():
            reference = np.sum([s[signal] if signal else s for s in stored], axis=0)
            by_signal[signal] = feature_psi(spec, name, reference.tolist(), counts)
        psi = max(by_signal.values())
        column = context_column(name)
        parts = "" if "" in by_signal else " (" + ", ".join(f"{s} {v:.3f}" for s, v in by_signal.items()) + ")"
        message = (f"field '{column}' drift on {day['day']} against the {len(earlier)} earlier usable day(s) of "
                   f"the window: PSI {psi:.3f}{parts}, limit {limit}")  # fmt: skip
        checks.append(check(f"drift:{column}", tier_of(spec, "drift", name), psi <= limit, message, column=column,
                            observed=psi))  # fmt: skip
    return checks
