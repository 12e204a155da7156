"""The one stable hash of a text in the contract: the first 8 bytes of the sha256 of its UTF-8, as an unsigned
big-endian integer. Canary routing compares it with share x 2^64; an open category takes it modulo its number of
buckets. Any language has sha256, so a port computes exactly the same (docs/serving-contract.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def buckets_of(column: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The bucket of each text value of a column, -1 for nulls. Each distinct value is hashed once: a day of a
    million events holds far fewer distinct product ids."""
    distinct = pc.unique(column).drop_null()
    of_distinct = np.array([hash64(v) % buckets for v in distinct.to_pylist()] + [-1], dtype=np.int64)
    positions = pc.fill_null(pc.index_in(column, value_set=distinct), len(distinct)).to_numpy()
    return of_distinct[positions]
