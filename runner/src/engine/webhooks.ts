import { createHmac, timingSafeEqual } from 'node:crypto';
import type { UnifiedTarget } from '@routiq/schemas';
import type { Logger } from 'pino';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { safeMessage } from '../db/tx.ts';
import { isRoutiqError, RoutiqError } from '../errors/registry.ts';
import type { ConnectorSpec, WebhookEventSpec, WebhookVerify } from '../spec/types.ts';
import { type Bindings, evaluate, renderString } from './expr.ts';
import { type DeadRecord, mapRecords, type ParentInfo } from './map.ts';
import { MAX_DEPTH, sanitize } from './sanitize.ts';
import { openSession, type Session } from './session.ts';
import { storableHeaders } from './webhook-headers.ts';
import { isDataError, type PageWrite, writePage } from './write-page.ts';
import { type MappedRow, supersedes } from './writer.ts';

export interface WebhookResult {
  status: 'accepted' | 'ignored';
  events: string[];
  records: number;
  written: number;
  deadLetters: number;
}

export interface IngestOptions {
  db: Database;
  config: RoutiqConfig;
  org: OrganizationConfig;
  conn: ConnectionConfig;
  /** Header names in any case. */
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, string>;
  rawBody: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** For tests: the current time in ms. */
  now?: number;
}

function lowerHeaders(h: IngestOptions['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function verify(
  v: WebhookVerify,
  headers: Record<string, string>,
  query: Record<string, string>,
  raw: string,
  b: Bindings,
  now: number,
): Promise<void> {
  const reject = (why: string) => {
    throw new RoutiqError('RQ5005', `webhook rejected: ${why}`);
  };
  switch (v.type) {
    case 'none':
      return;
    case 'shared_token': {
      const expected = await renderString(v.token, b);
      // Flow authors put the token where their tool lets them: the header or the query parameter, either accepted.
      const got = (v.header ? headers[v.header.toLowerCase()] : undefined) ?? (v.query ? query[v.query] : undefined);
      if (!expected) reject('no token is configured for this connection');
      if (!got || !safeEqual(got, expected)) reject('missing or wrong token');
      return;
    }
    case 'hmac_sha256': {
      const secret = await renderString(v.secret, b);
      if (!secret) reject('no signing secret is configured for this connection');
      if (v.timestamp_header) {
        const ts = Number(headers[v.timestamp_header.toLowerCase()]);
        if (!Number.isFinite(ts)) reject(`missing ${v.timestamp_header}`);
        if (Math.abs(now / 1000 - ts) > v.tolerance_seconds) reject('timestamp outside the allowed window (replay?)');
      }
      const message = v.message ? await renderString(v.message, b) : raw;
      const expected = v.prefix + createHmac('sha256', secret).update(message).digest('hex');
      const got = headers[v.header.toLowerCase()];
      if (!got || !safeEqual(got, expected)) reject('bad signature');
      return;
    }
  }
}

/** An authenticated delivery, parsed: what `processWebhook` maps and writes. */
export interface AuthenticatedDelivery {
  payload: unknown;
  /** Lower-case header names. */
  headers: Record<string, string>;
}

/**
 * Authenticate a pushed payload as the spec declares and parse it. Throws RQ5005 (with a reason safe to send back)
 * for an unauthenticated, malformed or too deeply nested body; nothing is written.
 */
export async function authenticateWebhook(
  session: Session,
  d: {
    headers: IngestOptions['headers'];
    query?: Record<string, string> | undefined;
    rawBody: string;
    now?: number | undefined;
  },
): Promise<AuthenticatedDelivery> {
  const { spec } = session;
  if (!spec.webhooks) throw new RoutiqError('RQ5005', `connector ${spec.name} does not accept webhooks`);
  const headers = lowerHeaders(d.headers);
  await verify(
    spec.webhooks.verify,
    headers,
    d.query ?? {},
    d.rawBody,
    session.bindings('webhook_verify', { headers, body_raw: d.rawBody }),
    d.now ?? Date.now(),
  );
  let payload: unknown;
  try {
    payload = JSON.parse(d.rawBody);
  } catch (e) {
    throw new RoutiqError('RQ5005', `webhook body is not JSON: ${(e as Error).message}`);
  }
  // Records are sanitized one by one when mapped; a body nested deeper than any real event is refused whole.
  if (sanitize(payload).tooDeep) throw new RoutiqError('RQ5005', `webhook body nests deeper than ${MAX_DEPTH} levels`);
  return { payload, headers };
}

/**
 * Map an authenticated delivery with the spec's webhook events and write it like a synced record (same mapping,
 * identity and writer path). Enrichment streams (parent: { webhook }) get their partitions marked for the next
 * sync. Redelivery is harmless: writes are upserts on natural keys, and versioned rows never go back in time.
 */
export async function processWebhook(session: Session, d: AuthenticatedDelivery): Promise<WebhookResult> {
  return (await processWebhooks(session, [d]))[0] as WebhookResult;
}

/** One planned write of a batch: records of one event stream that map to the same columns, and letters. */
interface BatchWrite {
  stream: string;
  parents: ParentInfo[];
  dead: DeadRecord[];
  /** The delivery (index in the batch) each record and letter came from. */
  ownerOf: Map<ParentInfo | DeadRecord, number>;
}

/**
 * Process several deliveries of one connection as one batch, with the result of processing them one after
 * another: each event stream's records are written together (one writePage per stream and column shape: rows
 * whose mapping left a column out must not null it in a shared statement), the writer keeps the newest version of
 * a row several deliveries carry, and writePage sets the links of what each write touched. Per-delivery
 * isolation: a delivery whose records cannot be extracted is its own dead letter; when the database refuses a
 * batch for a data reason, its deliveries are written one at a time (writePage then isolates the refused record).
 * Any other failure throws for the caller to retry the whole batch (writes are idempotent).
 */
export async function processWebhooks(
  session: Session,
  deliveries: AuthenticatedDelivery[],
  o: {
    /** Gives the event loop back between deliveries (the service's waits while receives come first). */
    turn?: () => Promise<void>;
  } = {},
): Promise<WebhookResult[]> {
  const { spec } = session;
  if (!spec.webhooks) throw new RoutiqError('RQ5005', `connector ${spec.name} does not accept webhooks`);
  const results: WebhookResult[] = deliveries.map(() => ({
    status: 'ignored',
    events: [],
    records: 0,
    written: 0,
    deadLetters: 0,
  }));
  const writes: BatchWrite[] = [];
  let turn = performance.now();
  for (const ev of spec.webhooks.events) {
    const stream = `webhook:${ev.name}`;
    const dead: DeadRecord[] = [];
    const ownerOf = new Map<ParentInfo | DeadRecord, number>();
    const byShape = new Map<string, ParentInfo[]>();
    for (const [i, d] of deliveries.entries()) {
      // Mapping runs on promises alone (microtasks): a batch of hundreds would hold the event loop (answers to other
      // webhooks, database replies) for its whole length without a turn given back now and then.
      if (performance.now() - turn > 10) {
        await (o.turn ?? nextTurn)();
        turn = performance.now();
      }
      const result = results[i] as WebhookResult;
      const { payload, headers } = d;
      // Letters keep the headers the mapping may read (the signed timestamp as the row version), never a credential.
      const keep = letterHeaders(spec, headers);
      let records: unknown[] | undefined;
      try {
        records = await eventRecords(ev, payload, session.bindings('webhook_data', { headers }));
        if (records === undefined) continue;
      } catch (err) {
        // An event whose records cannot be extracted (e.g. a JSON string in the payload that is not JSON): the
        // whole delivery is a dead letter with the reason, never lost and never an internal error.
        result.status = 'accepted';
        result.events.push(ev.name);
        const letter: DeadRecord = {
          record: payload,
          key: null,
          cls: 'mapping',
          code: isRoutiqError(err) ? err.code : 'RQ5001',
          message: `${stream}: ${safeMessage(err)}`,
          details: { where: EXTRACTION, headers: keep },
        };
        dead.push(letter);
        ownerOf.set(letter, i);
        continue;
      }
      result.status = 'accepted';
      result.events.push(ev.name);
      result.records += records.length;
      const mapped = await mapRecords(
        {
          stream,
          maps: ev.map,
          primaryKey: undefined,
          bindings: session.bindings('webhook_mapping', { headers }),
          afterMap: undefined,
          hookContext: () => session.hookContext(undefined, stream),
        },
        records,
      );
      for (const x of mapped.dead) {
        const letter = { ...x, details: withHeaders(x.details, keep) };
        dead.push(letter);
        ownerOf.set(letter, i);
      }
      for (const p of mapped.parents) {
        ownerOf.set(p, i);
        const shape = shapeOf(p);
        const same = byShape.get(shape);
        if (same) same.push(p);
        else byShape.set(shape, [p]);
      }
    }
    const shapes = [...byShape.values()];
    if (!shapes.length && dead.length) writes.push({ stream, parents: [], dead, ownerOf });
    for (const [n, parents] of shapes.entries()) writes.push({ stream, parents, dead: n === 0 ? dead : [], ownerOf });
  }
  for (const w of writes) {
    await o.turn?.();
    await writeBatch(session, w, results);
  }
  const sum = (f: (r: WebhookResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const [one] = results;
  if (results.length === 1 && one)
    session.log.info({ events: one.events, records: one.records, written: one.written }, 'webhook ingested');
  else
    session.log.info(
      { deliveries: results.length, records: sum((r) => r.records), written: sum((r) => r.written) },
      'webhooks ingested',
    );
  return results;
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Which columns of which tables a record writes: records of one shape can share a statement. */
function shapeOf(p: ParentInfo): string {
  return p.rows
    .map((r) => `${r.target}|${r.mode}|${Object.keys(r.row).sort().join(',')}`)
    .sort()
    .join(';');
}

async function writeBatch(session: Session, w: BatchWrite, results: WebhookResult[]): Promise<void> {
  const page = (parents: ParentInfo[], dead: DeadRecord[], changed: PageWrite['changed']) => ({
    stream: w.stream,
    runId: null,
    parents,
    dead,
    // Enrichment streams fed by this event: one pending partition per pushed record.
    marking: { all: true } as const,
    storeRaw: false,
    changed,
  });
  const credit = (changed: Map<UnifiedTarget, Set<string>>, parents: ParentInfo[], dead: DeadRecord[]) => {
    for (const x of dead) (results[w.ownerOf.get(x) as number] as WebhookResult).deadLetters++;
    // A row several deliveries of the batch carry is written once: it counts for the delivery whose version the
    // writer kept (the newest; the last on a tie unless that undoes a deletion), as one at a time.
    const writer = new Map<string, { i: number; row: MappedRow }>();
    for (const p of parents)
      for (const row of p.rows) {
        const key = `${row.target}|${String(row.row.external_id)}`;
        const prev = writer.get(key)?.row;
        if (prev && !supersedes(row, prev)) continue;
        writer.set(key, { i: w.ownerOf.get(p) as number, row });
      }
    for (const [t, ids] of changed)
      for (const id of ids) {
        const i = writer.get(`${t}|${id}`)?.i;
        if (i !== undefined) (results[i] as WebhookResult).written++;
      }
  };
  try {
    const changed = new Map<UnifiedTarget, Set<string>>();
    await writePage(session, page(w.parents, w.dead, changed), { oneByOne: false });
    credit(changed, w.parents, w.dead);
    return;
  } catch (err) {
    if (!isDataError(err)) throw err;
    session.log.warn(
      { stream: w.stream, err: { message: safeMessage(err) } },
      'a batch of deliveries was refused by the database; writing them one delivery at a time',
    );
  }
  // Delivery by delivery, in their order; writePage isolates the record the database refuses.
  const owners = [...new Set([...w.parents, ...w.dead].map((x) => w.ownerOf.get(x) as number))].sort((a, b) => a - b);
  for (const i of owners) {
    const parents = w.parents.filter((p) => w.ownerOf.get(p) === i);
    const dead = w.dead.filter((x) => w.ownerOf.get(x) === i);
    const changed = new Map<UnifiedTarget, Set<string>>();
    const res = await writePage(session, page(parents, dead, changed));
    (results[i] as WebhookResult).deadLetters += res.deadLetters - dead.length;
    credit(changed, parents, dead);
  }
}

/** `details.where` of a letter holding a whole delivery whose event records could not be extracted. */
export const EXTRACTION = 'webhooks.events[].when/records';

/**
 * The records one webhook event takes from a payload (its `when`, then its `records`), or undefined when the
 * event does not apply. Throws when either expression fails. A dead-letter replay extracts the same way.
 */
export async function eventRecords(
  ev: WebhookEventSpec,
  payload: unknown,
  data: Bindings,
): Promise<unknown[] | undefined> {
  if (!(await evaluate(ev.when, payload, data))) return undefined;
  const recs = ev.records ? await evaluate(ev.records, payload, data) : payload;
  return recs === undefined || recs === null ? [] : Array.isArray(recs) ? recs : [recs];
}

/** The delivery headers a letter may keep: no credential, not the verification header. */
export function letterHeaders(spec: ConnectorSpec, headers: Record<string, string>): Record<string, string> {
  const v = spec.webhooks?.verify;
  return storableHeaders(headers, v && v.type !== 'none' && v.header ? [v.header] : []);
}

function withHeaders(details: unknown, headers: Record<string, string>): Record<string, unknown> {
  const d =
    details && typeof details === 'object' && !Array.isArray(details) ? (details as Record<string, unknown>) : {};
  return { ...d, headers };
}

/** Authenticate and process one delivery in-line (the demo receiver, tests). The service queues instead. */
export async function ingestWebhook(o: IngestOptions): Promise<WebhookResult> {
  const session = await openSession({ ...o, logFields: { webhook: true } });
  return processWebhook(session, await authenticateWebhook(session, o));
}
