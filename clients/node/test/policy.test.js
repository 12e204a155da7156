'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { bucketOf } = require('../src/encoding');
const { hash64 } = require('../src/hash');
const { draw, greedyPropensities, routesToCanary } = require('../src/policy');

test('the greedy policy gives exploration / actions to each action and the rest to the best', () => {
  // The same operations as numpy's: exploration / actions everywhere, then 1 - exploration added to the best.
  assert.deepEqual(greedyPropensities([0.2, 0.7, 0.1, 0.5], 0.1), [0.025, 0.025 + 0.9, 0.025, 0.025]);
  assert.deepEqual(greedyPropensities([0.3, 0.3, 0.1], 0.3), [0.3 / 3 + 0.7, 0.3 / 3, 0.3 / 3]); // a tie: the first
  assert.deepEqual(greedyPropensities([0.1, 0.9], 0), [0, 1]);
  assert.deepEqual(greedyPropensities([0.1, 0.9], 1), [0.5, 0.5]);
});

test('one uniform draw picks the first action whose cumulative probability exceeds it', () => {
  const probabilities = [0.25, 0.5, 0.25];
  assert.equal(draw(probabilities, 0), 0);
  assert.equal(draw(probabilities, 0.2499), 0);
  assert.equal(draw(probabilities, 0.25), 1);
  assert.equal(draw(probabilities, 0.75), 2);
  assert.equal(draw(probabilities, 0.9999999), 2);
  assert.equal(draw([0, 1, 0], 0), 1); // an action of probability 0 is never drawn
  assert.equal(draw([0.1, 0.2, 0.3, 0.3999999], 0.9999999999), 3); // past a sum rounded below 1: the last
});

test('routing: no key at share 0, every key at share 1, and the same split as Python', () => {
  for (const key of ['s-1', 's-2', 'session-42']) {
    assert.equal(routesToCanary(key, 'v2', 0), false);
    assert.equal(routesToCanary(key, 'v2', 1), true);
  }
  // From agent_retraining.serving.client.routes_to_canary for canary version v2.
  const python = { 's-1': [false, true, true], 's-2': [false, false, true], 'session-42': [false, false, true] };
  for (const [key, expected] of Object.entries(python)) {
    assert.deepEqual(
      [0.25, 0.5, 0.75].map((share) => routesToCanary(key, 'v2', share)),
      expected,
    );
  }
});

test('routing compares the 64-bit hash with share * 2^64 exactly, not as rounded doubles', () => {
  // Each key's hash as a double is its share times 2^64: k4's hash is just below that double (routed), k0's just
  // above (not routed). Python agrees on both; comparing two doubles would route neither.
  assert.equal(routesToCanary('k4', 'v2', Number(11831261229908412381n) / 2 ** 64), true);
  assert.equal(routesToCanary('k0', 'v2', Number(13953747963163218584n) / 2 ** 64), false);
  assert.equal(routesToCanary('k4', 'v2', 0.6413739564355111), true);
  assert.equal(routesToCanary('k0', 'v2', 0.7564341927988372), false);
});

test('routing is salted with the canary version: another canary draws another split', () => {
  const keys = Array.from({ length: 400 }, (_, i) => `s-${i}`);
  const first = keys.map((key) => routesToCanary(key, 'v2', 0.5));
  const second = keys.map((key) => routesToCanary(key, 'v3', 0.5));
  assert.notDeepEqual(first, second);
  const share = first.filter(Boolean).length / keys.length;
  assert.ok(share > 0.4 && share < 0.6, `share ${share}`);
});

test('routing and open categories share one hash: the first 8 bytes of sha256, unsigned big-endian', () => {
  // From Python: int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big").
  assert.equal(hash64('v2/k4'), 11831261229908412381n);
  assert.equal(hash64('v2/k0'), 13953747963163218584n);
  assert.equal(hash64('naïve'), 17901765216542819466n); // above 2^63: read unsigned
  assert.equal(hash64('東京'), 1369119241984014309n);
  assert.equal(hash64(''), 16406829232824261652n);
  for (const text of ['v2/k4', 'naïve', '東京', '']) assert.equal(BigInt(bucketOf(text, 16)), hash64(text) % 16n);
});
