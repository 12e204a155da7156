'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { createHash } = require('node:crypto');

const { bucketOf, columns, encode, encodeContext, encodingId } = require('../src/encoding');
const { ENCODING } = require('../testing/fixtures');

/** A small encoding with an open category between a category and a bool. */
const OPEN = {
  context: [
    { name: 'plan', type: 'category', vocabulary: ['free', 'pro'] },
    { name: 'product', type: 'open_category', buckets: 4 },
    { name: 'is_mobile', type: 'bool' },
  ],
  actions: ['faq', 'human'],
};
/** One open category of 16 buckets, alone. */
const PRODUCT = { context: [{ name: 'product', type: 'open_category', buckets: 16 }], actions: ['a'] };

test('the columns are the context block, the action one-hot, then each action crossed with the context', () => {
  const context = [
    'plan=free',
    'plan=pro',
    'plan=__other__',
    'tenure_days',
    'tenure_days__missing',
    'is_mobile',
    'is_mobile__missing',
  ];
  const actions = ['action=faq', 'action=human', 'action=docs'];
  const crossed = actions.flatMap((a) => context.map((c) => `${c}*${a}`));
  assert.deepEqual(columns(ENCODING), [...context, ...actions, ...crossed]);
});

test('the encoding id is the one Python computes from the same columns', () => {
  // Both from agent_retraining.models.encoding.fingerprint on these encodings (the second holds non-ASCII names,
  // hashed as UTF-8).
  assert.equal(encodingId(ENCODING), 'cb053285ba6fe880');
  const unicode = { context: [{ name: 'größe', type: 'category', vocabulary: ['ü', 'ß'] }], actions: ['a'] };
  assert.equal(encodingId(unicode), 'f71f03fe7fb54574');
});

test('categories are one-hot, with unknown, null and absent values in __other__', () => {
  const block = (plan) => Array.from(encodeContext(ENCODING, { plan, tenure_days: 0, is_mobile: false })).slice(0, 3);
  assert.deepEqual(block('free'), [1, 0, 0]);
  assert.deepEqual(block('pro'), [0, 1, 0]);
  assert.deepEqual(block('enterprise'), [0, 0, 1]);
  assert.deepEqual(block(null), [0, 0, 1]);
  assert.deepEqual(Array.from(encodeContext(ENCODING, {})).slice(0, 3), [0, 0, 1]);
});

test('numbers are scaled to [0, 1] in float64, clipped, then rounded to float32; null is missing', () => {
  const number = (tenure_days) => Array.from(encodeContext(ENCODING, { plan: 'free', tenure_days })).slice(3, 5);
  assert.deepEqual(number(1), [Math.fround(1 / 3650), 0]);
  assert.notEqual(Math.fround(1 / 3650), 1 / 3650); // the rounding is visible
  assert.deepEqual(number(1825), [0.5, 0]);
  assert.deepEqual(number(-5), [0, 0]);
  assert.deepEqual(number(99999), [1, 0]);
  assert.deepEqual(number(null), [0, 1]);
  assert.deepEqual(number(undefined), [0, 1]);
});

test('booleans are [value, 0]; null is [0, 1]', () => {
  const flag = (is_mobile) => Array.from(encodeContext(ENCODING, { is_mobile })).slice(5, 7);
  assert.deepEqual(flag(true), [1, 0]);
  assert.deepEqual(flag(false), [0, 0]);
  assert.deepEqual(flag(null), [0, 1]);
});

test('a value of the wrong JSON type is a TypeError naming the feature', () => {
  const cases = [
    [{ tenure_days: '12' }, /'tenure_days' \(int\) is string "12"/],
    [{ tenure_days: 2.5 }, /'tenure_days' \(int\) is number 2.5, expected a whole number/],
    [{ tenure_days: true }, /'tenure_days'/],
    [{ plan: 1 }, /'plan' \(category\) is number 1, expected a string/],
    [{ is_mobile: 1 }, /'is_mobile' \(bool\) is number 1, expected a boolean/],
    [{ is_mobile: 'yes' }, /'is_mobile'/],
  ];
  for (const [context, message] of cases)
    assert.throws(() => encodeContext(ENCODING, context), { name: 'TypeError', message });
  const float = { context: [{ name: 'score', type: 'float', min: -1, max: 1 }], actions: ['a'] };
  assert.throws(
    () => encodeContext(float, { score: Number.NaN }),
    /'score' \(float\) is number NaN, expected a finite/,
  );
  assert.throws(() => encodeContext(ENCODING, ['free']), /a context is an object of feature values, not array/);
});

test("each context gives one row per action: context, action one-hot, the context in the action's slot", () => {
  const context = { plan: 'pro', tenure_days: 365, is_mobile: true };
  const block = Array.from(encodeContext(ENCODING, context));
  const { data, rows, width } = encode(ENCODING, [context, {}]);
  assert.equal(rows, 6);
  assert.equal(width, 7 + 3 + 3 * 7);
  const zeros = new Array(7).fill(0);
  for (let k = 0; k < 3; k += 1) {
    const row = Array.from(data.subarray(k * width, (k + 1) * width));
    const onehot = [0, 1, 2].map((a) => (a === k ? 1 : 0));
    const crossed = [0, 1, 2].flatMap((a) => (a === k ? block : zeros));
    assert.deepEqual(row, [...block, ...onehot, ...crossed]);
  }
  const missing = Array.from(data.subarray(3 * width, 3 * width + 7));
  assert.deepEqual(missing, [0, 0, 1, 0, 1, 0, 1]); // the second context: every feature absent
});

test("an open category's columns are one per bucket then __missing, at its place, crossed like the others", () => {
  const context = [
    'plan=free',
    'plan=pro',
    'plan=__other__',
    'product#0',
    'product#1',
    'product#2',
    'product#3',
    'product__missing',
    'is_mobile',
    'is_mobile__missing',
  ];
  const actions = ['action=faq', 'action=human'];
  const crossed = actions.flatMap((a) => context.map((c) => `${c}*${a}`));
  assert.deepEqual(columns(OPEN), [...context, ...actions, ...crossed]);
  const sixteen = [...Array.from({ length: 16 }, (_, b) => `product#${b}`), 'product__missing'];
  assert.deepEqual(columns(PRODUCT), [...sixteen, 'action=a', ...sixteen.map((c) => `${c}*action=a`)]);
});

test('an open category enters the encoding id by its column names, as Python fingerprints them', () => {
  // The documented names, joined by newlines and hashed here, independently of columns().
  const base = ['plan=free', 'plan=pro', 'plan=__other__', 'product#0', 'product#1', 'product#2', 'product#3'];
  base.push('product__missing', 'is_mobile', 'is_mobile__missing');
  const actions = ['action=faq', 'action=human'];
  const names = [...base, ...actions, ...actions.flatMap((a) => base.map((c) => `${c}*${a}`))];
  const expected = createHash('sha256').update(names.join('\n'), 'utf8').digest('hex').slice(0, 16);
  assert.equal(encodingId(OPEN), expected);
  // Both from agent_retraining.models.encoding.fingerprint on these encodings.
  assert.equal(encodingId(OPEN), 'c5111c2173d352b7');
  assert.equal(encodingId(PRODUCT), 'c23204ac75dd40ce');
  // Another number of buckets is another encoding.
  assert.notEqual(encodingId({ ...PRODUCT, context: [{ ...PRODUCT.context[0], buckets: 17 }] }), encodingId(PRODUCT));
});

test("an open category's value is 1 in the bucket of its sha256 prefix mod buckets, 0 elsewhere and in __missing", () => {
  // From Python: int.from_bytes(hashlib.sha256(v.encode()).digest()[:8], "big") % buckets. Several digests are
  // at or above 2^63 ("naïve", ""), where a signed or double-precision remainder would go wrong.
  const python16 = { naïve: 10, 東京: 5, '': 4, 'p-1': 3, 'p-2': 5, laptop: 7, Laptop: 5, '😀': 7 };
  for (const [value, bucket] of Object.entries(python16)) {
    assert.equal(bucketOf(value, 16), bucket, JSON.stringify(value));
    const expected = new Array(17).fill(0);
    expected[bucket] = 1;
    assert.deepEqual(Array.from(encodeContext(PRODUCT, { product: value })), expected, JSON.stringify(value));
  }
  const python4096 = { naïve: 1162, 東京: 2021, '': 3092, 'p-1': 2051 };
  for (const [value, bucket] of Object.entries(python4096)) assert.equal(bucketOf(value, 4096), bucket, value);
  assert.equal(bucketOf('naïve', 2), 0);
  assert.equal(bucketOf('東京', 2), 1);
});

test('an open category that is null or absent is 1 in __missing alone; the empty string is a value', () => {
  const missing = [...new Array(16).fill(0), 1];
  assert.deepEqual(Array.from(encodeContext(PRODUCT, { product: null })), missing);
  assert.deepEqual(Array.from(encodeContext(PRODUCT, { product: undefined })), missing);
  assert.deepEqual(Array.from(encodeContext(PRODUCT, {})), missing);
  const empty = Array.from(encodeContext(PRODUCT, { product: '' }));
  assert.equal(empty[16], 0);
  assert.equal(empty.indexOf(1), 4);
  // A value never seen before has a bucket too: the block's width never changes.
  assert.equal(encodeContext(PRODUCT, { product: 'sku-launched-today' }).length, 17);
});

test('an open category value that is not a string is a TypeError naming the feature', () => {
  const cases = [
    [7, /'product' \(open_category\) is number 7, expected a string or null/],
    [2.5, /'product' \(open_category\) is number 2.5/],
    [true, /'product' \(open_category\) is boolean true/],
    [{ id: 'p-1' }, /'product' \(open_category\) is object \{"id":"p-1"\}/],
    [['p-1'], /'product' \(open_category\) is array \["p-1"\]/],
  ];
  for (const [product, message] of cases) {
    assert.throws(() => encodeContext(PRODUCT, { product }), { name: 'TypeError', message });
    assert.throws(() => encode(OPEN, [{ product }]), { name: 'TypeError', message });
  }
});

test("an open category's block is in the context block and in its action's crossed slot of each row", () => {
  const context = { plan: 'pro', product: 'naïve', is_mobile: true };
  const block = Array.from(encodeContext(OPEN, context));
  const product = [0, 0, 0, 0, 0];
  product[bucketOf('naïve', 4)] = 1;
  assert.deepEqual(block, [0, 1, 0, ...product, 1, 0]);
  const { data, rows, width } = encode(OPEN, [context]);
  assert.equal(rows, 2);
  assert.equal(width, 10 + 2 + 2 * 10);
  const zeros = new Array(10).fill(0);
  assert.deepEqual(Array.from(data.subarray(0, width)), [...block, 1, 0, ...block, ...zeros]);
  assert.deepEqual(Array.from(data.subarray(width, 2 * width)), [...block, 0, 1, ...zeros, ...block]);
});

test('a lone surrogate is refused like the Python client refuses it: it has no UTF-8', () => {
  const encoding = {
    context: [
      { name: 'plan', type: 'category', vocabulary: ['free'] },
      { name: 'product', type: 'open_category', buckets: 4 },
    ],
    actions: ['a'],
  };
  for (const name of ['plan', 'product']) {
    assert.throws(() => encodeContext(encoding, { [name]: 'x\ud800' }), {
      name: 'TypeError',
      message: new RegExp(`context feature '${name}'.*valid Unicode text`),
    });
  }
});

/** A text, an embedding and an action feature, small. */
const TALKS = {
  context: [
    { name: 'message', type: 'text', buckets: 16, max_bytes: 32, cross_dims: 2 },
    { name: 'vector', type: 'embedding', dim: 3, cross_dims: 2 },
  ],
  actions: ['bot', 'human'],
  action_features: [{ name: 'cost', type: 'float', min: 0, max: 2, values: [0.5, 2] }],
};

test('texts and embeddings cross only their sketch with the actions and the action features', () => {
  const names = columns(TALKS);
  const crossed = ['message~0', 'message~1', 'message__missing', 'vector~0', 'vector~1', 'vector__missing'];
  const wide = [...Array.from({ length: 16 }, (_, b) => `message#${b}`), 'vector[0]', 'vector[1]', 'vector[2]'];
  assert.deepEqual(names.slice(0, crossed.length + wide.length), [...crossed, ...wide]);
  assert.deepEqual(names.slice(crossed.length + wide.length, crossed.length + wide.length + 3), [
    'action=bot',
    'action=human',
    'action.cost',
  ]);
  assert.equal(names.length, 6 + 19 + 2 + 1 + 2 * 6 + 1 * 6);
  assert.ok(names.includes('vector~1*action.cost') && !names.some((n) => n.startsWith('message#0*')));
});

test('a text is cut at max_bytes in UTF-8 bytes and an empty one encodes to zeros, not missing', () => {
  const long = encodeContext(TALKS, { message: `${'€'.repeat(20)} and more words` });
  const cut = encodeContext(TALKS, { message: '€'.repeat(11) }); // 33 bytes: the cut falls in the 11th
  assert.deepEqual(Array.from(long.subarray(6, 22)), Array.from(cut.subarray(6, 22)));
  const empty = encodeContext(TALKS, { message: '' });
  assert.equal(empty[2], 0); // not missing
  assert.ok(Array.from(empty.subarray(6, 22)).every((v) => v === 0));
  assert.equal(encodeContext(TALKS, {})[2], 1); // absent: missing
});

test('an embedding that is not dim finite numbers is refused by name', () => {
  assert.throws(() => encodeContext(TALKS, { vector: [1, 2] }), /'vector' \(embedding\) must hold 3 numbers, got 2/);
  assert.throws(() => encodeContext(TALKS, { vector: [1, 2, NaN] }), /'vector'.*3 finite numbers/);
  assert.throws(() => encodeContext(TALKS, { vector: '1,2,3' }), /'vector'.*3 finite numbers/);
});

test("each action's row carries its feature values and the crossed part times them", () => {
  const { data, width } = encode(TALKS, [{ message: 'hi', vector: [0.5, -0.25, 1] }]);
  const block = encodeContext(TALKS, { message: 'hi', vector: [0.5, -0.25, 1] });
  for (const [k, cost] of [
    [0, 0.25],
    [1, 1],
  ]) {
    const row = data.subarray(k * width, (k + 1) * width);
    assert.equal(row[25 + 2], cost); // action.cost, scaled by min 0 and max 2
    const byFeature = Array.from(row.subarray(28 + 2 * 6));
    assert.deepEqual(
      byFeature,
      Array.from(block.subarray(0, 6)).map((v) => Math.fround(v * cost)),
    );
  }
});
