#!/usr/bin/env node
'use strict';
/**
 * Write events to an agent's logs as the log contract asks, then each of their days' `_SUCCESS`:
 *
 *   echo '{"endpoint": "http://127.0.0.1:8333", "region": "us-east-1", "accessKeyId": "...", "secretAccessKey": "...",
 *          "bucket": "agent-logs", "agentId": "support-bot", "writerId": "replica-a", "events": [...]}' \
 *     | bin/write-day.js
 *
 * Optional: "firstSequence" (default 0) and "maxEventsPerFile". The same request again (same writer id, same first
 * sequence) writes the same objects under the same names: a retry overwrites. Prints {"keys": [...]} in the order
 * written; a bad request (or event) exits 2, a failed write 1.
 */
const { LogWriter } = require('../src/writer');
const { isText, main, required, storeFrom } = require('../src/cli');

main(async (request) => {
  const events = required(request, 'events', (v) => Array.isArray(v) && v.length > 0, 'expected a non-empty array');
  const writer = new LogWriter({
    store: storeFrom(request),
    agentId: required(request, 'agentId', isText, 'expected the agent id'),
    writerId: required(request, 'writerId', isText, 'expected the writer id'),
    firstSequence: request.firstSequence,
    maxEventsPerFile: request.maxEventsPerFile,
  });
  const days = new Set(events.map((event) => writer.log(event).ts.slice(0, 10)));
  const keys = [];
  for (const day of [...days].sort()) keys.push(...(await writer.closeDay(day)));
  return { keys };
});
