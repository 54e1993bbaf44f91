/**
 * The webhook inbox (migration 0004): an authenticated delivery is stored before it is answered and processed
 * after, so a crash in between loses nothing; rejected deliveries are recorded with their reason, never their body.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from '../db/tx.ts';
import { isDataError } from '../engine/write-page.ts';

export interface Delivery {
  id: string;
  organizationId: string;
  connection: string;
  headers: Record<string, string>;
  body: string;
  attempts: number;
}

// Headers that may carry a credential are never stored (the token or signature was checked already).
export { storableHeaders } from '../engine/webhook-headers.ts';

export interface ToStore {
  organizationId: string;
  connection: string;
  deliveryId: string | null;
  headers: Record<string, string>;
  body: string;
}

const KNOWN_DELIVERY = `on conflict (organization_id, connection, delivery_id)
  where delivery_id is not null and status in ('received', 'processing', 'processed', 'failed') do nothing`;

/**
 * Store several authenticated deliveries, of any organizations, in one statement (the group commit of concurrent
 * receives: one commit for all); the answers are in the order of `ds`. A repeat of a known delivery id (stored
 * before, or earlier in `ds`) is recorded as a duplicate, as storeDelivery does. `db` is the inbox's
 * cross-organization path: each row's organization is the one whose credentials authenticated it.
 */
export async function storeDeliveries(db: Database, ds: ToStore[]): Promise<Array<{ id: string; duplicate: boolean }>> {
  if (!ds.length) return [];
  const out: Array<{ id: string; duplicate: boolean }> = [];
  await transaction(db, async (q) => {
    // RETURNING lists the inserted rows in the order of VALUES; a row left out is a known delivery id.
    // The rows travel as one dollar-quoted JSON literal. The driver inlines `?` parameters, escaping each string a
    // character at a time: for 500 deliveries (~1 MB) that took ~170 ms of this process's CPU and much garbage.
    const json = JSON.stringify(
      ds.map((d) => ({
        organization_id: d.organizationId,
        connection: d.connection,
        delivery_id: d.deliveryId,
        headers: d.headers,
        body: d.body,
      })),
    );
    const rows = await q<{ id: string; organization_id: string; connection: string; delivery_id: string | null }>(
      `insert into webhook_inbox (organization_id, connection, delivery_id, headers, body)
       select v.organization_id, v.connection, v.delivery_id, v.headers, v.body
       from rows from (jsonb_to_recordset(${dollarQuoted(json)}::jsonb)
         as (organization_id text, connection text, delivery_id text, headers jsonb, body text))
         with ordinality as v(organization_id, connection, delivery_id, headers, body, n)
       order by v.n ${KNOWN_DELIVERY}
       returning id::text as id, organization_id, connection, delivery_id`,
    );
    const dups: ToStore[] = [];
    const dupAt: number[] = [];
    let j = 0;
    for (const [i, d] of ds.entries()) {
      const r = rows[j];
      if (
        r &&
        r.organization_id === d.organizationId &&
        r.connection === d.connection &&
        r.delivery_id === d.deliveryId
      ) {
        out[i] = { id: r.id, duplicate: false };
        j++;
      } else {
        dups.push(d);
        dupAt.push(i);
      }
    }
    if (!dups.length) return;
    const recorded = await q<{ id: string }>(
      `insert into webhook_inbox (organization_id, connection, delivery_id, headers, status, reason)
       values ${dups.map(() => "(?, ?, ?, ?::jsonb, 'duplicate', 'delivery id seen before')").join(', ')}
       returning id::text as id`,
      dups.flatMap((d) => [d.organizationId, d.connection, d.deliveryId, JSON.stringify(d.headers)]),
    );
    for (const [n, i] of dupAt.entries()) out[i] = { id: (recorded[n] as { id: string }).id, duplicate: true };
  });
  return out;
}

/**
 * A SQL string literal that needs no escaping: dollar-quoted with a random tag the text does not contain (JSON text
 * has no raw NUL: JSON.stringify escapes control characters).
 */
function dollarQuoted(text: string): string {
  let tag: string;
  do tag = `$q${randomBytes(8).toString('hex')}$`;
  while (text.includes(tag));
  return `${tag}${text}${tag}`;
}

/**
 * Group commit: deliveries received while a store is under way (or in the same tick) are stored together by the
 * next one. Each caller's promise settles once its delivery is committed (durable before the answer), or with
 * its own error: a batch the database refuses for a data reason is stored one delivery at a time.
 */
export class InboxWriter {
  private waiting: Array<{
    d: ToStore;
    resolve: (r: { id: string; duplicate: boolean }) => void;
    reject: (e: unknown) => void;
  }> = [];
  private busy = false;
  private storing = 0;

  /** Deliveries waiting for their commit (queued or in the statement under way). */
  get pending(): number {
    return this.waiting.length + this.storing;
  }

  constructor(
    private readonly db: Database,
    private readonly maxBatch = 500,
  ) {}

  store(d: ToStore): Promise<{ id: string; duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ d, resolve, reject });
      if (!this.busy) {
        this.busy = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    // A connection of its own (PostgreSQL): a commit never queues behind processing's statements in the shared pool.
    const db = (await this.db.reserved?.().catch(() => undefined)) ?? this.db;
    while (this.waiting.length) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.storing = batch.length;
      try {
        const stored = await storeDeliveries(
          crossOrganization(db, 'webhook inbox: store the deliveries of several organizations in one commit'),
          batch.map((x) => x.d),
        );
        for (const [i, x] of batch.entries()) x.resolve(stored[i] as { id: string; duplicate: boolean });
      } catch (err) {
        if (!isDataError(err) || batch.length === 1) for (const x of batch) x.reject(err);
        else
          for (const x of batch)
            await storeDelivery(forOrganization(db, x.d.organizationId), x.d).then(x.resolve, x.reject);
      }
      this.storing = 0;
    }
    this.busy = false;
  }
}

/** Store an authenticated delivery; a repeat of a known delivery id is recorded as a duplicate and not queued. */
export async function storeDelivery(
  db: Database,
  d: {
    organizationId: string;
    connection: string;
    deliveryId: string | null;
    headers: Record<string, string>;
    body: string;
  },
): Promise<{ id: string; duplicate: boolean }> {
  if (d.deliveryId !== null) {
    const rows = await db.query<{ id: string }>(
      `insert into webhook_inbox (organization_id, connection, delivery_id, headers, body) values (?, ?, ?, ?::jsonb, ?)
       on conflict (organization_id, connection, delivery_id) where delivery_id is not null and status in ('received', 'processing', 'processed', 'failed')
       do nothing returning id::text as id`,
      [d.organizationId, d.connection, d.deliveryId, JSON.stringify(d.headers), d.body],
    );
    if (rows[0]) return { id: rows[0].id, duplicate: false };
    const dup = await db.query<{ id: string }>(
      `insert into webhook_inbox (organization_id, connection, delivery_id, headers, status, reason)
       values (?, ?, ?, ?::jsonb, 'duplicate', 'delivery id seen before') returning id::text as id`,
      [d.organizationId, d.connection, d.deliveryId, JSON.stringify(d.headers)],
    );
    return { id: (dup[0] as { id: string }).id, duplicate: true };
  }
  const rows = await db.query<{ id: string }>(
    `insert into webhook_inbox (organization_id, connection, headers, body) values (?, ?, ?::jsonb, ?) returning id::text as id`,
    [d.organizationId, d.connection, JSON.stringify(d.headers), d.body],
  );
  return { id: (rows[0] as { id: string }).id, duplicate: false };
}

/** A rejected delivery: who, when, why — without its body (it may carry anything, secrets included). */
export async function recordRejected(
  db: Database,
  d: { organizationId: string; connection: string; headers: Record<string, string>; reason: string },
): Promise<void> {
  await db.query(
    `insert into webhook_inbox (organization_id, connection, headers, status, reason) values (?, ?, ?::jsonb, 'rejected', ?)`,
    [d.organizationId, d.connection, JSON.stringify(d.headers), d.reason.slice(0, 500)],
  );
}

export async function markDelivery(
  q: Querier,
  id: string,
  status: 'processed' | 'failed' | 'received',
  o: { reason?: string; result?: unknown } = {},
): Promise<void> {
  await q(
    `update webhook_inbox set status = ?, reason = ?, result = ?::jsonb, attempts = attempts + 1,
       processed_at = case when ? = 'received' then null else now() end
     where id = ?::bigint`,
    [status, o.reason?.slice(0, 500) ?? null, o.result === undefined ? null : JSON.stringify(o.result), status, id],
  );
}

/**
 * Claim deliveries for processing in one statement: one processor at a time across instances, with no transaction
 * held open while they run (the embedded database has one connection). Those another processor holds are left out;
 * a claim older than `staleSeconds` is taken over (its processor died; processing is idempotent, so a second pass
 * changes nothing that the first completed). In the order they were received.
 */
export async function claimDeliveries(q: Querier, ids: string[], staleSeconds: number): Promise<Delivery[]> {
  if (!ids.length) return [];
  const rows = await q<{
    id: string;
    organization_id: string;
    connection: string;
    headers: unknown;
    body: string;
    attempts: number | string;
  }>(
    `update webhook_inbox set status = 'processing', claimed_at = now()
     where id = any(string_to_array(?, ',')::bigint[])
       and (status = 'received' or (status = 'processing' and claimed_at < now() - (? || ' seconds')::interval))
     returning id::text as id, organization_id, connection, headers, body, attempts`,
    [ids.join(','), String(staleSeconds)],
  );
  return rows
    .map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      connection: r.connection,
      headers: (typeof r.headers === 'string' ? JSON.parse(r.headers) : r.headers) as Record<string, string>,
      body: r.body,
      attempts: Number(r.attempts),
    }))
    .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
}

/** Mark several deliveries processed with their results, in one statement. */
export async function markProcessed(q: Querier, done: Array<{ id: string; result: unknown }>): Promise<void> {
  if (!done.length) return;
  await q(
    `update webhook_inbox as w set status = 'processed', reason = null, result = v.result::jsonb,
       attempts = w.attempts + 1, processed_at = now()
     from (values ${done.map(() => '(?, ?)').join(', ')}) as v(id, result)
     where w.id = v.id::bigint`,
    done.flatMap((d) => [d.id, JSON.stringify(d.result)]),
  );
}

/** Deliveries not processed after `olderThanSeconds` (their processor died, or processing was never started). */
export async function staleDeliveries(
  db: Database,
  olderThanSeconds: number,
  limit: number,
): Promise<Array<{ id: string; organizationId: string; connection: string }>> {
  const rows = await db.query<{ id: string; organization_id: string; connection: string }>(
    `select id::text as id, organization_id, connection from webhook_inbox
     where (status = 'received' and received_at < now() - (? || ' seconds')::interval)
        or (status = 'processing' and claimed_at < now() - (? || ' seconds')::interval)
     order by received_at limit ?`,
    [String(olderThanSeconds), String(olderThanSeconds), limit],
  );
  return rows.map((r) => ({ id: r.id, organizationId: r.organization_id, connection: r.connection }));
}
