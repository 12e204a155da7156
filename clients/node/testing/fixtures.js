'use strict';
/** A folder standing in for the models bucket, holding manifests and logistic ONNX models the tests choose. */
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { columns, encodingId } = require('../src/encoding');
const { FolderStore } = require('../src/store');
const { logisticModel } = require('./onnx');

const AGENT = 'node-bot';

const ENCODING = {
  context: [
    { name: 'plan', type: 'category', vocabulary: ['free', 'pro'] },
    { name: 'tenure_days', type: 'int', min: 0, max: 3650 },
    { name: 'is_mobile', type: 'bool' },
  ],
  actions: ['faq', 'human', 'docs'],
};

/** Weights that give every column its own effect, so a column out of place changes the scores. */
function weightsFor(encoding, seed) {
  return columns(encoding).map((_, j) => Math.fround(Math.sin(seed * 7 + j * 1.3) * 1.5));
}

const folders = [];
process.on('exit', () => folders.forEach((folder) => fs.rmSync(folder, { recursive: true, force: true })));

/** A fresh folder store, removed when the test process exits. */
function temporaryStore() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'node-client-'));
  folders.push(root);
  return { root, store: new FolderStore(root) };
}

/**
 * Write a model for `version` into the store and return its manifest entry (without `share`). `bytes` replaces
 * the model's bytes (a model of another width, say); `encoding` the entry's encoding.
 */
async function putModel(store, version, { seed = 1, encoding = ENCODING, bytes } = {}) {
  const weights = weightsFor(encoding, seed);
  const bias = -0.3 * seed;
  const body = bytes ?? logisticModel(weights, bias);
  const key = `${AGENT}/models/${version}/model.onnx`;
  await store.putObject(key, body);
  return {
    entry: {
      version,
      encoding_id: encodingId(encoding),
      onnx: { key, sha256: createHash('sha256').update(body).digest('hex') },
      encoding,
    },
    weights,
    bias,
  };
}

/** A schema 2 manifest: the live entry's fields at the top, the canary (with its share) or null. */
function manifestOf(live, canary = null, share = 0.5) {
  return { schema_version: 2, ...live, canary: canary ? { ...canary, share } : null };
}

async function putManifest(store, manifest) {
  await store.putObject(`${AGENT}/manifest.json`, typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
}

/** A store that counts reads per key and fails every call while `down` is set. */
class WatchedStore {
  constructor(store) {
    this.store = store;
    this.reads = [];
    this.down = false;
  }

  async getObject(key) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:8333');
    this.reads.push(key);
    return this.store.getObject(key);
  }

  async putObject(key, body) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:8333');
    return this.store.putObject(key, body);
  }
}

module.exports = { AGENT, ENCODING, WatchedStore, manifestOf, putManifest, putModel, temporaryStore, weightsFor };
