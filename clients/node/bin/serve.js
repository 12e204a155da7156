#!/usr/bin/env node
'use strict';
/**
 * Poll an agent's manifest once and serve a batch of requests, for tests and for a look at what an agent would do:
 *
 *   echo '{"endpoint": "http://127.0.0.1:8333", "region": "us-east-1", "accessKeyId": "...", "secretAccessKey": "...",
 *          "bucket": "agent-models", "agentId": "support-bot", "exploration": 0.1,
 *          "contexts": [{"channel": "chat"}], "routingKeys": ["s-1"]}' | bin/serve.js
 *
 * prints {"polled", "version", "canaryVersion", "lastError", "scores" (the live model's, contexts x actions),
 * "propensities" (each request's arm's policy), "versions" (the arm that acted)}. A refused manifest is an answer
 * (exit 0, `lastError` says why, nothing is scored when no model could be loaded); a bad request exits 2.
 */
const { AgentModelClient } = require('../src/client');
const { BadRequest, isText, main, required, storeFrom } = require('../src/cli');

main(async (request) => {
  const contexts = required(request, 'contexts', Array.isArray, 'expected an array of contexts');
  const routingKeys = request.routingKeys ?? contexts.map((_, i) => `request-${i}`);
  if (!Array.isArray(routingKeys) || !routingKeys.every(isText) || routingKeys.length !== contexts.length) {
    throw new BadRequest(`request field 'routingKeys' must be ${contexts.length} strings, one per context`);
  }
  const client = new AgentModelClient({
    agentId: required(request, 'agentId', isText, 'expected the agent id'),
    store: storeFrom(request),
    exploration: request.exploration ?? 0.1,
  });
  const polled = await client.poll();
  const answer = { polled, version: client.version, canaryVersion: client.canaryVersion, lastError: client.lastError };
  if (!client.version) return { ...answer, scores: null, propensities: null, versions: null };
  const scores = await client.scores(contexts);
  const { propensities, versions } = await client.serve(contexts, routingKeys);
  return { ...answer, scores, propensities, versions };
});
