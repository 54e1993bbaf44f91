import { createHmac, timingSafeEqual } from 'node:crypto';
import { getHook, type HookContext, type MatchIdentityHook } from '@routiq/sdk';
import type { Logger } from 'pino';
import { resolveSecrets } from '../config/load.ts';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { RoutiqError } from '../errors/registry.ts';
import { sourcePriorityOf } from '../identity/rows.ts';
import { loadConnector } from '../spec/load.ts';
import type { WebhookVerify } from '../spec/types.ts';
import { insertDeadLetter, markPartitionPending, readOnlyDb } from './bookkeeping.ts';
import { buildConnectionContext } from './connection.ts';
import { type Bindings, evaluate, renderString } from './expr.ts';
import { transaction } from '../db/tx.ts';
import { ensureOrganization, mapRecords } from './sync.ts';
import { type Querier, relink, writeRows } from './writer.ts';

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
      const got = v.header ? headers[v.header.toLowerCase()] : v.query ? query[v.query] : undefined;
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
        if (Math.abs(now / 1000 - ts) > (v.tolerance_seconds ?? 300))
          reject('timestamp outside the allowed window (replay?)');
      }
      const message = v.message ? await renderString(v.message, { ...b, headers, body_raw: raw }) : raw;
      const expected = (v.prefix ?? '') + createHmac('sha256', secret).update(message).digest('hex');
      const got = headers[v.header.toLowerCase()];
      if (!got || !safeEqual(got, expected)) reject('bad signature');
      return;
    }
  }
}

/**
 * Authenticate a pushed payload, map it with the spec's webhook events and write it like a synced record.
 * Webhook streams also mark enrichment partitions (streams whose parent is a webhook event) for the next sync.
 * Redelivery is harmless: writes are upserts on natural keys.
 */
export async function ingestWebhook(o: IngestOptions): Promise<WebhookResult> {
  const { spec } = loadConnector(o.config.connectorsDir, o.conn.connector);
  if (!spec.webhooks) throw new RoutiqError('RQ5005', `connector ${spec.name} does not accept webhooks`);
  const secrets = resolveSecrets(o.conn, o.org.id, o.env);
  const cctx = await buildConnectionContext(spec, o.org, o.conn, secrets);
  const headers = lowerHeaders(o.headers);
  await verify(spec.webhooks.verify, headers, o.query ?? {}, o.rawBody, cctx.bindings, o.now ?? Date.now());
  let payload: unknown;
  try {
    payload = JSON.parse(o.rawBody);
  } catch (e) {
    throw new RoutiqError('RQ5005', `webhook body is not JSON: ${(e as Error).message}`);
  }
  await ensureOrganization(o.db, o.org);
  const hookName = spec.identity?.match_identity ?? 'identity.match';
  const match = getHook(hookName, 'match_identity') as MatchIdentityHook;
  const log = o.logger.child({ org: o.org.id, connection: o.conn.name, connector: spec.name, webhook: true });
  const hookCtx = (q: Querier): HookContext => ({
    organizationId: o.org.id,
    connector: spec.name,
    logger: log,
    db: readOnlyDb(q),
    settings: o.org.settings,
    defaultCountry: o.org.defaultCountry,
  });
  const result: WebhookResult = { status: 'ignored', events: [], records: 0, written: 0, deadLetters: 0 };
  const bindings: Bindings = { ...cctx.bindings, headers };
  for (const ev of spec.webhooks.events) {
    if (!(await evaluate(ev.when, payload, bindings))) continue;
    result.status = 'accepted';
    result.events.push(ev.name);
    const recs = ev.records ? await evaluate(ev.records, payload, bindings) : payload;
    const records = recs === undefined || recs === null ? [] : Array.isArray(recs) ? recs : [recs];
    result.records += records.length;
    const mapped = await mapRecords(
      `webhook:${ev.name}`,
      ev.map,
      undefined,
      records,
      bindings,
      undefined,
      hookCtx,
      o.db,
    );
    await transaction(o.db, async (q) => {
      const res = await writeRows(
        q,
        {
          organizationId: o.org.id,
          source: spec.name,
          specVersion: spec.version,
          stream: `webhook:${ev.name}`,
          runId: null,
          defaultCountry: o.org.defaultCountry,
          matchIdentity: match,
          hookContext: hookCtx,
          sourcePriority: sourcePriorityOf(o.org.settings),
        },
        mapped.rows,
      );
      result.written += res.inserted + res.updated;
      for (const d of mapped.dead) {
        await insertDeadLetter(q, {
          organizationId: o.org.id,
          connector: spec.name,
          connection: o.conn.name,
          stream: `webhook:${ev.name}`,
          runId: null,
          errorClass: d.cls,
          errorCode: d.code,
          message: d.message,
          details: d.details,
          recordKey: d.key,
          payload: d.record,
          specVersion: spec.version,
        });
      }
      result.deadLetters += mapped.dead.length;
      // Enrichment streams fed by this event: one pending partition per pushed record.
      for (const s of spec.streams.filter((x) => x.parent?.webhook === ev.name)) {
        for (const r of records) {
          const k = await evaluate(s.parent?.key ?? 'id', r, bindings);
          if (k === undefined || k === null || k === '') continue;
          await markPartitionPending(
            q,
            { organizationId: o.org.id, connection: o.conn.name, stream: s.name, partition: String(k) },
            r,
          );
        }
      }
      await relink(q, o.org.id, spec.name);
    });
  }
  log.info({ events: result.events, records: result.records, written: result.written }, 'webhook ingested');
  return result;
}
