'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');

const run = (tool, input) =>
  spawnSync(process.execPath, [path.join(__dirname, '..', 'bin', tool)], { input, encoding: 'utf8' });

test('a bad request exits 2 and says what is wrong, before anything is read or written', () => {
  const s3 = {
    endpoint: 'http://127.0.0.1:9',
    accessKeyId: 'a',
    secretAccessKey: 'b',
    bucket: 'b',
    agentId: 'node-bot',
  };
  const cases = [
    ['serve.js', 'not json', /the request on stdin is not JSON/],
    ['serve.js', '[]', /the request on stdin is not a JSON object/],
    ['serve.js', JSON.stringify({ ...s3, contexts: {} }), /request field 'contexts' is \{\}: expected an array/],
    ['serve.js', JSON.stringify({ ...s3, contexts: [{}], routingKeys: [] }), /'routingKeys' must be 1 strings/],
    ['serve.js', JSON.stringify({ ...s3, bucket: '', contexts: [] }), /request field 'bucket'/],
    ['write-day.js', JSON.stringify({ ...s3, writerId: 'w', events: [] }), /request field 'events'/],
    ['write-day.js', JSON.stringify({ ...s3, writerId: 'w', events: [{ session_id: 's' }] }), /event field 'context'/],
  ];
  for (const [tool, input, message] of cases) {
    const result = run(tool, input);
    assert.equal(result.status, 2, `${tool} ${input}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
  }
});

test('an S3 server that does not answer is an answer of serve.js, not a crash', () => {
  const request = {
    endpoint: 'http://127.0.0.1:9',
    accessKeyId: 'a',
    secretAccessKey: 'b',
    bucket: 'models',
    agentId: 'node-bot',
    contexts: [{}],
    routingKeys: ['s'],
  };
  const result = run('serve.js', JSON.stringify(request));
  assert.equal(result.status, 0, result.stderr);
  const answer = JSON.parse(result.stdout);
  assert.deepEqual(
    { ...answer, lastError: undefined },
    {
      polled: false,
      version: null,
      canaryVersion: null,
      lastError: undefined,
      scores: null,
      propensities: null,
      versions: null,
    },
  );
  assert.match(answer.lastError, /GET s3:\/\/models\/node-bot\/manifest.json failed/);
});
