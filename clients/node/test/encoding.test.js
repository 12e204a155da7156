'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { columns, encode, encodeContext, encodingId } = require('../src/encoding');
const { ENCODING } = require('../testing/fixtures');

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
