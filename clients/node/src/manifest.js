'use strict';
/**
 * What this client can read of a manifest, checked before anything in it is served: the manifest is input like
 * any other, and a newer schema, a missing field or an out-of-range share would otherwise crash `poll` or route
 * every session to the canary. The same refusals as the Python client's (serving/manifest_schema.py), on the
 * fields a client uses; the pipeline checks the whole JSON Schema before it writes a manifest.
 */
const { encodingId } = require('./encoding');

const SCHEMA_VERSION = 2; // the highest manifest schema this client reads
const FEATURE_TYPES = ['category', 'open_category', 'int', 'float', 'bool', 'text', 'embedding'];
const MAX_BUCKETS = 4096; // the schema's: an open category's columns, each crossed with every action
// The schema's ranges of the whole numbers a text or an embedding is described by.
const WIDE_LIMITS = {
  text: { buckets: [16, 4096], max_bytes: [16, 1048576], cross_dims: [1, 64] },
  embedding: { dim: [2, 4096], cross_dims: [1, 64] },
};

const describe = (value) => (value === undefined ? 'missing' : JSON.stringify(value));

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const isText = (value) => typeof value === 'string' && value.length > 0;

function uniqueTexts(values) {
  return Array.isArray(values) && values.every(isText) && new Set(values).size === values.length;
}

/** Why an encoding cannot be used, if it cannot (its features and actions are what the columns are made of). */
function encodingProblem(encoding) {
  if (!isObject(encoding)) return `is ${describe(encoding)}, not an object`;
  const { context, actions } = encoding;
  if (!Array.isArray(context)) return `context is ${describe(context)}, not an array`;
  for (const [i, feature] of context.entries()) {
    if (!isObject(feature) || !isText(feature.name)) return `context[${i}] has no name`;
    const where = `feature '${feature.name}'`;
    if (!FEATURE_TYPES.includes(feature.type)) return `${where} has type ${describe(feature.type)}`;
    if (feature.type === 'category' && !(uniqueTexts(feature.vocabulary) && feature.vocabulary.length)) {
      return `${where} has vocabulary ${describe(feature.vocabulary)}, not a list of distinct strings`;
    }
    if (feature.type === 'open_category') {
      const { buckets } = feature;
      if (!(Number.isInteger(buckets) && buckets >= 2 && buckets <= MAX_BUCKETS)) {
        return `${where} has buckets ${describe(buckets)}, not an integer from 2 to ${MAX_BUCKETS}`;
      }
    }
    for (const [key, [low, high]] of Object.entries(WIDE_LIMITS[feature.type] || {})) {
      const value = feature[key];
      if (!(Number.isInteger(value) && value >= low && value <= high)) {
        return `${where} has ${key} ${describe(value)}, not an integer from ${low} to ${high}`;
      }
    }
    if (feature.type === 'int' || feature.type === 'float') {
      const { min, max } = feature;
      if (!(Number.isFinite(min) && Number.isFinite(max) && min < max)) {
        return `${where} has min ${describe(min)} and max ${describe(max)}, not two numbers with min < max`;
      }
    }
  }
  if (!uniqueTexts(context.map((feature) => feature.name))) return 'context names a feature twice';
  if (!(uniqueTexts(actions) && actions.length)) return `actions are ${describe(actions)}, not distinct strings`;
  return actionFeaturesProblem(encoding.action_features, actions.length);
}

const ACTION_VALUE = {
  category: (value) => typeof value === 'string',
  int: Number.isFinite,
  float: Number.isFinite,
  bool: (value) => typeof value === 'boolean',
};

/** Why the actions' features cannot be used, if they cannot: one value per action, of the feature's type. */
function actionFeaturesProblem(features, actionCount) {
  if (features === undefined) return null;
  if (!Array.isArray(features)) return `action_features is ${describe(features)}, not an array`;
  for (const [i, feature] of features.entries()) {
    if (!isObject(feature) || !isText(feature.name)) return `action_features[${i}] has no name`;
    const where = `action feature '${feature.name}'`;
    const valid = ACTION_VALUE[feature.type];
    if (!valid) return `${where} has type ${describe(feature.type)}`;
    if (!(Array.isArray(feature.values) && feature.values.length === actionCount && feature.values.every(valid))) {
      return `${where} has values ${describe(feature.values)}, not one ${feature.type} per action`;
    }
    if (feature.type === 'category' && !(uniqueTexts(feature.vocabulary) && feature.vocabulary.length)) {
      return `${where} has vocabulary ${describe(feature.vocabulary)}, not a list of distinct strings`;
    }
    if ((feature.type === 'int' || feature.type === 'float') && !(feature.min < feature.max)) {
      return `${where} has min ${describe(feature.min)} and max ${describe(feature.max)}, not min < max`;
    }
  }
  return null;
}

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$/; // the schema's: a model version is part of object keys
const ENCODING_ID = /^[0-9a-f]{16}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Why one entry (the live model, or the canary) cannot be served, if it cannot. */
function entryProblem(slot, entry) {
  if (!isObject(entry)) return `the ${slot} entry is ${describe(entry)}, not an object`;
  if (!(typeof entry.version === 'string' && VERSION.test(entry.version))) {
    return `the ${slot} entry's version is ${describe(entry.version)}, not a model version`;
  }
  if (!(typeof entry.encoding_id === 'string' && ENCODING_ID.test(entry.encoding_id))) {
    return `the ${slot} entry's encoding_id is ${describe(entry.encoding_id)}, not 16 lower-case hex digits`;
  }
  const { onnx } = entry;
  if (!(isObject(onnx) && isText(onnx.key) && typeof onnx.sha256 === 'string' && SHA256.test(onnx.sha256))) {
    return `the ${slot} entry's onnx is ${describe(onnx)}, not {"key": text, "sha256": 64 lower-case hex digits}`;
  }
  const problem = encodingProblem(entry.encoding);
  if (problem) return `the ${slot} entry's encoding ${problem}`;
  const computed = encodingId(entry.encoding);
  if (computed !== entry.encoding_id) {
    return `the ${slot} entry's encoding fingerprints to ${computed}, not its encoding_id ${entry.encoding_id}`;
  }
  return null;
}

/** Why this client cannot serve a manifest, if it cannot: then nothing in it is served. */
function manifestProblem(manifest) {
  if (!isObject(manifest)) return `the manifest is ${describe(manifest)}, not an object`;
  // A manifest without the field was written before it existed: schema 1.
  const version = manifest.schema_version === undefined ? 1 : manifest.schema_version;
  if (!Number.isInteger(version)) return `manifest schema_version ${describe(version)} is not an integer`;
  if (version > SCHEMA_VERSION) return `manifest schema_version ${version}: this client reads up to ${SCHEMA_VERSION}`;
  if (version < SCHEMA_VERSION) {
    return (
      `manifest schema_version ${version} was written before portable models (no ONNX export or encoding in it); ` +
      `the next deploy or rollback writes version ${SCHEMA_VERSION}`
    );
  }
  const live = entryProblem('live', manifest);
  if (live) return live;
  const { canary } = manifest;
  if (canary === null || canary === undefined) return null;
  const problem = entryProblem('canary', canary);
  if (problem) return problem;
  const { share } = canary;
  if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
    return `the canary's share is ${describe(share)}, not a number in [0, 1]`;
  }
  return null;
}

module.exports = { MAX_BUCKETS, SCHEMA_VERSION, manifestProblem };
