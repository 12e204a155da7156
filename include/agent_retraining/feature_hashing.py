"""Hashed features of text and fixed sketches of wide features: the arithmetic behind the `text` and `embedding`
feature types, defined on bytes and 32-bit integers so that a port in any language computes the same values
bit for bit (docs/serving-contract.md, "Text" and "Embeddings").

Text is featurized without fitted state (nothing to pickle, nothing to refit when words change): its UTF-8 bytes,
cut at `max_bytes`, ASCII letters lowered, every other ASCII byte a separator, runs of separators one, and one
separator at each end; every window of three bytes is a trigram (letter trigrams, as DSSM hashes words, so typos
and unseen words still share most of their features), hashed into `buckets` by murmur3's 32-bit finalizer.
Lowercasing and separators are ASCII-only on purpose: Unicode case and word rules differ between Python, JavaScript
and Go, bytes do not. The counts are scaled to unit length, so a long message weighs what a short one does.

A sketch folds a wide vector (a text's bucket counts, an embedding's values) into `cross_dims` columns: column t is
the signed sum of the inputs whose index hashes to t (a count sketch). The model crosses only these few columns with
the actions, so a linear model still learns which action suits which message without rows x actions x buckets
columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEPARATOR = 0x20
SKETCH_SEED = 0x2545F491  # a sketch hashes index ^ seed for its column and sign
PROJECTION_SEEDS = (0x9E3779B9, 0x7F4A7C15, 0x94D049BB, 0xBF58476D)  # the drift summary's random directions
ROWS_PER_PASS = 8192  # texts hashed at once: their counts are rows x buckets integers
_MASK = np.uint64(0xFFFFFFFF)
# A byte as the featurizer reads it: A-Z lowered, a-z and 0-9 kept, every other ASCII byte a separator; the bytes
# of multi-byte UTF-8 characters (0x80 and up) kept as they are.
_NORMALIZED = np.array(
    [b + 32 if 65 <= b <= 90 else b if (97 <= b <= 122 or 48 <= b <= 57 or b >= 128) else SEPARATOR
     for b in range(256)], dtype=np.uint8)  # fmt: skip


def fmix32(values: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finalizer, on unsigned 32-bit values held in uint64 (products taken modulo 2^32)."""
    h = values.astype(np.uint64) & _MASK
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    h ^= h >> np.uint64(16)
    return h


def sketch_map(width: int, cross_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `width` inputs, its sketch column (h mod cross_dims) and sign (-1 when h's top bit is set),
    h = fmix32(index ^ SKETCH_SEED)."""
    h = fmix32(np.arange(width, dtype=np.uint64) ^ np.uint64(SKETCH_SEED))
    return (h % np.uint64(cross_dims)).astype(np.int64), np.where(h >> np.uint64(31), -1, 1).astype(np.int64)


def projection_signs(width: int) -> np.ndarray:
    """Random +1/-1 directions (one per PROJECTION_SEEDS, each `width` long) along which the data gate watches an
    embedding's drift."""
    index = np.arange(width, dtype=np.uint64)
    return np.stack([np.where(fmix32(index ^ np.uint64(seed)) >> np.uint64(31), -1.0, 1.0)
                     for seed in PROJECTION_SEEDS])  # fmt: skip


def _binary(texts: pa.Array | pa.ChunkedArray) -> pa.BinaryArray:
    column = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    return pc.fill_null(column.cast(pa.binary()), b"")


def byte_lengths(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each text's length in UTF-8 bytes (0 for null)."""
    return pc.binary_length(_binary(texts)).to_numpy().astype(np.int64)


def trigrams(texts: pa.Array, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Every trigram of the texts as (row, fmix32 of its 24-bit code b0<<16 | b1<<8 | b2)."""
    column = _binary(texts)
    offsets = np.frombuffer(column.buffers()[1], np.int32, len(column) + 1, column.offset * 4).astype(np.int64)
    data = np.frombuffer(column.buffers()[2] or b"", np.uint8)
    lengths = np.minimum(np.diff(offsets), max_bytes)
    rows = len(column)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    kept = _NORMALIZED[data[np.repeat(offsets[:-1], lengths) + within]]
    padded = np.full(int(lengths.sum()) + 2 * rows, SEPARATOR, np.uint8)  # a separator before and after each text
    padded[np.repeat(np.cumsum(lengths + 2) - lengths - 1, lengths) + within] = kept
    row_of = np.repeat(np.arange(rows), lengths + 2)
    separator = padded == SEPARATOR
    repeated = np.zeros(len(padded), bool)
    repeated[1:] = separator[1:] & separator[:-1] & (row_of[1:] == row_of[:-1])
    padded, row_of = padded[~repeated], row_of[~repeated]
    starts = np.flatnonzero(row_of[:-2] == row_of[2:]) if len(padded) > 2 else np.zeros(0, np.int64)
    codes = (padded[starts].astype(np.uint64) << np.uint64(16)) | (padded[starts + 1].astype(np.uint64) << np.uint64(8))
    return row_of[starts], fmix32(codes | padded[starts + 2].astype(np.uint64))


def text_counts(texts: pa.Array, max_bytes: int, buckets: int) -> np.ndarray:
    """Trigram counts per bucket (h mod buckets) of each text: shape (rows, buckets), int64."""
    rows, hashes = trigrams(texts, max_bytes)
    cells = rows * buckets + (hashes % np.uint64(buckets)).astype(np.int64)
    return np.bincount(cells, minlength=len(texts) * buckets).reshape(len(texts), buckets)


def unit_scaled(counts: np.ndarray, sketched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and their sketch divided by the counts' Euclidean length (float64, then float32; zero stays zero).
    The sum of squares of whole numbers is exact, so any port gets the same divisor."""
    norm = np.sqrt((counts * counts).sum(axis=1).astype(np.float64))[:, None]
    safe = np.where(norm > 0, norm, 1.0)
    return (counts / safe).astype(np.float32), (sketched / safe).astype(np.float32)


def text_directions(texts: pa.Array, max_bytes: int, buckets: int) -> np.ndarray:
    """Each text's unit-length counts along the PROJECTION_SEEDS directions (rows x directions), ROWS_PER_PASS
    texts at a time: what the data gate's drift watches of what users write."""
    signs = projection_signs(buckets)
    directions = np.zeros((len(texts), len(signs)))
    for start in range(0, len(texts), ROWS_PER_PASS):
        counts = text_counts(texts.slice(start, ROWS_PER_PASS), max_bytes, buckets)
        norms = np.sqrt((counts * counts).sum(axis=1))[:, None]
        directions[start : start + len(counts)] = (counts @ signs.T) / np.where(norms > 0, norms, 1.0)
    return directions


def embedding_directions(vectors: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Each embedding's cosine with the PROJECTION_SEEDS directions times sqrt(dim) (rows x directions), and which
    rows have no usable vector (missing, another length, not finite, or zero), ROWS_PER_PASS rows at a time."""
    signs = projection_signs(dim)
    directions = np.zeros((len(vectors), len(signs)))
    unusable = np.ones(len(vectors), bool)
    for start in range(0, len(vectors), ROWS_PER_PASS):
        values, usable = embedding_values(vectors.slice(start, ROWS_PER_PASS), dim)
        norms = np.linalg.norm(values, axis=1)
        rows = slice(start, start + len(values))
        directions[rows] = (values @ signs.T) / np.where(norms > 0, norms, 1.0)[:, None]
        unusable[rows] = ~usable | (norms == 0)
    return directions, unusable


def count_sketch(counts: np.ndarray, cross_dims: int) -> np.ndarray:
    """The sketch of whole-number inputs (exact in integers, whatever the order of the sums)."""
    column, sign = sketch_map(counts.shape[1], cross_dims)
    folding = np.zeros((counts.shape[1], cross_dims), np.int64)
    folding[np.arange(counts.shape[1]), column] = sign
    return counts @ folding


def value_sketch(values: np.ndarray, cross_dims: int) -> np.ndarray:
    """The sketch of real inputs, summed in float64 in index order: the order a port must follow to get the same
    roundings."""
    column, sign = sketch_map(values.shape[1], cross_dims)
    sums = np.zeros((len(values), cross_dims))
    for index in range(values.shape[1]):
        sums[:, column[index]] += sign[index] * values[:, index]
    return sums


def embedding_values(column: pa.Array | pa.ChunkedArray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """An embedding column as (rows, dim) float64 and whether each row holds a usable vector: not null, `dim` values,
    all finite. Anything else is treated as missing (the data gate refuses such a day unless told to warn)."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(lists), -1).to_numpy()
    usable = lengths == dim
    values = np.zeros((len(lists), dim))
    if usable.any():
        values[usable] = lists.filter(pa.array(usable)).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    usable &= np.isfinite(values).all(axis=1)
    values[~usable] = 0.0
    return values, usable
