'use strict';
/**
 * The serving contract's test vectors (include/agent_retraining/serving/test_vectors/, written by the Python side):
 * this client, reading their manifest and ONNX files through a folder store, must give the same encoded rows
 * (exactly), scores (within 1e-6), greedy actions, propensities (within 1e-12), arms and routing (exactly).
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { AgentModelClient } = require('../src/client');
const { columns, encode, encodingId } = require('../src/encoding');
const { routesToCanary } = require('../src/policy');
const { FolderStore } = require('../src/store');

const FOLDER = path.resolve(__dirname, '..', '..', '..', 'include', 'agent_retraining', 'serving', 'test_vectors');
const read = (name) => JSON.parse(fs.readFileSync(path.join(FOLDER, name), 'utf8'));
const MANIFEST = read('manifest.json');
const VECTORS = read('vectors.json');

async function client() {
  const store = new FolderStore(FOLDER, { [`${MANIFEST.agent_id}/manifest.json`]: 'manifest.json', ...VECTORS.files });
  const loaded = new AgentModelClient({ agentId: MANIFEST.agent_id, store, exploration: VECTORS.exploration });
  assert.equal(await loaded.poll(), true, loaded.lastError);
  assert.equal(loaded.lastError, null);
  assert.equal(loaded.version, MANIFEST.version);
  assert.equal(loaded.canaryVersion, MANIFEST.canary.version);
  return loaded;
}

function assertWithin(actual, expected, tolerance, what) {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((value, k) => {
    assert.ok(Math.abs(value - expected[k]) <= tolerance, `${what}[${k}]: ${value}, expected ${expected[k]}`);
  });
}

test("the columns and the encoding id are the manifest's", () => {
  for (const entry of [MANIFEST, MANIFEST.canary]) {
    assert.deepEqual(columns(entry.encoding), VECTORS.columns);
    assert.equal(encodingId(entry.encoding), entry.encoding_id);
  }
});

test('every case encodes exactly, scores, routes and acts as the Python client does', async () => {
  const served = await client();
  const cases = VECTORS.cases;
  const { propensities, versions, scores } = await served.serve(
    cases.map((c) => c.context),
    cases.map((c) => c.routing_key),
  );
  const actions = MANIFEST.encoding.actions;
  cases.forEach((c, i) => {
    const what = `case ${i} (${JSON.stringify(c.context)}, ${c.routing_key})`;
    const { data, width } = encode(MANIFEST.encoding, [c.context]);
    const rows = actions.map((_, k) => Array.from(data.subarray(k * width, (k + 1) * width)));
    assert.deepEqual(rows, c.encoded, `${what}: encoded rows`);
    assert.equal(versions[i], c.version, `${what}: version`);
    assert.equal(versions[i] === MANIFEST.canary.version ? 'canary' : 'live', c.arm, `${what}: arm`);
    assertWithin(scores[i], c.scores, 1e-6, `${what}: scores`);
    assert.equal(actions[scores[i].indexOf(Math.max(...scores[i]))], c.greedy_action, `${what}: greedy action`);
    assertWithin(propensities[i], c.propensities, 1e-12, `${what}: propensities`);
  });
  assert.ok(cases.some((c) => c.arm === 'canary') && cases.some((c) => c.arm === 'live'));
});

test("scores() is the live model's: it gives the vectors' scores of every case the live model served", async () => {
  const served = await client();
  const live = await served.scores(VECTORS.cases.filter((c) => c.arm === 'live').map((c) => c.context));
  VECTORS.cases
    .filter((c) => c.arm === 'live')
    .forEach((c, i) => assertWithin(live[i], c.scores, 1e-6, `live case ${i}`));
});

test('every routing case routes exactly as the vectors say', () => {
  for (const r of VECTORS.routing) {
    assert.equal(routesToCanary(r.routing_key, r.canary_version, r.share), r.canary, JSON.stringify(r));
  }
});
