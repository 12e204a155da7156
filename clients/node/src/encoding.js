'use strict';
/**
 * The feature encoding of the serving contract, from the manifest's `encoding` alone.
 *
 * It must give exactly the matrix include/agent_retraining/models/features.py gives in training: a model only
 * means something with the columns it was trained on, which is why `encodingId` fingerprints their names and the
 * client refuses a model whose manifest entry names another fingerprint.
 */
const { createHash } = require('node:crypto');

const { embeddingParts, textParts } = require('./featureHashing');
const { hash64 } = require('./hash');

const OTHER = '__other__'; // a category value outside the vocabulary, or null

const WIDE = ['text', 'embedding'];

/**
 * Names of the crossed part of the context block, in order: a category's `<name>=<value>` per vocabulary value
 * then `<name>=__other__`; an open category's `<name>#<b>` per bucket then `<name>__missing`; a text's or an
 * embedding's sketch `<name>~<t>` then `<name>__missing`; a number's or bool's `<name>`, `<name>__missing`.
 */
function crossedColumns(encoding) {
  const names = [];
  for (const feature of encoding.context) {
    if (feature.type === 'category') {
      for (const value of [...feature.vocabulary, OTHER]) names.push(`${feature.name}=${value}`);
    } else if (feature.type === 'open_category') {
      for (let b = 0; b < feature.buckets; b += 1) names.push(`${feature.name}#${b}`);
      names.push(`${feature.name}__missing`);
    } else if (WIDE.includes(feature.type)) {
      for (let t = 0; t < feature.cross_dims; t += 1) names.push(`${feature.name}~${t}`);
      names.push(`${feature.name}__missing`);
    } else {
      names.push(feature.name, `${feature.name}__missing`);
    }
  }
  return names;
}

/** The context block: the crossed part, then the wide part (a text's `<name>#<b>`, an embedding's `<name>[i]`). */
function contextColumns(encoding) {
  const wide = [];
  for (const feature of encoding.context) {
    const width = feature.type === 'text' ? feature.buckets : feature.type === 'embedding' ? feature.dim : 0;
    for (let i = 0; i < width; i += 1) {
      wide.push(feature.type === 'text' ? `${feature.name}#${i}` : `${feature.name}[${i}]`);
    }
  }
  return [...crossedColumns(encoding), ...wide];
}

/**
 * The action-feature columns' names and each action's values (float64, rounded to float32 where they are stored):
 * a category's `action.<name>=<value>` one-hot per vocabulary value, a number's `action.<name>` scaled to [0, 1]
 * by its min and max (clipped), a bool's `action.<name>` 1 or 0.
 */
function actionFeatures(encoding) {
  const names = [];
  const values = encoding.actions.map(() => []);
  for (const feature of encoding.action_features || []) {
    const name = `action.${feature.name}`;
    if (feature.type === 'category') {
      for (const option of feature.vocabulary) names.push(`${name}=${option}`);
      feature.values.forEach((value, a) => values[a].push(...feature.vocabulary.map((o) => (o === value ? 1 : 0))));
    } else {
      names.push(name);
      feature.values.forEach((value, a) => {
        const scaled = Math.min(Math.max((value - feature.min) / (feature.max - feature.min), 0), 1);
        values[a].push(feature.type === 'bool' ? Number(value) : scaled);
      });
    }
  }
  return { names, values: values.map((row) => Float32Array.from(row)) };
}

/**
 * Names of the model's input columns, in order: context block, action one-hot, action features, crossed part x
 * each action, crossed part x each action-feature column.
 */
function columns(encoding) {
  const crossed = crossedColumns(encoding);
  const actions = encoding.actions.map((action) => `action=${action}`);
  const features = actionFeatures(encoding).names;
  return [
    ...contextColumns(encoding),
    ...actions,
    ...features,
    ...actions.flatMap((action) => crossed.map((column) => `${column}*${action}`)),
    ...features.flatMap((feature) => crossed.map((column) => `${column}*${feature}`)),
  ];
}

/**
 * The bucket of an open category's value: the first 8 bytes of sha256(UTF-8 of the value) as an unsigned
 * big-endian integer (the routing hash), modulo `buckets`. A value never seen in training still has a bucket, so
 * new values never change the encoding.
 */
function bucketOf(value, buckets) {
  return Number(hash64(value) % BigInt(buckets));
}

/** First 16 hex digits of the sha256 of the column names joined by newlines (UTF-8). */
function encodingId(encoding) {
  return createHash('sha256').update(columns(encoding).join('\n'), 'utf8').digest('hex').slice(0, 16);
}

function jsonType(value) {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

/** A string of valid Unicode: a lone surrogate has no UTF-8, and the Python client and the log reader refuse it. */
function checkText(feature, value) {
  if (typeof value !== 'string') throw wrongType(feature, value, 'a string');
  if (!value.isWellFormed()) throw wrongType(feature, value, 'valid Unicode text (a lone surrogate is not)');
}

function wrongType(feature, value, expected) {
  const text = typeof value === 'number' ? String(value) : JSON.stringify(value); // NaN is no JSON
  return new TypeError(
    `context feature '${feature.name}' (${feature.type}) is ${jsonType(value)} ${text}, expected ${expected} or null`,
  );
}

/**
 * The context block of one context (an object: feature name -> value) as float32 values.
 * A value of the wrong JSON type throws a TypeError naming the feature: scoring it as missing would hide an agent
 * bug behind plausible-looking decisions. Numbers must be finite, and an int feature's a whole number, as the log
 * contract requires of the same values when they are logged.
 */
function encodeContext(encoding, context) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`a context is an object of feature values, not ${jsonType(context)}`);
  }
  const block = [];
  const wide = [];
  for (const feature of encoding.context) {
    const value = Object.hasOwn(context, feature.name) ? context[feature.name] : null;
    const missing = value === null || value === undefined;
    if (feature.type === 'text' || feature.type === 'embedding') {
      if (!missing) (feature.type === 'text' ? checkText : checkVector)(feature, value);
      const width = feature.type === 'text' ? feature.buckets : feature.dim;
      const parts = missing
        ? { crossed: [...new Array(feature.cross_dims).fill(0), 1], wide: new Array(width).fill(0) }
        : (feature.type === 'text' ? textParts : embeddingParts)(value, feature);
      block.push(...parts.crossed);
      wide.push(...parts.wide);
    } else if (feature.type === 'category') {
      if (!missing) checkText(feature, value);
      const position = missing ? -1 : feature.vocabulary.indexOf(value);
      const onehot = new Array(feature.vocabulary.length + 1).fill(0);
      onehot[position === -1 ? feature.vocabulary.length : position] = 1;
      block.push(...onehot);
    } else if (feature.type === 'open_category') {
      if (!missing) checkText(feature, value);
      const onehot = new Array(feature.buckets + 1).fill(0); // the buckets, then __missing
      onehot[missing ? feature.buckets : bucketOf(value, feature.buckets)] = 1;
      block.push(...onehot);
    } else if (feature.type === 'bool') {
      if (!missing && typeof value !== 'boolean') throw wrongType(feature, value, 'a boolean');
      block.push(missing ? 0 : Number(value), missing ? 1 : 0);
    } else {
      const whole = feature.type === 'int';
      if (!missing && (typeof value !== 'number' || !(whole ? Number.isSafeInteger(value) : Number.isFinite(value)))) {
        throw wrongType(feature, value, whole ? 'a whole number' : 'a finite number');
      }
      // Scaled in float64 and only then rounded to float32, as numpy does before its astype(float32).
      const scaled = missing ? 0 : Math.min(Math.max((value - feature.min) / (feature.max - feature.min), 0), 1);
      block.push(scaled, missing ? 1 : 0);
    }
  }
  return Float32Array.from([...block, ...wide]);
}

/** An embedding: exactly `dim` finite numbers, as the log contract and the Python client require. */
function checkVector(feature, value) {
  if (!Array.isArray(value)) throw wrongType(feature, value, `a list of ${feature.dim} finite numbers`);
  if (value.length !== feature.dim) {
    throw new TypeError(
      `context feature '${feature.name}' (embedding) must hold ${feature.dim} numbers, got ${value.length}`,
    );
  }
  if (!value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw wrongType(feature, value, `a list of ${feature.dim} finite numbers`);
  }
}

/**
 * The model's input rows for every action of each context, as one row-major float32 matrix: row
 * `i * actions + k` is context i with action k (context block, action one-hot, action k's features, then the
 * block's crossed part again in action k's slot of the crossed columns, zeros in the others, then the crossed
 * part times each of action k's feature values).
 */
function encode(encoding, contexts) {
  const actions = encoding.actions.length;
  const blocks = contexts.map((context) => encodeContext(encoding, context));
  const width = contextColumns(encoding).length;
  const crossed = crossedColumns(encoding).length;
  const { values } = actionFeatures(encoding);
  const features = values[0].length;
  const rowWidth = width + (actions + features) * (crossed + 1);
  const matrix = new Float32Array(contexts.length * actions * rowWidth); // zero-filled
  blocks.forEach((block, i) => {
    for (let k = 0; k < actions; k += 1) {
      const row = (i * actions + k) * rowWidth;
      matrix.set(block, row);
      matrix[row + width + k] = 1;
      matrix.set(values[k], row + width + actions);
      const byAction = row + width + actions + features;
      matrix.set(block.subarray(0, crossed), byAction + k * crossed);
      const byFeature = byAction + actions * crossed;
      for (let f = 0; f < features; f += 1) {
        for (let c = 0; c < crossed; c += 1) matrix[byFeature + f * crossed + c] = values[k][f] * block[c];
      }
    }
  });
  return { data: matrix, rows: contexts.length * actions, width: rowWidth };
}

module.exports = {
  OTHER,
  actionFeatures,
  bucketOf,
  columns,
  contextColumns,
  crossedColumns,
  encode,
  encodeContext,
  encodingId,
};
