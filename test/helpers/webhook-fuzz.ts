import { performance } from 'node:perf_hooks';
import { ingestWebhook, RoutiqError, type WebhookResult } from '@routiq/runner';
import { type ChatwootSim, type ManyChatSim, signChatwootWebhook, startChatwoot, startManyChat } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from './connectors.ts';
import { openTestDb, type TestDb } from './db.ts';
import { silentLogger } from './engine.ts';

/**
 * Issue #17, "Must show": a seeded fuzz of webhook deliveries through ingestWebhook (authentication, parsing,
 * mapping and writing, as the service runs them), ≥ 2,000 per platform. The bases are the simulators' own
 * deliveries (Chatwoot account webhooks, ManyChat External Requests, sent to a closed port so only the bodies are
 * kept); each delivery is left valid or mutated: bad, missing or replayed signatures and tokens, malformed,
 * truncated, non-object or deeply nested JSON, ~1 MB strings, NUL and lone surrogates, ids that are not ids,
 * `$secrets` expressions and recursive functions in ManyChat's `data` string, unknown events.
 *
 * Asserted: no crash (every call resolves, or rejects with a RoutiqError), no unauthenticated delivery accepted,
 * no valid event lost (its records are in the unified tables or dead-lettered), no configured secret in any text
 * or jsonb column of any table, and every delivery completes. Time per delivery is measured and reported, not
 * asserted (wall-clock speed is no test criterion).
 */
/** 2,000 per platform (~20 s of CPU each on 2 idle cores): the soak tier; `npm test` runs a lighter 300. */
export const FULL_PER_PLATFORM = 2_000;
/** Generous, since other test files share the cores. */
const FUZZ_TIMEOUT_MS = 180_000;
const SEED = 0x17f022;

const CW_ACCOUNT = 13;
const CW_TOKEN = 'cw-api-token-5be1c7d2';
const CW_SECRET = 'cw-whsec-93ad0f4e';
const MC_PAGE = '104729000000077';
const MC_KEY = `${MC_PAGE}:a1b2c3d4e5f60718293a4b5c6d7e8f90`;
const MC_HOOK = 'mc-hook-token-4c2e9b';
const SECRETS = [CW_TOKEN, CW_SECRET, MC_KEY, MC_HOOK];
const CLOSED = 'http://127.0.0.1:9/closed';

/** mulberry32 (the simulators' generator; @routiq/sandbox does not export it). */
class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
  private covered = 0;
  /**
   * A kind by weight; the first calls walk the table once so that every kind occurs even in a short run (the
   * lighter `npm test` run asserts all of them, as the 2,000-delivery one does).
   */
  weighted<K extends string>(table: ReadonlyArray<readonly [K, number]>): K {
    const first = table[this.covered];
    if (first) {
      this.covered++;
      this.next(); // keep the stream of draws the same length per delivery
      return first[0];
    }
    const total = table.reduce((a, [, w]) => a + w, 0);
    let x = this.next() * total;
    for (const [k, w] of table) {
      x -= w;
      if (x < 0) return k;
    }
    return (table[table.length - 1] as readonly [K, number])[0];
  }
}

type Outcome =
  /** Must be refused (RQ5005): nothing about it may be written. */
  | 'unauthenticated'
  /** Authentic but not a usable body (not JSON, too deep): a clear rejection (RQ5005). */
  | 'malformed'
  /** Authentic and well-formed: must be accepted, its records stored or dead-lettered. */
  | 'valid'
  /** Authentic, accepted, and its records must be dead-lettered (odd ids, data that is not JSON). */
  | 'dead'
  /** Authentic, nothing the spec maps: resolves (ignored) or is refused cleanly; nothing is lost. */
  | 'other';

interface Delivery {
  kind: string;
  outcome: Outcome;
  headers: Record<string, string | string[]>;
  rawBody: string;
  /** Unified rows the delivery must leave (or dead-letter): [table, external_id]. */
  keys: Array<[string, string]>;
  /** Set by the run: the delivery's result counted dead letters (only then may its keys be letters, not rows). */
  deadLettered?: boolean;
}

const nestedText = (depth: number, leaf = '1') => `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
const HUGE = (rng: Prng) => `${'Ω long message '.repeat(62_500)}${rng.int(0, 1e9)}`; // ~1 MB
const ODD_IDS: unknown[] = [null, true, false, [1, 2], {}, { id: 5 }, '', '  '];
/** Poisoned text: NUL characters, lone surrogates, the six characters \u0000. */
const POISONS = [
  'a\u0000b',
  'x\uD800y',
  'end\uDFFF',
  '\uDBFF',
  'six \\u0000 chars',
  '\u0000\u0000',
  'mixed\u0000\uDC00',
];

/** Flip one character of a hex signature. */
function flipHex(sig: string, rng: Prng): string {
  const i = sig.length - 1 - rng.int(0, 63);
  const c = sig[i] === '0' ? '1' : '0';
  return sig.slice(0, i) + c + sig.slice(i + 1);
}

interface Base {
  body: Record<string, unknown>;
  text: string;
}

// ---------------------------------------------------------------------------------------------------- Chatwoot

function chatwootKeys(p: Record<string, unknown>): Array<[string, string]> {
  const ev = p.event;
  const id = p.id;
  if (typeof id !== 'number' && typeof id !== 'string') return [];
  if (ev === 'message_created' || ev === 'message_updated') {
    const conv = (p.conversation as { id?: unknown } | undefined)?.id;
    return [
      ['messages', String(id)],
      ...(conv === undefined ? [] : [['conversations', String(conv)] as [string, string]]),
    ];
  }
  if (typeof ev === 'string' && ev.startsWith('conversation_')) return [['conversations', String(id)]];
  if (ev === 'contact_created' || ev === 'contact_updated') return [['patient_identities', String(id)]];
  return [];
}

/** A copy of a Chatwoot event with one text field (the message content or the contact's name) set to `v`. */
function withText(p: Record<string, unknown>, v: unknown): Record<string, unknown> {
  const c = structuredClone(p);
  if (typeof c.content === 'string' || c.event === 'message_created' || c.event === 'message_updated') c.content = v;
  else if (c.meta && typeof c.meta === 'object') {
    const sender = (c.meta as { sender?: Record<string, unknown> }).sender;
    if (sender) sender.name = v;
    else c.custom_attributes = { note: v };
  } else c.name = v;
  return c;
}

function chatwootDelivery(rng: Prng, bases: Base[], nowSec: number): Delivery {
  const base = rng.pick(bases);
  const fresh = () => nowSec - rng.int(0, 250);
  const signed = (
    body: string,
    ts: number | string = fresh(),
    extra: Record<string, string> = {},
  ): Delivery['headers'] => ({
    'content-type': 'application/json',
    'x-chatwoot-timestamp': String(ts),
    'x-chatwoot-signature': signChatwootWebhook(CW_SECRET, ts, body),
    ...extra,
  });
  const valid = (kind: string, body: Record<string, unknown>, outcome: Outcome = 'valid'): Delivery => {
    const raw = JSON.stringify(body);
    return { kind, outcome, headers: signed(raw), rawBody: raw, keys: outcome === 'valid' ? chatwootKeys(body) : [] };
  };
  const kind = rng.weighted([
    ['valid', 10],
    ['valid_header_case', 2],
    ['poison_text', 5],
    ['poison_key', 1.5],
    ['huge_string', 0.15],
    ['odd_id', 3],
    ['unknown_event', 3],
    ['non_object', 2],
    ['bad_signature', 5],
    ['wrong_secret', 3],
    ['stale_timestamp', 4],
    ['future_timestamp', 2],
    ['bad_timestamp', 2],
    ['missing_signature', 3],
    ['missing_timestamp', 3],
    ['no_headers', 2],
    ['signature_for_other_ts', 3],
    ['body_changed_after_signing', 3],
    ['truncated_unsigned', 3],
    ['truncated_signed', 3],
    ['malformed_signed', 3],
    ['deep_100', 2],
    ['deep_10000', 2],
    ['duplicate_header', 1],
  ] as const);
  switch (kind) {
    case 'valid':
      return { kind, outcome: 'valid', headers: signed(base.text), rawBody: base.text, keys: chatwootKeys(base.body) };
    case 'valid_header_case': {
      const ts = fresh();
      return {
        kind,
        outcome: 'valid',
        headers: {
          'Content-Type': 'application/json',
          'X-Chatwoot-Timestamp': String(ts),
          'X-CHATWOOT-SIGNATURE': signChatwootWebhook(CW_SECRET, ts, base.text),
        },
        rawBody: base.text,
        keys: chatwootKeys(base.body),
      };
    }
    case 'poison_text':
      return valid(kind, withText(base.body, rng.pick(POISONS)));
    case 'poison_key': {
      const b = structuredClone(base.body);
      b[rng.pick(POISONS)] = rng.pick(POISONS);
      return valid(kind, b);
    }
    case 'huge_string':
      return valid(kind, withText(base.body, HUGE(rng)));
    case 'odd_id': {
      const b = structuredClone(base.body);
      b.id = rng.pick(ODD_IDS);
      // The whole record is a dead letter: RQ5007 ("null", "true", "[1,2]" …) or RQ5002 for an empty id.
      return valid(kind, b, 'dead');
    }
    case 'unknown_event': {
      const b = structuredClone(base.body);
      b.event = rng.pick([
        'conversation_typing_on',
        'webwidget_triggered',
        'inbox_created',
        'message_destroyed',
        '',
        42,
      ]);
      return valid(kind, b, 'other');
    }
    case 'non_object': {
      const raw = rng.pick(['42', 'null', '[]', '"message_created"', 'true', '[{"event":"message_created"}]']);
      return { kind, outcome: 'other', headers: signed(raw), rawBody: raw, keys: [] };
    }
    case 'bad_signature': {
      const h = signed(base.text);
      h['x-chatwoot-signature'] = flipHex(h['x-chatwoot-signature'] as string, rng);
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
    case 'wrong_secret': {
      const ts = fresh();
      const secret = rng.pick(['', 'whsec', CW_SECRET.slice(0, -1), `${CW_SECRET} `, CW_TOKEN]);
      const h = signed(base.text, ts, { 'x-chatwoot-signature': signChatwootWebhook(secret, ts, base.text) });
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
    case 'stale_timestamp':
      return {
        kind,
        outcome: 'unauthenticated',
        headers: signed(base.text, nowSec - rng.int(301, 10_000_000)),
        rawBody: base.text,
        keys: [],
      };
    case 'future_timestamp':
      return {
        kind,
        outcome: 'unauthenticated',
        headers: signed(base.text, nowSec + rng.int(301, 10_000_000)),
        rawBody: base.text,
        keys: [],
      };
    case 'bad_timestamp': {
      const ts = rng.pick(['', 'NaN', 'abc', 'Infinity', '-1', '1e99', `${nowSec}abc`, ' ']);
      return { kind, outcome: 'unauthenticated', headers: signed(base.text, ts), rawBody: base.text, keys: [] };
    }
    case 'missing_signature': {
      const h = signed(base.text);
      delete h['x-chatwoot-signature'];
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
    case 'missing_timestamp': {
      const h = signed(base.text);
      delete h['x-chatwoot-timestamp'];
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
    case 'no_headers':
      return { kind, outcome: 'unauthenticated', headers: {}, rawBody: base.text, keys: [] };
    case 'signature_for_other_ts': {
      const ts = fresh();
      const h = signed(base.text, ts, { 'x-chatwoot-signature': signChatwootWebhook(CW_SECRET, ts - 1, base.text) });
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
    case 'body_changed_after_signing': {
      const h = signed(base.text);
      const changed = JSON.stringify(withText(base.body, `forged ${rng.int(0, 1e6)}`));
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: changed, keys: [] };
    }
    case 'truncated_unsigned': {
      const h = signed(base.text);
      return {
        kind,
        outcome: 'unauthenticated',
        headers: h,
        rawBody: base.text.slice(0, rng.int(0, base.text.length - 1)),
        keys: [],
      };
    }
    case 'truncated_signed': {
      const raw = base.text.slice(0, rng.int(0, base.text.length - 1));
      return { kind, outcome: 'malformed', headers: signed(raw), rawBody: raw, keys: [] };
    }
    case 'malformed_signed': {
      const raw = rng.pick([
        '',
        '{',
        '{"event":',
        `\uFEFF${base.text}`,
        "{'event':'message_created'}",
        '{"a":1}}',
        'NaN',
        '\u0000',
      ]);
      return { kind, outcome: 'malformed', headers: signed(raw), rawBody: raw, keys: [] };
    }
    case 'deep_100':
    case 'deep_10000': {
      const depth = kind === 'deep_100' ? 100 : 10_000;
      const raw = `${base.text.slice(0, -1)},"content_attributes":${nestedText(depth)}}`;
      return { kind, outcome: 'malformed', headers: signed(raw), rawBody: raw, keys: [] };
    }
    case 'duplicate_header': {
      const h = signed(base.text);
      h['x-chatwoot-signature'] = [h['x-chatwoot-signature'] as string, h['x-chatwoot-signature'] as string];
      return { kind, outcome: 'unauthenticated', headers: h, rawBody: base.text, keys: [] };
    }
  }
}

// ---------------------------------------------------------------------------------------------------- ManyChat

/** The subscriber a ManyChat body is about: subscriber_id, else the Full Contact Data's id. */
function manychatKeys(p: Record<string, unknown>): Array<[string, string]> {
  const user = typeof p.data === 'string' ? (JSON.parse(p.data) as Record<string, unknown>) : p;
  const sid = p.subscriber_id ?? user.id;
  if (typeof sid !== 'string' && typeof sid !== 'number') return [];
  return [
    ['patient_identities', String(sid)],
    ['conversations', String(sid)],
  ];
}

/** A copy with a field of the subscriber (inside the `data` string for the custom template) set to `v`. */
function withUser(p: Record<string, unknown>, field: string, v: unknown): Record<string, unknown> {
  const c = structuredClone(p);
  if (typeof c.data === 'string') {
    const u = JSON.parse(c.data) as Record<string, unknown>;
    u[field] = v;
    c.data = JSON.stringify(u);
    if (field === 'id') delete c.subscriber_id;
  } else c[field] = v;
  return c;
}

const EXPRESSIONS = [
  '{"id":"9","first_name":$secrets.api_key}',
  '{"id":"9","first_name":$secrets.webhook_token,"email":$secrets.api_key & "@x.io"}',
  '$secrets',
  '$secrets.api_key',
  '($f := function($x){ $f($x) }; $f(1))',
  '($x := $secrets; {"id": "9", "first_name": $string($x)})',
  '{"id":"9","first_name":$eval("$secrets.api_key")}',
  '$config',
];

function manychatDelivery(rng: Prng, bases: Base[]): Delivery {
  const base = rng.pick(bases);
  const auth = { 'content-type': 'application/json', 'x-routiq-token': MC_HOOK };
  const valid = (kind: string, body: Record<string, unknown>, outcome: Outcome = 'valid'): Delivery => ({
    kind,
    outcome,
    headers: auth,
    rawBody: JSON.stringify(body),
    keys: outcome === 'valid' ? manychatKeys(body) : [],
  });
  const kind = rng.weighted([
    ['valid', 10],
    ['valid_header_case', 2],
    ['poison_name', 5],
    ['poison_text', 2.5],
    ['huge_string', 0.15],
    ['odd_id', 4],
    ['secret_expression', 4],
    ['data_not_json', 2],
    ['unknown_shape', 3],
    ['non_object', 2],
    ['missing_token', 4],
    ['wrong_token', 6],
    ['token_elsewhere', 3],
    ['duplicate_header', 1],
    ['truncated', 3],
    ['malformed', 3],
    ['deep_100', 2],
    ['deep_10000', 2],
    ['deep_in_data', 2],
  ] as const);
  switch (kind) {
    case 'valid':
      return { kind, outcome: 'valid', headers: auth, rawBody: base.text, keys: manychatKeys(base.body) };
    case 'valid_header_case':
      return {
        kind,
        outcome: 'valid',
        headers: { 'Content-Type': 'application/json', 'X-Routiq-Token': MC_HOOK },
        rawBody: base.text,
        keys: manychatKeys(base.body),
      };
    case 'poison_name':
      return valid(
        kind,
        withUser(base.body, rng.pick(['first_name', 'last_name', 'name', 'email']), rng.pick(POISONS)),
      );
    case 'poison_text': {
      const b = structuredClone(base.body);
      if ('text' in b) b.text = rng.pick(POISONS);
      else b.last_input_text = rng.pick(POISONS);
      return valid(kind, b);
    }
    case 'huge_string':
      return valid(kind, withUser(base.body, 'first_name', HUGE(rng)));
    case 'odd_id': {
      const b = withUser(base.body, 'id', rng.pick(ODD_IDS));
      if (typeof b.data !== 'string') delete b.subscriber_id;
      return valid(kind, b, 'dead');
    }
    case 'secret_expression': {
      const b = structuredClone(base.body);
      b.data = rng.pick(EXPRESSIONS);
      if (rng.next() < 0.5) delete b.subscriber_id;
      delete b.key;
      return valid(kind, b, 'dead');
    }
    case 'data_not_json': {
      const b = structuredClone(base.body);
      b.data = rng.pick(['{"id":"1",', 'undefined', "{'id':'1'}", '', '{"id":"1"}}']);
      delete b.key;
      return valid(kind, b, 'dead');
    }
    case 'unknown_shape':
      return valid(kind, rng.pick([{ foo: 1 }, { event: 'flow_started' }, { text: 'hello' }, {}]), 'other');
    case 'non_object':
      return {
        kind,
        outcome: 'other',
        headers: auth,
        rawBody: rng.pick(['42', 'null', '[]', '"x"', 'true', '[{"key":"user:1"}]']),
        keys: [],
      };
    case 'missing_token':
      return {
        kind,
        outcome: 'unauthenticated',
        headers: { 'content-type': 'application/json' },
        rawBody: base.text,
        keys: [],
      };
    case 'wrong_token': {
      const tok = rng.pick([
        '',
        ' ',
        'nope',
        MC_HOOK.toUpperCase(),
        `${MC_HOOK} `,
        MC_HOOK.slice(0, -1),
        `${MC_HOOK}x`,
        MC_KEY,
      ]);
      return {
        kind,
        outcome: 'unauthenticated',
        headers: { ...auth, 'x-routiq-token': tok },
        rawBody: base.text,
        keys: [],
      };
    }
    case 'token_elsewhere': {
      const h = rng.pick([
        { authorization: `Bearer ${MC_HOOK}` },
        { 'x-routiq-tokens': MC_HOOK },
        { 'x-token': MC_HOOK },
      ]);
      return {
        kind,
        outcome: 'unauthenticated',
        headers: { 'content-type': 'application/json', ...h },
        rawBody: base.text,
        keys: [],
      };
    }
    case 'duplicate_header':
      return {
        kind,
        outcome: 'unauthenticated',
        headers: { ...auth, 'x-routiq-token': [MC_HOOK, MC_HOOK] },
        rawBody: base.text,
        keys: [],
      };
    case 'truncated':
      return {
        kind,
        outcome: 'malformed',
        headers: auth,
        rawBody: base.text.slice(0, rng.int(0, base.text.length - 1)),
        keys: [],
      };
    case 'malformed':
      return {
        kind,
        outcome: 'malformed',
        headers: auth,
        rawBody: rng.pick(['', '{', '{"id":', `\uFEFF${base.text}`, "{'id':'1'}", 'NaN']),
        keys: [],
      };
    case 'deep_100':
    case 'deep_10000': {
      const raw = `${base.text.slice(0, -1)},"custom_fields":${nestedText(kind === 'deep_100' ? 100 : 10_000)}}`;
      return { kind, outcome: 'malformed', headers: auth, rawBody: raw, keys: [] };
    }
    case 'deep_in_data': {
      // Nesting inside the JSON string: the body itself is shallow, $parseJson refuses the string.
      const b = structuredClone(base.body);
      b.data = nestedText(rng.pick([100, 10_000]), '{"id":"3"}');
      delete b.key;
      return valid(kind, b, 'dead');
    }
  }
}

// ---------------------------------------------------------------------------------------------------- the run

interface Tally {
  crashes: string[];
  unauthenticatedAccepted: string[];
  wrongOutcome: string[];
  /** Per mutation kind: deliveries, total and longest time (ms). */
  byKind: Record<string, { n: number; ms: number; max: number }>;
  maxMs: number;
  slowest: string;
  over1s: number;
  /** CPU time of this process over the run (user + system), next to the wall-clock times above. */
  cpuMs: number;
}

function isRejection(e: unknown): e is RoutiqError {
  return e instanceof RoutiqError && e.code === 'RQ5005';
}

async function fuzz(deliveries: Delivery[], send: (d: Delivery) => Promise<WebhookResult>): Promise<Tally> {
  const tally: Tally = {
    crashes: [],
    unauthenticatedAccepted: [],
    wrongOutcome: [],
    byKind: {},
    maxMs: 0,
    slowest: '',
    over1s: 0,
    cpuMs: 0,
  };
  const cpu = process.cpuUsage();
  for (const [i, d] of deliveries.entries()) {
    const started = performance.now();
    let result: WebhookResult | undefined;
    let error: unknown;
    try {
      result = await send(d);
    } catch (e) {
      error = e;
    }
    const ms = performance.now() - started;
    const k = tally.byKind[d.kind] ?? { n: 0, ms: 0, max: 0 };
    tally.byKind[d.kind] = k;
    k.n++;
    k.ms += ms;
    k.max = Math.max(k.max, ms);
    if (ms > tally.maxMs) {
      tally.maxMs = ms;
      tally.slowest = d.kind;
    }
    if (ms > 1000) tally.over1s++;
    d.deadLettered = (result?.deadLetters ?? 0) > 0;
    const label = `#${i} ${d.kind}`;
    if (error !== undefined && !(error instanceof RoutiqError)) {
      const e = error as Error;
      tally.crashes.push(`${label}: ${e?.name}: ${String(e?.message).slice(0, 200)}`);
      continue;
    }
    const rejected = isRejection(error);
    const got = result ? JSON.stringify(result) : `${(error as RoutiqError).code}: ${(error as RoutiqError).message}`;
    switch (d.outcome) {
      case 'unauthenticated':
        if (result) tally.unauthenticatedAccepted.push(`${label}: ${got}`);
        else if (!rejected) tally.wrongOutcome.push(`${label}: expected RQ5005, got ${got}`);
        break;
      case 'malformed':
        if (!rejected) tally.wrongOutcome.push(`${label}: expected RQ5005, got ${got}`);
        break;
      case 'valid':
        if (result?.status !== 'accepted' || result.records < 1) tally.wrongOutcome.push(`${label}: ${got}`);
        break;
      case 'dead':
        if (result?.status !== 'accepted' || result.deadLetters < 1)
          tally.wrongOutcome.push(`${label}: expected a dead letter, got ${got}`);
        break;
      case 'other':
        if (result ? result.written !== 0 : !rejected) tally.wrongOutcome.push(`${label}: ${got}`);
        break;
    }
  }
  const used = process.cpuUsage(cpu);
  tally.cpuMs = (used.user + used.system) / 1000;
  return tally;
}

/** The fuzz suite with `PER_PLATFORM` deliveries per platform (test/e2e: 300; test/soak: 2,000). */
export function webhookFuzzSuite(PER_PLATFORM: number): void {
  describe(`webhook fuzz through ingestWebhook (embedded database, ${PER_PLATFORM} per platform)`, () => {
    let t: TestDb;
    let cw: ChatwootSim;
    let mc: ManyChatSim;
    beforeAll(async () => {
      t = await openTestDb('embedded');
      cw = await startChatwoot({
        accounts: [{ accountId: CW_ACCOUNT, token: CW_TOKEN, webhookSecret: CW_SECRET }],
        seed: SEED,
        scale: 1,
      });
      mc = await startManyChat({ pages: [{ pageId: MC_PAGE, token: MC_KEY }], seed: SEED, scale: 1 });
    });
    afterAll(async () => {
      await cw?.close();
      await mc?.close();
      await t?.drop();
    });

    /** Which of `values` occur in any text-like column of any table (information_schema, so new tables count too). */
    async function occurrences(values: string[]): Promise<string[]> {
      const cols = await t.db.query<{ table_name: string; column_name: string }>(
        `select table_name, column_name from information_schema.columns
        where table_schema = current_schema() and data_type in ('text', 'jsonb', 'json', 'character varying', 'character')`,
      );
      expect(cols.length).toBeGreaterThan(20);
      const found: string[] = [];
      for (const c of cols)
        for (const v of values) {
          const rows = await t.db.query<{ n: string }>(
            `select count(*)::text as n from "${c.table_name}" where strpos("${c.column_name}"::text, ?) > 0`,
            [v],
          );
          if (rows[0]?.n !== '0') found.push(`${c.table_name}.${c.column_name}: ${v.slice(0, 6)}…`);
        }
      return found;
    }

    /** Valid deliveries whose keys are neither a unified row nor a dead letter of the organization. */
    async function lost(orgId: string, deliveries: Delivery[]): Promise<string[]> {
      const present = new Set<string>();
      for (const table of ['messages', 'conversations', 'patient_identities']) {
        const rows = await t.db.query<{ external_id: string }>(
          `select external_id from ${table} where organization_id = ?`,
          [orgId],
        );
        for (const r of rows) present.add(`${table}:${r.external_id}`);
      }
      const letters = await t.db.query<{ id: string | null; sid: string | null }>(
        "select payload->>'id' as id, payload->>'subscriber_id' as sid from sync_errors where organization_id = ?",
        [orgId],
      );
      const dead = new Set(letters.flatMap((l) => [l.id, l.sid]).filter((x): x is string => x !== null));
      const out: string[] = [];
      for (const [i, d] of deliveries.entries())
        if (d.outcome === 'valid')
          for (const [table, id] of d.keys)
            if (!present.has(`${table}:${id}`) && !(d.deadLettered && dead.has(id)))
              out.push(`#${i} ${d.kind} ${table}:${id}`);
      return out;
    }

    const report = (platform: string, n: number, tally: Tally) => {
      const kinds = Object.entries(tally.byKind)
        .sort(([, a], [, b]) => b.ms - a.ms)
        .map(([k, v]) => `${k} ×${v.n} ${(v.ms / 1000).toFixed(1)} s (max ${v.max.toFixed(0)} ms)`);
      console.info(
        `[webhook fuzz] ${platform}: ${n} deliveries, ${(tally.cpuMs / 1000).toFixed(1)} s of CPU; slowest ${tally.maxMs.toFixed(0)} ms (${tally.slowest}); over 1 s: ${tally.over1s}\n  ${kinds.join('\n  ')}`,
      );
    };

    it(
      `Chatwoot: ${PER_PLATFORM} signed, replayed, forged and poisoned deliveries`,
      async () => {
        cw.webhooks.subscribe(CW_ACCOUNT, {
          url: CLOSED,
          subscriptions: [
            'message_created',
            'message_updated',
            'conversation_created',
            'conversation_updated',
            'conversation_status_changed',
            'contact_created',
            'contact_updated',
          ],
          secret: CW_SECRET,
        });
        cw.mutate(40);
        await cw.webhooks.idle();
        const bases = cw.webhooks.deliveries.map((d) => ({
          body: JSON.parse(d.body) as Record<string, unknown>,
          text: d.body,
        }));
        expect(new Set(bases.map((b) => b.body.event)).size).toBeGreaterThanOrEqual(5);

        const env = { CW_TOKEN: CW_TOKEN, CW_SECRET: CW_SECRET };
        const r = connectorRunner(
          t.db,
          'org_fuzz_chatwoot',
          {
            connector: 'chatwoot',
            config: { base_url: cw.url, account_id: CW_ACCOUNT },
            secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
          },
          env,
        );
        const now = Date.now();
        const rng = new Prng(SEED);
        const deliveries = Array.from({ length: PER_PLATFORM }, () =>
          chatwootDelivery(rng, bases, Math.floor(now / 1000)),
        );
        const tally = await fuzz(deliveries, (d) =>
          ingestWebhook({
            db: t.db,
            config: r.config,
            org: r.org,
            conn: r.org.connections[0]!,
            headers: d.headers,
            rawBody: d.rawBody,
            logger: silentLogger,
            env,
            now,
          }),
        );
        report('chatwoot', deliveries.length, tally);
        expect(tally.crashes).toEqual([]);
        expect(tally.unauthenticatedAccepted).toEqual([]);
        expect(tally.wrongOutcome).toEqual([]);
        expect(await lost(r.org.id, deliveries)).toEqual([]);
        const odd = await t.db.query<{ n: string }>(
          "select count(*)::text as n from messages where organization_id = ? and external_id in ('null', 'true', 'false', '[1,2]', '{}', '', '  ')",
          [r.org.id],
        );
        expect(odd[0]?.n).toBe('0');
        // Coverage of the run itself: every mutation kind occurred, and poisoned text was stored flagged.
        expect(Object.keys(tally.byKind).length).toBe(24);
        const flagged = await t.db.query<{ n: string }>(
          'select count(*)::text as n from messages where organization_id = ? and sanitized',
          [r.org.id],
        );
        expect(Number(flagged[0]?.n)).toBeGreaterThan(0);
      },
      FUZZ_TIMEOUT_MS,
    );

    it(
      `ManyChat: ${PER_PLATFORM} deliveries with tokens, odd ids and expressions in data strings`,
      async () => {
        const subs = mc.snapshot().pages[0]!.subscribers.slice(0, 40);
        for (const [i, s] of subs.entries())
          await mc.simulateInbound({
            pageId: MC_PAGE,
            subscriberId: String(s.id),
            url: CLOSED,
            text: `Hi ${i}, can I book?`,
            template: i % 2 ? 'custom' : 'full_contact',
          });
        const bases = mc.externalRequests.map((x) => ({
          body: JSON.parse(x.requestBody) as Record<string, unknown>,
          text: x.requestBody,
        }));
        expect(bases.filter((b) => typeof b.body.data === 'string').length).toBeGreaterThan(0);

        const env = { MC_KEY: MC_KEY, MC_HOOK: MC_HOOK };
        const r = connectorRunner(
          t.db,
          'org_fuzz_manychat',
          {
            connector: 'manychat',
            config: { base_url: mc.url },
            secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
          },
          env,
        );
        const rng = new Prng(SEED + 1);
        const deliveries = Array.from({ length: PER_PLATFORM }, () => manychatDelivery(rng, bases));
        const tally = await fuzz(deliveries, (d) =>
          ingestWebhook({
            db: t.db,
            config: r.config,
            org: r.org,
            conn: r.org.connections[0]!,
            headers: d.headers,
            rawBody: d.rawBody,
            logger: silentLogger,
            env,
          }),
        );
        report('manychat', deliveries.length, tally);
        expect(tally.crashes).toEqual([]);
        expect(tally.unauthenticatedAccepted).toEqual([]);
        expect(tally.wrongOutcome).toEqual([]);
        expect(await lost(r.org.id, deliveries)).toEqual([]);
        // Odd ids never become one merged identity under "null", "true", "[1,2]".
        const odd = await t.db.query<{ external_id: string }>(
          "select external_id from patient_identities where organization_id = ? and (external_id in ('null', 'true', 'false', '') or external_id like '[%' or external_id like '{%' or trim(external_id) = '')",
          [r.org.id],
        );
        expect(odd).toEqual([]);
        const letters = await t.db.query<{ error_code: string; n: string }>(
          'select error_code, count(*)::text as n from sync_errors where organization_id = ? group by error_code order by error_code',
          [r.org.id],
        );
        expect(letters.map((l) => l.error_code)).toEqual(expect.arrayContaining(['RQ5001', 'RQ5007']));
        expect(Object.keys(tally.byKind).length).toBe(19);
      },
      FUZZ_TIMEOUT_MS,
    );

    it('no configured secret reached any text or jsonb column of any table', async () => {
      // The scan sees a value wherever it is (here: a canary in a jsonb column, as a webhook would leave it).
      const canary = 'canary-8d1f0c';
      await t.db.query(
        "insert into service_health (component, status, details) values ('fuzz-canary', 'ok', ?::jsonb)",
        [JSON.stringify({ nested: [{ first_name: `x ${canary} y` }] })],
      );
      expect(await occurrences([canary])).toEqual([`service_health.details: ${canary.slice(0, 6)}…`]);
      await t.db.query("delete from service_health where component = 'fuzz-canary'");

      expect(await occurrences(SECRETS)).toEqual([]);
    });
  });
}
