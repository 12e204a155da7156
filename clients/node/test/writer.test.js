'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { LogWriter } = require('../src/writer');
const { AGENT, WatchedStore, temporaryStore } = require('../testing/fixtures');

const EVENT = {
  session_id: 's-1',
  model_version: 'v1',
  context: { plan: 'pro', tenure_days: 40, is_mobile: null },
  action: 'faq',
  propensity: 0.925,
  reward: 1,
};

function objects(root) {
  return fs
    .readdirSync(root, { recursive: true })
    .filter((name) => fs.statSync(path.join(root, name)).isFile())
    .sort();
}

const linesOf = (root, key) =>
  fs.readFileSync(path.join(root, key), 'utf8').split('\n').filter(Boolean).map(JSON.parse);

test("events go to their UTC day's folder as <writer id>-<sequence>.jsonl, with every contract field", async () => {
  const { root, store } = temporaryStore();
  const writer = new LogWriter({ store, agentId: AGENT, writerId: 'replica-a' });
  // 23:30 on 29 November at UTC-5 is already 30 November in UTC: the folder is the UTC date.
  const late = writer.log({ ...EVENT, ts: new Date('2026-11-29T23:30:00-05:00') });
  const early = writer.log({ ...EVENT, event_id: 'e-2', ts: '2026-11-29T13:04:05.123Z', model_version: undefined });
  assert.equal(late.ts, '2026-11-30T04:30:00.000Z');
  assert.match(late.event_id, /^replica-a-[0-9a-f-]{36}$/);
  assert.deepEqual(await writer.flush(), [
    `${AGENT}/dt=2026-11-30/replica-a-000000.jsonl`,
    `${AGENT}/dt=2026-11-29/replica-a-000001.jsonl`,
  ]);
  const [written] = linesOf(root, `${AGENT}/dt=2026-11-29/replica-a-000001.jsonl`);
  assert.deepEqual(written, {
    ...EVENT,
    event_id: 'e-2',
    ts: '2026-11-29T13:04:05.123Z',
    agent_id: AGENT,
    model_version: null,
  });
  assert.deepEqual(Object.keys(written), [
    'event_id',
    'ts',
    'agent_id',
    'session_id',
    'model_version',
    'context',
    'action',
    'propensity',
    'reward',
  ]);
  assert.deepEqual(early, written);
  const now = writer.log(EVENT); // no ts: now
  assert.ok(Math.abs(Date.parse(now.ts) - Date.now()) < 5000);
});

test("closeDay writes the day's files, then its _SUCCESS", async () => {
  const { root, store } = temporaryStore();
  const writer = new LogWriter({ store, agentId: AGENT, writerId: 'replica-a', maxEventsPerFile: 2 });
  for (let i = 0; i < 5; i += 1) writer.log({ ...EVENT, event_id: `e-${i}`, ts: `2026-11-29T10:00:0${i}.000Z` });
  const keys = await writer.closeDay('2026-11-29');
  const day = `${AGENT}/dt=2026-11-29/`;
  assert.deepEqual(keys, [
    `${day}replica-a-000000.jsonl`,
    `${day}replica-a-000001.jsonl`,
    `${day}replica-a-000002.jsonl`,
    `${day}_SUCCESS`,
  ]);
  assert.deepEqual(objects(root), keys.slice().sort());
  assert.deepEqual(
    keys.slice(0, 3).flatMap((key) => linesOf(root, key).map((e) => e.event_id)),
    ['e-0', 'e-1', 'e-2', 'e-3', 'e-4'],
  );
  assert.equal(fs.readFileSync(path.join(root, `${day}_SUCCESS`)).length, 0);
  await assert.rejects(writer.closeDay('29/11/2026'), /day "29\/11\/2026" is not YYYY-MM-DD/);
});

test('a failed upload is retried under the same name with the same bytes: no event is written twice', async () => {
  const { root, store } = temporaryStore();
  const watched = new WatchedStore(store);
  const writer = new LogWriter({ store: watched, agentId: AGENT, writerId: 'replica-a' });
  writer.log({ ...EVENT, event_id: 'e-1', ts: '2026-11-29T10:00:00.000Z' });
  watched.down = true;
  await assert.rejects(writer.flush(), /ECONNREFUSED/);
  writer.log({ ...EVENT, event_id: 'e-2', ts: '2026-11-29T11:00:00.000Z' }); // logged while the store was down
  watched.down = false;
  assert.deepEqual(await writer.closeDay('2026-11-29'), [
    `${AGENT}/dt=2026-11-29/replica-a-000000.jsonl`,
    `${AGENT}/dt=2026-11-29/replica-a-000001.jsonl`,
    `${AGENT}/dt=2026-11-29/_SUCCESS`,
  ]);
  const ids = objects(root)
    .filter((key) => key.endsWith('.jsonl'))
    .flatMap((key) => linesOf(root, key).map((e) => e.event_id));
  assert.deepEqual(ids, ['e-1', 'e-2']);
});

test('the same writer and first sequence name the same objects: a rerun overwrites', async () => {
  const { root, store } = temporaryStore();
  for (let run = 0; run < 2; run += 1) {
    const writer = new LogWriter({ store, agentId: AGENT, writerId: 'replica-a', firstSequence: 7 });
    writer.log({ ...EVENT, event_id: 'e-1', ts: '2026-11-29T10:00:00.000Z' });
    await writer.closeDay('2026-11-29');
  }
  assert.deepEqual(objects(root), [`${AGENT}/dt=2026-11-29/_SUCCESS`, `${AGENT}/dt=2026-11-29/replica-a-000007.jsonl`]);
});

test('an event that breaks the log contract is refused when it is logged, naming the field', () => {
  const writer = new LogWriter({ store: null, agentId: AGENT, writerId: 'replica-a' });
  const cases = [
    [{ ...EVENT, propensity: 0 }, /'propensity' is 0: expected a number in \(0, 1\]/],
    [{ ...EVENT, propensity: '0.5' }, /'propensity'/],
    [{ ...EVENT, reward: true }, /'reward' is true: expected 0 or 1/],
    [{ ...EVENT, action: '' }, /'action'/],
    [{ ...EVENT, session_id: 42 }, /'session_id' is 42/],
    [{ ...EVENT, agent_id: 'other-bot' }, /'agent_id' is "other-bot": expected this writer's agent node-bot/],
    [{ ...EVENT, model_version: 3 }, /'model_version'/],
    [{ ...EVENT, context: { plan: ['pro'] } }, /'context.plan' is \["pro"\]/],
    [{ ...EVENT, context: { score: Number.NaN } }, /'context.score' is NaN/],
    [{ ...EVENT, ts: '2026-11-29T13:04:05.123456789Z' }, /'ts' is "2026-11-29T13:04:05.123456789Z": expected a Date/],
    [{ ...EVENT, ts: '2026-11-29 13:04:05' }, /'ts'/],
    [{ ...EVENT, ts: new Date('not a date') }, /'ts'/],
    [{ ...EVENT, modelVersion: 'v1' }, /event field 'modelVersion' is not in the log contract/],
    [[EVENT], /an event is an object/],
  ];
  for (const [event, message] of cases) assert.throws(() => writer.log(event), { name: 'TypeError', message });
  assert.throws(() => new LogWriter({ agentId: AGENT, writerId: '../up' }), /writer id "..\/up"/);
  assert.throws(() => new LogWriter({ agentId: 'Support Bot', writerId: 'a' }), /agent id "Support Bot"/);
});
