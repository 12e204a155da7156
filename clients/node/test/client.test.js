'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { AgentModelClient, NoModel } = require('../src/client');
const { encode } = require('../src/encoding');
const { greedyPropensities, routesToCanary } = require('../src/policy');
const {
  AGENT,
  ENCODING,
  WatchedStore,
  manifestOf,
  putManifest,
  putModel,
  temporaryStore,
} = require('../testing/fixtures');
const { logistic, logisticModel } = require('../testing/onnx');

const CONTEXTS = [
  { plan: 'pro', tenure_days: 400, is_mobile: true },
  { plan: 'free', tenure_days: 12, is_mobile: false },
  { plan: 'enterprise', tenure_days: null },
  {},
];
const KEYS = CONTEXTS.map((_, i) => `session-${i}`);

/** What the logistic model of `model` gives for every action of each context, computed here in float64. */
function expectedScores({ weights, bias }, contexts) {
  const { data, width } = encode(ENCODING, contexts);
  const actions = ENCODING.actions.length;
  return contexts.map((_, i) =>
    ENCODING.actions.map((__, k) =>
      logistic(weights, bias, data.subarray((i * actions + k) * width, (i * actions + k + 1) * width)),
    ),
  );
}

function assertClose(actual, expected, tolerance = 1e-6) {
  assert.equal(actual.length, expected.length);
  actual.forEach((row, i) =>
    row.forEach((value, k) => {
      assert.ok(Math.abs(value - expected[i][k]) <= tolerance, `[${i}][${k}]: ${value} vs ${expected[i][k]}`);
    }),
  );
}

async function clientWith(live, canary = null, share = 0.5) {
  const { store } = temporaryStore();
  const models = { live: await putModel(store, live, { seed: 1 }) };
  if (canary) models.canary = await putModel(store, canary, { seed: 2 });
  await putManifest(store, manifestOf(models.live.entry, models.canary?.entry, share));
  const watched = new WatchedStore(store);
  return { client: new AgentModelClient({ agentId: AGENT, store: watched }), store, watched, models };
}

test('before a model is loaded, serving says why', async () => {
  const { store } = temporaryStore();
  const client = new AgentModelClient({ agentId: AGENT, store });
  await assert.rejects(client.scores(CONTEXTS), {
    name: 'NoModel',
    message: /no model loaded for node-bot: not polled yet/,
  });
  assert.equal(await client.poll(), false); // no manifest yet
  assert.match(client.lastError, /NoSuchKey|ENOENT|no such file/);
  await assert.rejects(client.serve(CONTEXTS, KEYS), NoModel);
});

test('the live model scores every action of each context from the manifest alone', async () => {
  const { client, models } = await clientWith('v1');
  assert.equal(await client.poll(), true);
  assert.equal(client.version, 'v1');
  assert.equal(client.lastError, null);
  assertClose(await client.scores(CONTEXTS), expectedScores(models.live, CONTEXTS));
});

test('serving is greedy with uniform exploration, and choose draws from those propensities', async () => {
  const { store } = temporaryStore();
  const live = await putModel(store, 'v1', { seed: 1 });
  await putManifest(store, manifestOf(live.entry));
  const client = new AgentModelClient({ agentId: AGENT, store, exploration: 0.3 });
  await client.poll();
  const scores = await client.scores(CONTEXTS);
  const { propensities, versions } = await client.serve(CONTEXTS, KEYS);
  assert.deepEqual(
    propensities,
    scores.map((row) => greedyPropensities(row, 0.3)),
  );
  assert.deepEqual(versions, ['v1', 'v1', 'v1', 'v1']);

  // All three actions have a propensity (0.1 at least): the draw's extremes take the first and the last.
  assert.deepEqual(await client.choose(CONTEXTS[0], KEYS[0], () => 0), {
    action: 'faq',
    propensity: propensities[0][0],
    version: 'v1',
  });
  assert.deepEqual(await client.choose(CONTEXTS[0], KEYS[0], () => 0.999999), {
    action: 'docs',
    propensity: propensities[0][2],
    version: 'v1',
  });
  const { action } = await client.choose(CONTEXTS[0], KEYS[0]); // Math.random by default
  assert.ok(ENCODING.actions.includes(action));
});

test('a canary serves the share of routing keys its hash gives it, and each request logs the arm that acted', async () => {
  const { client, models } = await clientWith('v1', 'v2', 0.5);
  assert.equal(await client.poll(), true);
  assert.equal(client.canaryVersion, 'v2');
  const keys = Array.from({ length: 40 }, (_, i) => `session-${i}`);
  const contexts = keys.map((_, i) => CONTEXTS[i % CONTEXTS.length]);
  const { propensities, versions } = await client.serve(contexts, keys);
  const routed = keys.map((key) => routesToCanary(key, 'v2', 0.5));
  assert.deepEqual(
    versions,
    routed.map((canary) => (canary ? 'v2' : 'v1')),
  );
  assert.ok(routed.some(Boolean) && !routed.every(Boolean));
  const [live, canary] = [expectedScores(models.live, contexts), expectedScores(models.canary, contexts)];
  propensities.forEach((row, i) => {
    assert.deepEqual(row, greedyPropensities((routed[i] ? canary : live)[i], 0.1));
  });
  assert.deepEqual(await client.scores(contexts), await client.scores(contexts)); // scores are the live model's
  assertClose(await client.scores(contexts), live);
});

test('an unchanged manifest is not read again, and a promoted canary is not downloaded again', async () => {
  const { client, store, watched, models } = await clientWith('v1', 'v2', 0.2);
  await client.poll();
  const reads = watched.reads.length;
  assert.equal(await client.poll(), false);
  assert.deepEqual(watched.reads.slice(reads), [`${AGENT}/manifest.json`]); // the manifest only, same ETag

  await putManifest(store, manifestOf(models.canary.entry)); // promotion: the canary becomes the live model
  watched.reads.length = 0;
  assert.equal(await client.poll(), true);
  assert.deepEqual(watched.reads, [`${AGENT}/manifest.json`]);
  assert.equal(client.version, 'v2');
  assert.equal(client.canaryVersion, null);
  assertClose(await client.scores(CONTEXTS), expectedScores(models.canary, CONTEXTS));
});

test('a manifest the client cannot use leaves the current model serving, and says why', async () => {
  const { client, store, models } = await clientWith('v1');
  await client.poll();
  const bad = await putModel(store, 'v3', { seed: 3 });
  const tampered = { ...bad.entry, onnx: { ...bad.entry.onnx, sha256: 'f'.repeat(64) } };
  const otherEncoding = { ...bad.entry, encoding: { ...ENCODING, actions: ['faq', 'human'] } };
  const wrongWidth = await putModel(store, 'v4', { bytes: logisticModel([0.1, 0.2], 0) });
  const wrongNames = await putModel(store, 'v5', {
    bytes: logisticModel(models.live.weights, 0, { input: 'x', output: 'reward_probability' }),
  });
  const cases = [
    [
      { ...manifestOf(bad.entry), schema_version: 3 },
      'manifest not used, current model kept: manifest schema_version 3: this client reads up to 2',
    ],
    [
      (({ onnx, ...rest }) => rest)(manifestOf(bad.entry)),
      "manifest not used, current model kept: the live entry's onnx is missing",
    ],
    [manifestOf(tampered), `has sha256 ${bad.entry.onnx.sha256}, the manifest pins ${'f'.repeat(64)}`],
    [manifestOf(otherEncoding), "the live entry's encoding fingerprints to"],
    [manifestOf(wrongWidth.entry), 'model v4 does not score the manifest'],
    [
      manifestOf(wrongNames.entry),
      'model v5 takes ["x"] and gives ["reward_probability"], not ["features"] and ["reward_probability"]',
    ],
    [manifestOf({ ...bad.entry, onnx: { ...bad.entry.onnx, key: `${AGENT}/models/v9/model.onnx` } }), 'NoSuchKey'],
    [manifestOf(bad.entry, bad.entry, 7), "the canary's share is 7, not a number in [0, 1]"],
    ['{"schema_version": 2, "version": ', 'SyntaxError'],
    ['[1, 2]', 'the manifest is [1,2], not an object'],
  ];
  for (const [manifest, reason] of cases) {
    await putManifest(store, manifest);
    assert.equal(await client.poll(), false, reason);
    assert.ok(client.lastError?.includes(reason), `expected "${reason}" in: ${client.lastError}`);
    assert.equal(client.version, 'v1');
    assertClose(await client.scores(CONTEXTS), expectedScores(models.live, CONTEXTS));
  }
});

test('storage trouble never reaches the agent: poll returns false and the model keeps serving', async () => {
  const { client, watched, store, models } = await clientWith('v1');
  await client.poll();
  watched.down = true;
  await putManifest(store, manifestOf((await putModel(store, 'v2', { seed: 2 })).entry));
  assert.equal(await client.poll(), false);
  assert.match(client.lastError, /ECONNREFUSED/);
  assertClose(await client.scores(CONTEXTS), expectedScores(models.live, CONTEXTS));
  watched.down = false;
  assert.equal(await client.poll(), true); // tried again once the store answers
  assert.equal(client.version, 'v2');
  assert.equal(client.lastError, null);
});

test('a canary that fails to load is never served, and the manifest still updates the live model', async () => {
  const { store } = temporaryStore();
  const live = await putModel(store, 'v1', { seed: 1 });
  const canary = await putModel(store, 'v2', { seed: 2 });
  await putManifest(
    store,
    manifestOf(live.entry, { ...canary.entry, onnx: { ...canary.entry.onnx, sha256: '0'.repeat(64) } }, 1),
  );
  const client = new AgentModelClient({ agentId: AGENT, store });
  assert.equal(await client.poll(), true);
  assert.equal(client.version, 'v1');
  assert.equal(client.canaryVersion, null);
  assert.match(
    client.lastError,
    /^canary v2 not served: ModelRefused: model v2: .* has sha256 [0-9a-f]{64}, the manifest pins 0{64}$/,
  );
  const { versions } = await client.serve(CONTEXTS, KEYS); // share 1, yet every request is the live model's
  assert.deepEqual(versions, ['v1', 'v1', 'v1', 'v1']);
});

test('overlapping polls share one read of the manifest', async () => {
  const { client, watched } = await clientWith('v1');
  const [first, second] = await Promise.all([client.poll(), client.poll()]);
  assert.deepEqual([first, second], [true, true]);
  assert.equal(watched.reads.filter((key) => key.endsWith('manifest.json')).length, 1);
});

test('a bad context fails the call with the feature named, whichever arm serves it', async () => {
  const { client } = await clientWith('v1', 'v2', 1);
  await client.poll();
  await assert.rejects(client.serve([{ tenure_days: 'long' }], ['s']), { name: 'TypeError', message: /'tenure_days'/ });
  await assert.rejects(client.serve([{}], ['a', 'b']), /1 contexts but 2 routing keys/);
  assert.throws(() => new AgentModelClient({ agentId: 'Bad/Id', store: null }), /agent id "Bad\/Id"/);
  assert.throws(() => new AgentModelClient({ agentId: AGENT, store: null, exploration: 2 }), /exploration 2/);
});
