'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { encodingId } = require('../src/encoding');
const { manifestProblem } = require('../src/manifest');
const { ENCODING } = require('../testing/fixtures');

const ENTRY = {
  version: 'v1',
  encoding_id: 'cb053285ba6fe880',
  onnx: { key: 'node-bot/models/v1/model.onnx', sha256: 'ab'.repeat(32) },
  encoding: ENCODING,
};
const manifest = (changes = {}) => ({ schema_version: 2, ...ENTRY, canary: null, ...changes });
/** A manifest whose encoding has an open category of these buckets (fingerprinted, so only the buckets matter). */
const withBuckets = (buckets) => {
  const encoding = { context: [...ENCODING.context, { name: 'product', type: 'open_category', buckets }] };
  encoding.actions = ENCODING.actions;
  return manifest({ encoding, encoding_id: buckets === undefined ? ENTRY.encoding_id : encodingId(encoding) });
};
const without = (object, name) => Object.fromEntries(Object.entries(object).filter(([key]) => key !== name));

test('a schema 2 manifest with or without a canary is readable, whatever else it holds', () => {
  assert.equal(manifestProblem(manifest()), null);
  assert.equal(manifestProblem(manifest({ canary: { ...ENTRY, version: 'v2', share: 0.1 } })), null);
  assert.equal(manifestProblem(manifest({ canary: undefined })), null);
  assert.equal(manifestProblem(manifest({ framework: 'sklearn', history: [], added_later: { x: 1 } })), null);
});

test('each manifest the client cannot serve is refused with the reason', () => {
  const canary = (changes) => manifest({ canary: { ...ENTRY, version: 'v2', share: 0.1, ...changes } });
  const otherActions = { ...ENCODING, actions: ['faq', 'human'] };
  const cases = [
    [[], 'the manifest is [], not an object'],
    [null, 'the manifest is null, not an object'],
    [manifest({ schema_version: 3 }), 'manifest schema_version 3: this client reads up to 2'],
    [manifest({ schema_version: '2' }), 'manifest schema_version "2" is not an integer'],
    [manifest({ schema_version: 2.5 }), 'manifest schema_version 2.5 is not an integer'],
    [
      manifest({ schema_version: 1 }),
      'manifest schema_version 1 was written before portable models (no ONNX export or encoding in it); the next deploy or rollback writes version 2',
    ],
    [
      without(manifest(), 'onnx'),
      'the live entry\'s onnx is missing, not {"key": text, "sha256": 64 lower-case hex digits}',
    ],
    [manifest({ onnx: { key: 'k' } }), 'the live entry\'s onnx is {"key":"k"}, not'],
    [manifest({ onnx: { key: 'k', sha256: 'AB'.repeat(32) } }), "the live entry's onnx is"],
    [without(manifest(), 'version'), "the live entry's version is missing, not a model version"],
    [manifest({ version: '../v1' }), 'the live entry\'s version is "../v1", not a model version'],
    [manifest({ encoding_id: 7 }), "the live entry's encoding_id is 7, not 16 lower-case hex digits"],
    [without(manifest(), 'encoding'), "the live entry's encoding is missing, not an object"],
    [
      manifest({ encoding: { ...ENCODING, actions: [] } }),
      "the live entry's encoding actions are [], not distinct strings",
    ],
    [
      manifest({ encoding: { ...ENCODING, actions: ['faq', 'faq'] } }),
      'the live entry\'s encoding actions are ["faq","faq"]',
    ],
    [
      manifest({ encoding: { context: [{ name: 'x', type: 'int', min: 5, max: 5 }], actions: ['a'] } }),
      "the live entry's encoding feature 'x' has min 5 and max 5, not two numbers with min < max",
    ],
    [
      manifest({ encoding: { context: [{ name: 'x', type: 'text', buckets: 256, max_bytes: 1024 }], actions: ['a'] } }),
      "the live entry's encoding feature 'x' has cross_dims missing, not an integer from 1 to 64",
    ],
    [
      manifest({ encoding: { context: [{ name: 'x', type: 'embedding', dim: 1, cross_dims: 16 }], actions: ['a'] } }),
      "the live entry's encoding feature 'x' has dim 1, not an integer from 2 to 4096",
    ],
    [
      manifest({ encoding: { context: [{ name: 'x', type: 'audio' }], actions: ['a'] } }),
      "the live entry's encoding feature 'x' has type \"audio\"",
    ],
    [
      manifest({ encoding: { context: [{ name: 'x', type: 'category', vocabulary: [] }], actions: ['a'] } }),
      "the live entry's encoding feature 'x' has vocabulary [], not a list of distinct strings",
    ],
    [manifest({ encoding: otherActions }), "the live entry's encoding fingerprints to"],
    [manifest({ canary: 'v2' }), 'the canary entry is "v2", not an object'],
    [canary({ onnx: undefined }), "the canary entry's onnx is missing"],
    [canary({ encoding: otherActions }), "the canary entry's encoding fingerprints to"],
    [canary({ share: 1.5 }), "the canary's share is 1.5, not a number in [0, 1]"],
    [canary({ share: '0.1' }), 'the canary\'s share is "0.1", not a number in [0, 1]'],
    [canary({ share: undefined }), "the canary's share is missing, not a number in [0, 1]"],
  ];
  for (const [value, reason] of cases) {
    const problem = manifestProblem(value);
    assert.ok(problem?.startsWith(reason), `${JSON.stringify(value)}:\n  expected ${reason}\n  got      ${problem}`);
  }
});

test('a manifest without schema_version is schema 1, from before portable models', () => {
  const old = {
    version: 'v1',
    sha256: 'ab'.repeat(32),
    artifact_key: 'k',
    framework: 'sklearn',
    encoding_id: 'cb053285ba6fe880',
  };
  assert.match(manifestProblem(old), /^manifest schema_version 1 was written before portable models/);
});

test("an entry's encoding must fingerprint to its encoding_id: the id names the columns the model was trained on", () => {
  const problem = manifestProblem(manifest({ encoding: { ...ENCODING, actions: ['faq', 'human'] } }));
  assert.match(
    problem,
    /^the live entry's encoding fingerprints to [0-9a-f]{16}, not its encoding_id cb053285ba6fe880$/,
  );
});

test('an open category with an integer number of buckets from 2 to 4096 is readable', () => {
  for (const buckets of [2, 16, 4096]) assert.equal(manifestProblem(withBuckets(buckets)), null, String(buckets));
  const live = withBuckets(16);
  assert.equal(manifestProblem(manifest({ canary: { ...live, schema_version: undefined, share: 0.5 } })), null);
});

test('an open category without an integer number of buckets from 2 to 4096 is refused with the reason', () => {
  const reason = (shown) =>
    `the live entry's encoding feature 'product' has buckets ${shown}, not an integer from 2 to 4096`;
  const cases = [
    [undefined, 'missing'],
    [null, 'null'],
    [0, '0'],
    [1, '1'],
    [-16, '-16'],
    [4097, '4097'],
    [2.5, '2.5'],
    ['16', '"16"'],
    [true, 'true'],
    [[16], '[16]'],
  ];
  for (const [buckets, shown] of cases) assert.equal(manifestProblem(withBuckets(buckets)), reason(shown));
  const canary = manifest({ canary: { ...withBuckets(1), share: 0.1 } });
  assert.equal(manifestProblem(canary), reason('1').replace('live', 'canary'));
});
