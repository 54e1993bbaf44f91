/**
 * The webhook inbox (migration 0004): an authenticated delivery is stored before it is answered and processed
 * after, so a crash in between loses nothing; rejected deliveries are recorded with their reason, never their body.
 */
import type { Database } from '../db/database.ts';
import type { Querier } from '../db/tx.ts';

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

/**
 * Claim a delivery for processing: one processor at a time across instances, with no transaction held open while
 * it runs (the embedded database has one connection). A claim older than `staleSeconds` is taken over: its
 * processor died; processing is idempotent, so a second pass changes nothing that the first completed.
 */
export async function claimDelivery(q: Querier, id: string, staleSeconds: number): Promise<Delivery | undefined> {
  const rows = await q<{
    id: string;
    organization_id: string;
    connection: string;
    headers: unknown;
    body: string;
    attempts: number | string;
  }>(
    `update webhook_inbox set status = 'processing', claimed_at = now()
     where id = ?::bigint and (status = 'received' or (status = 'processing' and claimed_at < now() - (? || ' seconds')::interval))
     returning id::text as id, organization_id, connection, headers, body, attempts`,
    [id, String(staleSeconds)],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    id: r.id,
    organizationId: r.organization_id,
    connection: r.connection,
    headers: (typeof r.headers === 'string' ? JSON.parse(r.headers) : r.headers) as Record<string, string>,
    body: r.body,
    attempts: Number(r.attempts),
  };
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

/** Deliveries not processed after `olderThanSeconds` (their processor died, or processing was never started). */
export async function staleDeliveries(db: Database, olderThanSeconds: number, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `select id::text as id from webhook_inbox
     where (status = 'received' and received_at < now() - (? || ' seconds')::interval)
        or (status = 'processing' and claimed_at < now() - (? || ' seconds')::interval)
     order by received_at limit ?`,
    [String(olderThanSeconds), String(olderThanSeconds), limit],
  );
  return rows.map((r) => r.id);
}
