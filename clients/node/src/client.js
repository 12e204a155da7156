'use strict';
/**
 * The agent's side of the manifest, in Node.js: load the live model (and a canary) safely, route, and keep serving.
 *
 * The same contract as the Python client (include/agent_retraining/serving/client.py): poll the manifest, download
 * each ONNX model and check its sha256 and encoding, and only then swap it in. An S3 outage, a tampered or missing
 * model, a manifest of a newer schema leave the current model serving; the reason is in `lastError`. A canary that
 * fails its checks is never served: the live model keeps every request.
 *
 *   const client = new AgentModelClient({ agentId: 'support-bot', store: new S3Store({ bucket: 'agent-models' }) });
 *   await client.poll();                                                   // every few minutes
 *   const { action, propensity, version } = await client.choose(context, sessionId);   // log all three
 */
const { createHash } = require('node:crypto');
const ort = require('onnxruntime-node');

const { encode, encodeContext } = require('./encoding');
const { manifestProblem } = require('./manifest');
const { draw, greedyPropensities, routesToCanary } = require('./policy');

const AGENT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const INPUT = 'features';
const OUTPUT = 'reward_probability';
// One thread per run, as the Python client: a request's scores are the same every time, however the work would
// have been split.
const SESSION_OPTIONS = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  logSeverityLevel: 3,
};

/** No model has been loaded yet (no manifest, or every model so far was refused). */
class NoModel extends Error {
  constructor(message) {
    super(message);
    this.name = 'NoModel';
  }
}

/** A model that cannot serve: its bytes, its encoding or its shape. It stays so until the manifest changes. */
class ModelRefused extends Error {
  constructor(message) {
    super(message);
    this.name = 'ModelRefused';
  }
}

/** P(reward = 1) of every action for each context: an array (contexts) of arrays (actions). */
async function runModel(model, contexts) {
  const { data, rows, width } = encode(model.encoding, contexts);
  const actions = model.encoding.actions.length;
  const outputs = await model.session.run({ [INPUT]: new ort.Tensor('float32', data, [rows, width]) });
  const probabilities = outputs[OUTPUT].data;
  if (probabilities.length !== rows) {
    throw new ModelRefused(`model ${model.version} gave ${probabilities.length} ${OUTPUT} values for ${rows} rows`);
  }
  return contexts.map((_, i) => Array.from(probabilities.subarray(i * actions, (i + 1) * actions)));
}

class AgentModelClient {
  constructor({ agentId, store, exploration = 0.1 }) {
    if (!AGENT_ID.test(agentId)) throw new TypeError(`agent id ${JSON.stringify(agentId)} is not ${AGENT_ID}`);
    if (!(typeof exploration === 'number' && exploration >= 0 && exploration <= 1)) {
      throw new TypeError(`exploration ${exploration} is not a number in [0, 1]`);
    }
    this.agentId = agentId;
    this.store = store;
    this.exploration = exploration;
    this.manifestKey = `${agentId}/manifest.json`;
    this.live = null;
    this.canary = null; // a loaded canary: {model, share}
    this.manifestEtag = null; // the manifest last acted on: served, or refused until it changes
    this.lastError = null;
    this.polling = null;
  }

  /** The live model's version, or null before one is loaded. */
  get version() {
    return this.live ? this.live.version : null;
  }

  get canaryVersion() {
    return this.canary ? this.canary.model.version : null;
  }

  /**
   * Load the manifest's models if the manifest changed; true when what serves changed. Never throws: whatever
   * goes wrong keeps the current models serving and is told in `lastError`. Overlapping calls share one poll.
   */
  poll() {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  async pollOnce() {
    let etag;
    let manifest;
    let live;
    try {
      const response = await this.store.getObject(this.manifestKey);
      etag = response.etag;
      if (etag !== undefined && etag === this.manifestEtag) return false;
      manifest = JSON.parse(response.body.toString('utf8'));
      const problem = manifestProblem(manifest);
      if (problem) {
        // It stays wrong until the manifest changes: not fetched again before that.
        this.manifestEtag = etag;
        this.lastError = `manifest not used, current model kept: ${problem}`;
        return false;
      }
      live = await this.load(manifest, this.live, this.canary?.model);
    } catch (error) {
      // A refused model stays refused until the manifest changes (models are written once, under new keys);
      // anything else (storage, a manifest caught mid-write) is tried again at the next poll.
      const refused = error instanceof ModelRefused;
      if (refused) this.manifestEtag = etag;
      this.lastError = `${refused ? 'manifest not used, current model kept: ' : ''}${error.name}: ${error.message}`;
      return false;
    }
    let canary = null;
    let error = null;
    let retry = false;
    const entry = manifest.canary;
    if (entry) {
      try {
        canary = { model: await this.load(entry, this.canary?.model, this.live, live), share: entry.share };
      } catch (failure) {
        // Never served; the live model keeps every request. A refused model stays refused until the manifest
        // changes; storage trouble is tried again at the next poll.
        error = `canary ${entry.version} not served: ${failure.name}: ${failure.message}`;
        retry = !(failure instanceof ModelRefused);
      }
    }
    const before = [this.version, this.canaryVersion];
    this.live = live;
    this.canary = canary;
    this.manifestEtag = retry ? null : etag;
    this.lastError = error;
    return before[0] !== this.version || before[1] !== this.canaryVersion;
  }

  /**
   * The entry's model: one already loaded with the same version and ONNX sha256 (a promoted canary, say), or
   * downloaded, verified and loaded. It encodes with the entry's encoding either way: the manifest at hand is what
   * the client serves.
   */
  async load(entry, ...loaded) {
    const same = loaded.find((model) => model && model.version === entry.version && model.sha256 === entry.onnx.sha256);
    if (same) return { ...same, encoding: entry.encoding };
    const { body } = await this.store.getObject(entry.onnx.key);
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (sha256 !== entry.onnx.sha256) {
      throw new ModelRefused(
        `model ${entry.version}: ${entry.onnx.key} has sha256 ${sha256}, the manifest pins ${entry.onnx.sha256}`,
      );
    }
    let session;
    try {
      session = await ort.InferenceSession.create(body, SESSION_OPTIONS);
    } catch (failure) {
      throw new ModelRefused(
        `model ${entry.version}: ${entry.onnx.key} is not an ONNX model onnxruntime can run: ${failure.message}`,
      );
    }
    const [inputs, outputs] = [session.inputNames, session.outputNames];
    if (inputs.length !== 1 || inputs[0] !== INPUT || outputs.length !== 1 || outputs[0] !== OUTPUT) {
      throw new ModelRefused(
        `model ${entry.version} takes ${JSON.stringify(inputs)} and gives ${JSON.stringify(outputs)}, ` +
          `not ["${INPUT}"] and ["${OUTPUT}"]`,
      );
    }
    const model = { version: entry.version, sha256, encoding: entry.encoding, session };
    // One context with every feature missing: a model of another width fails here, at load time, instead of on the
    // agent's first request.
    try {
      await runModel(model, [{}]);
    } catch (failure) {
      throw new ModelRefused(`model ${entry.version} does not score the manifest's encoding: ${failure.message}`);
    }
    return model;
  }

  requireLive() {
    if (!this.live) throw new NoModel(`no model loaded for ${this.agentId}: ${this.lastError || 'not polled yet'}`);
    return this.live;
  }

  /** The live model's P(reward = 1) of every action for each context: contexts x actions. */
  async scores(contexts) {
    return runModel(this.requireLive(), contexts);
  }

  /** Which of these routing keys the canary serves (none while there is no canary). */
  inCanary(routingKeys) {
    const { canary } = this;
    return routingKeys.map((key) => Boolean(canary) && routesToCanary(String(key), canary.model.version, canary.share));
  }

  /**
   * The arm that serves each request and its policy's propensities. The models are taken once, up front, so a
   * poll that swaps them while the arms score cannot mix two manifests in one answer.
   */
  async act(contexts, routingKeys) {
    if (contexts.length !== routingKeys.length) {
      throw new TypeError(`${contexts.length} contexts but ${routingKeys.length} routing keys`);
    }
    const live = this.requireLive();
    const canary = this.canary?.model;
    const routed = this.inCanary(routingKeys);
    const scores = new Array(contexts.length);
    for (const [model, mine] of [
      [live, false],
      [canary, true],
    ]) {
      const rows = routed.flatMap((toCanary, i) => (toCanary === mine ? [i] : []));
      if (rows.length) {
        const armScores = await runModel(
          model,
          rows.map((i) => contexts[i]),
        );
        rows.forEach((i, j) => {
          scores[i] = armScores[j];
        });
      }
    }
    return {
      scores,
      propensities: scores.map((row) => greedyPropensities(row, this.exploration)),
      models: routed.map((toCanary) => (toCanary ? canary : live)),
    };
  }

  /**
   * The policy that acts on each request (propensities, contexts x actions), greedy on its arm's model and
   * exploring uniformly with probability `exploration`; the model version that acted, to log; and the scores that
   * policy was greedy on (its arm's model's, contexts x actions).
   */
  async serve(contexts, routingKeys) {
    const { scores, propensities, models } = await this.act(contexts, routingKeys);
    return { propensities, versions: models.map((model) => model.version), scores };
  }

  /**
   * The action to take in one context, the probability it had (log it as propensity) and the version that acted
   * (log it as model_version). `random` gives one uniform draw in [0, 1).
   */
  async choose(context, routingKey, random = Math.random) {
    const { propensities, models } = await this.act([context], [routingKey]);
    const index = draw(propensities[0], random());
    return {
      action: models[0].encoding.actions[index],
      propensity: propensities[0][index],
      version: models[0].version,
    };
  }
}

module.exports = { AgentModelClient, ModelRefused, NoModel };
