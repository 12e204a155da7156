'use strict';
/**
 * Hashed features of text and fixed sketches of wide features, exactly as include/agent_retraining/feature_hashing.py
 * computes them (docs/serving-contract.md, "Text" and "Embeddings"): bytes and 32-bit integers, and sums in a fixed
 * order, so that every value is the same bit for bit.
 */
const SEPARATOR = 0x20;
const SKETCH_SEED = 0x2545f491;

/** A byte as the featurizer reads it: A-Z lowered, a-z and 0-9 kept, other ASCII a separator, 0x80 and up kept. */
function normalizedByte(b) {
  if (b >= 65 && b <= 90) return b + 32;
  if ((b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b >= 128) return b;
  return SEPARATOR;
}

/** murmur3's 32-bit finalizer. */
function fmix32(value) {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Where input `index` goes in a sketch of `crossDims` columns, and with which sign. */
function sketchSlot(index, crossDims) {
  const h = fmix32((index ^ SKETCH_SEED) >>> 0);
  return { column: h % crossDims, sign: h >>> 31 ? -1 : 1 };
}

/** Trigram counts of a text's first `maxBytes` UTF-8 bytes, per bucket (fmix32 of the trigram's code mod buckets). */
function textCounts(text, maxBytes, buckets) {
  const bytes = Buffer.from(text, 'utf8').subarray(0, maxBytes);
  const normalized = [SEPARATOR];
  for (const b of bytes) {
    const n = normalizedByte(b);
    if (n !== SEPARATOR || normalized[normalized.length - 1] !== SEPARATOR) normalized.push(n);
  }
  if (normalized[normalized.length - 1] !== SEPARATOR) normalized.push(SEPARATOR);
  const counts = new Array(buckets).fill(0);
  for (let k = 0; k + 2 < normalized.length; k += 1) {
    const code = (normalized[k] << 16) | (normalized[k + 1] << 8) | normalized[k + 2];
    counts[fmix32(code) % buckets] += 1;
  }
  return counts;
}

/**
 * A text's crossed part (its sketch, then 0 for "not missing") and wide part (its unit-length counts), as float64
 * values that a Float32Array rounds exactly as numpy's astype(float32) does.
 */
function textParts(text, feature) {
  const counts = textCounts(text, feature.max_bytes, feature.buckets);
  const sketch = new Array(feature.cross_dims).fill(0);
  let squares = 0;
  counts.forEach((count, bucket) => {
    const { column, sign } = sketchSlot(bucket, feature.cross_dims);
    sketch[column] += sign * count; // whole numbers: exact in any order
    squares += count * count;
  });
  const norm = Math.sqrt(squares) || 1;
  return { crossed: [...sketch.map((s) => s / norm), 0], wide: counts.map((c) => c / norm) };
}

/** An embedding's crossed part (its sketch summed in index order, then 0) and wide part (its values). */
function embeddingParts(values, feature) {
  const sketch = new Array(feature.cross_dims).fill(0);
  values.forEach((value, index) => {
    const { column, sign } = sketchSlot(index, feature.cross_dims);
    sketch[column] += sign * value;
  });
  return { crossed: [...sketch, 0], wide: values };
}

module.exports = { embeddingParts, fmix32, sketchSlot, textCounts, textParts };
