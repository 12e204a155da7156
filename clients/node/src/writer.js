'use strict';
/**
 * An agent-side log writer that follows docs/log-contract.md, for agents written in Node.js.
 *
 * Events are checked when they are logged (a bad event is the agent's bug, and is cheaper to see there than as a
 * refused day the next morning), buffered per UTC day and written as JSON Lines objects
 *
 *   <agent_id>/dt=<UTC date of ts>/<writer id>-<sequence>.jsonl
 *
 * Each object's name and bytes are fixed when `flush` takes the events, so a failed upload is retried (by the next
 * `flush`) under the same name with the same bytes: a retry overwrites, it never writes the events twice under
 * another name, which would repeat their event ids and refuse the day. The writer id must therefore be unique
 * among the agent's replicas and among a replica's runs (a restarted replica starting its sequence at 0 again
 * would overwrite its earlier files): a pod name plus its start time, say, or `firstSequence` saved across runs.
 *
 *   const writer = new LogWriter({ store, agentId: 'support-bot', writerId: `${podName}-${startedAt}` });
 *   writer.log({ session_id, model_version: version, context, action, propensity, reward });
 *   await writer.flush();            // every minute or so, and on shutdown
 *   await writer.closeDay('2026-11-29');   // after the day's last event: writes the day's _SUCCESS
 */
const { randomUUID } = require('node:crypto');

const AGENT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const WRITER_ID = /^[A-Za-z0-9][A-Za-z0-9._=-]{0,99}$/; // a safe part of an object key
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const FIELDS = [
  'event_id',
  'ts',
  'agent_id',
  'session_id',
  'model_version',
  'context',
  'action',
  'propensity',
  'reward',
];
const SEQUENCE_DIGITS = 6; // zero-padded, so a day's objects list in the order they were written

function describe(value) {
  if (value === undefined) return 'missing';
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value)); // NaN is no JSON
}

function refuse(field, value, expected) {
  return new TypeError(`event field '${field}' is ${describe(value)}: expected ${expected}`);
}

const isText = (value) => typeof value === 'string' && value.length > 0;
const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** `ts` as the contract's UTC form with milliseconds, as Date.toISOString() writes it. */
function timestamp(ts) {
  if (ts === undefined) return new Date().toISOString();
  if (ts instanceof Date && !Number.isNaN(ts.getTime())) return ts.toISOString();
  if (typeof ts === 'string' && !Number.isNaN(Date.parse(ts)) && new Date(ts).toISOString() === ts) return ts;
  throw refuse('ts', ts, 'a Date, or a string as Date.toISOString() writes it (UTC, e.g. 2026-11-29T13:04:05.123Z)');
}

/** The event as it is written: every contract field, in the contract's order, each checked. */
function normalised(event, agentId, writerId) {
  if (!isObject(event)) throw new TypeError(`an event is an object, not ${describe(event)}`);
  const unknown = Object.keys(event).filter((name) => !FIELDS.includes(name));
  if (unknown.length) throw new TypeError(`event field '${unknown[0]}' is not in the log contract (${FIELDS})`);
  const written = {
    event_id: event.event_id ?? `${writerId}-${randomUUID()}`,
    ts: timestamp(event.ts),
    agent_id: event.agent_id ?? agentId,
    session_id: event.session_id,
    model_version: event.model_version ?? null,
    context: event.context,
    action: event.action,
    propensity: event.propensity,
    reward: event.reward,
  };
  if (!isText(written.event_id)) throw refuse('event_id', written.event_id, 'a non-empty string');
  if (written.agent_id !== agentId) throw refuse('agent_id', written.agent_id, `this writer's agent ${agentId}`);
  if (!isText(written.session_id)) throw refuse('session_id', written.session_id, 'a non-empty string');
  if (written.model_version !== null && !isText(written.model_version)) {
    throw refuse('model_version', written.model_version, 'the version that acted, or null');
  }
  if (!isObject(written.context)) throw refuse('context', written.context, 'an object of feature values');
  for (const [name, value] of Object.entries(written.context)) {
    const scalar = value === null || ['string', 'boolean'].includes(typeof value) || Number.isFinite(value);
    if (!scalar) throw refuse(`context.${name}`, value, 'a string, a finite number, a boolean or null');
  }
  if (!isText(written.action)) throw refuse('action', written.action, 'a non-empty string');
  const { propensity, reward } = written;
  if (!(typeof propensity === 'number' && propensity > 0 && propensity <= 1)) {
    throw refuse('propensity', propensity, 'a number in (0, 1], the probability the policy gave the action');
  }
  if (reward !== 0 && reward !== 1) throw refuse('reward', reward, '0 or 1');
  return written;
}

class LogWriter {
  constructor({ store, agentId, writerId, maxEventsPerFile = 100_000, firstSequence = 0 }) {
    if (!AGENT_ID.test(agentId)) throw new TypeError(`agent id ${describe(agentId)} is not ${AGENT_ID}`);
    if (!WRITER_ID.test(writerId) || writerId.includes('..')) {
      throw new TypeError(`writer id ${describe(writerId)} is not ${WRITER_ID} (it names objects)`);
    }
    if (!(Number.isSafeInteger(maxEventsPerFile) && maxEventsPerFile > 0)) {
      throw new TypeError(`maxEventsPerFile ${describe(maxEventsPerFile)} is not a positive integer`);
    }
    if (!(Number.isSafeInteger(firstSequence) && firstSequence >= 0)) {
      throw new TypeError(`firstSequence ${describe(firstSequence)} is not a non-negative integer`);
    }
    this.store = store;
    this.agentId = agentId;
    this.writerId = writerId;
    this.maxEventsPerFile = maxEventsPerFile;
    this.sequence = firstSequence; // of the next object this writer names
    this.buffered = new Map(); // UTC day -> lines not yet given a name
    this.pending = []; // {key, body} named and not yet written, oldest first
    this.writing = Promise.resolve();
  }

  /** Check one event, complete it (event_id, ts, agent_id when absent) and buffer it; returns it as written. */
  log(event) {
    const written = normalised(event, this.agentId, this.writerId);
    const day = written.ts.slice(0, 10); // the UTC date: toISOString is always UTC
    if (!this.buffered.has(day)) this.buffered.set(day, []);
    this.buffered.get(day).push(JSON.stringify(written));
    return written;
  }

  dayPrefix(day) {
    return `${this.agentId}/dt=${day}/`;
  }

  /**
   * Write every event logged so far. The buffered events are named first (at most maxEventsPerFile an object), then
   * the named objects are written oldest first; when a write fails this throws, and what is left is written, under
   * the same names, by the next flush. Flushes run one after another; each resolves to the keys it wrote.
   */
  flush() {
    const run = this.writing.catch(() => {}).then(() => this.writeAll());
    this.writing = run;
    return run;
  }

  async writeAll() {
    for (const [day, lines] of this.buffered) {
      for (let start = 0; start < lines.length; start += this.maxEventsPerFile) {
        const name = `${this.writerId}-${String(this.sequence).padStart(SEQUENCE_DIGITS, '0')}.jsonl`;
        this.sequence += 1;
        const body = `${lines.slice(start, start + this.maxEventsPerFile).join('\n')}\n`;
        this.pending.push({ key: this.dayPrefix(day) + name, body: Buffer.from(body, 'utf8') });
      }
    }
    this.buffered.clear();
    const written = [];
    while (this.pending.length) {
      await this.store.putObject(this.pending[0].key, this.pending[0].body);
      written.push(this.pending.shift().key);
    }
    return written;
  }

  /**
   * Flush, then write the day's `_SUCCESS` marker: the day's logs are complete and its retraining run may start.
   * Resolves to the keys written, the marker last.
   */
  async closeDay(day) {
    const text = day instanceof Date ? day.toISOString().slice(0, 10) : day;
    if (!DAY.test(text) || Number.isNaN(Date.parse(text))) {
      throw new TypeError(`day ${describe(day)} is not YYYY-MM-DD`);
    }
    const written = await this.flush();
    const marker = `${this.dayPrefix(text)}_SUCCESS`;
    await this.store.putObject(marker, Buffer.alloc(0));
    return [...written, marker];
  }
}

module.exports = { LogWriter };
