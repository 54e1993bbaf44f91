import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { safeMessage } from '../db/tx.ts';
import { isRoutiqError, RoutiqError } from '../errors/registry.ts';
import type { ConnectorSpec, WebhookEventSpec, WebhookVerify } from '../spec/types.ts';
import { type Bindings, evaluate, renderString } from './expr.ts';
import { mapRecords } from './map.ts';
import { MAX_DEPTH, sanitize } from './sanitize.ts';
import { openSession, type Session } from './session.ts';
import { storableHeaders } from './webhook-headers.ts';
import { writePage } from './write-page.ts';

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
  const { spec } = session;
  const { payload, headers } = d;
  if (!spec.webhooks) throw new RoutiqError('RQ5005', `connector ${spec.name} does not accept webhooks`);
  const result: WebhookResult = { status: 'ignored', events: [], records: 0, written: 0, deadLetters: 0 };
  const data = session.bindings('webhook_data', { headers });
  // Letters keep the headers the mapping may read (the signed timestamp as the row version), never a credential.
  const keep = letterHeaders(spec, headers);
  for (const ev of spec.webhooks.events) {
    const stream = `webhook:${ev.name}`;
    let records: unknown[] | undefined;
    try {
      records = await eventRecords(ev, payload, data);
      if (records === undefined) continue;
    } catch (err) {
      // An event whose records cannot be extracted (e.g. a JSON string in the payload that is not JSON): the
      // whole delivery is a dead letter with the reason, never lost and never an internal error.
      result.status = 'accepted';
      result.events.push(ev.name);
      await writePage(session, {
        stream,
        runId: null,
        parents: [],
        dead: [
          {
            record: payload,
            key: null,
            cls: 'mapping',
            code: isRoutiqError(err) ? err.code : 'RQ5001',
            message: `${stream}: ${safeMessage(err)}`,
            details: { where: EXTRACTION, headers: keep },
          },
        ],
        marking: {},
        storeRaw: false,
      });
      result.deadLetters++;
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
    const res = await writePage(session, {
      stream,
      runId: null,
      parents: mapped.parents,
      dead: mapped.dead.map((x) => ({ ...x, details: withHeaders(x.details, keep) })),
      // Enrichment streams fed by this event: one pending partition per pushed record.
      marking: { all: true },
      storeRaw: false,
    });
    result.written += res.inserted + res.updated;
    result.deadLetters += res.deadLetters;
  }
  session.log.info({ events: result.events, records: result.records, written: result.written }, 'webhook ingested');
  return result;
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
