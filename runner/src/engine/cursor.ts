/**
 * Incremental cursors and the one repository of `sync_state` (checkpoints and child partitions).
 * `sync_state.connector` holds the connection name: one state per connection of an organization.
 */
import { boundQuery, type Querier } from '../db/tx.ts';
import type { StreamSpec } from '../spec/types.ts';
import { type Bindings, evaluate } from './expr.ts';
import { toIso } from './writer.ts';

export type CursorValue = string | number;
export type CursorType = 'datetime' | 'unix_seconds' | 'integer';

export function compareCursor(a: CursorValue, b: CursorValue, type: CursorType): number {
  if (type === 'datetime') return Date.parse(String(a)) - Date.parse(String(b));
  return Number(a) - Number(b);
}

/** The cursor moved back by the stream's lookback (late writes at the edge are re-read, upserts absorb them). */
export function shiftCursor(v: CursorValue, type: CursorType, lookbackMs: number): CursorValue {
  if (!lookbackMs) return v;
  if (type === 'datetime') return new Date(Date.parse(String(v)) - lookbackMs).toISOString();
  if (type === 'unix_seconds') return Number(v) - lookbackMs / 1000;
  return v;
}

/** `$cursor`, `$cursor_iso`, `$cursor_unix` for a stream's requests. */
export function cursorBindings(v: CursorValue | undefined, type: CursorType): Bindings {
  if (v === undefined) return { cursor: undefined, cursor_iso: undefined, cursor_unix: undefined };
  const iso = type === 'integer' ? undefined : (toIso(v) ?? undefined);
  const isoSeconds = iso?.replace(/\.\d{3}Z$/, 'Z');
  const unix = iso ? Math.floor(Date.parse(iso) / 1000) : undefined;
  return {
    cursor: type === 'datetime' ? isoSeconds : v,
    cursor_iso: isoSeconds,
    cursor_unix: type === 'integer' ? v : unix,
  };
}

/** A stream's state row: partition '' for a top-level stream, the parent's key for a child partition. */
export interface StateKey {
  organizationId: string;
  connection: string;
  stream: string;
  partition: string;
}

const KEY = 'organization_id = ? and connector = ? and stream = ? and partition = ?';
const keyParams = (k: StateKey) => [k.organizationId, k.connection, k.stream, k.partition];
const parseJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

export async function readCursor(q: Querier, k: StateKey): Promise<CursorValue | undefined> {
  const rows = await q<{ cursor: unknown }>(`select cursor from sync_state where ${KEY}`, keyParams(k));
  const c = parseJson(rows[0]?.cursor) as { value?: CursorValue } | null | undefined;
  return c?.value ?? undefined;
}

/**
 * Checkpoint a stream or partition. `done` marks a completed pass (last_successful_sync); an undefined cursor
 * keeps the stored one.
 */
export async function saveCursor(
  q: Querier,
  k: StateKey,
  cursor: CursorValue | undefined,
  o: { status: 'running' | 'idle'; processed: number; done: boolean },
): Promise<void> {
  await saveCursors(q, [{ key: k, cursor, ...o }]);
}

/** A checkpoint to save (saveCursor's arguments as data). */
export interface Checkpoint {
  key: StateKey;
  cursor: CursorValue | undefined;
  status: 'running' | 'idle';
  processed: number;
  done: boolean;
}

/**
 * Several checkpoints in one statement, as if saved one after another: per key the last cursor given (an undefined
 * one keeps the earlier), the last status, the counts added, and a completed pass if any was. A write-behind batch
 * of a child stream checkpoints one partition per parent (a Chatwoot batch: ~80 conversations) in one round trip.
 */
export async function saveCursors(q: Querier, checkpoints: readonly Checkpoint[]): Promise<void> {
  const byKey = new Map<string, Checkpoint>();
  for (const c of checkpoints) {
    const id = JSON.stringify(keyParams(c.key));
    const prev = byKey.get(id);
    byKey.set(
      id,
      prev
        ? {
            key: c.key,
            cursor: c.cursor ?? prev.cursor,
            status: c.status,
            processed: prev.processed + c.processed,
            done: prev.done || c.done,
          }
        : c,
    );
  }
  if (!byKey.size) return;
  const params: unknown[] = [];
  const tuples = [...byKey.values()].map((c) => {
    const cursor = c.cursor === undefined ? null : JSON.stringify({ value: c.cursor });
    params.push(...keyParams(c.key), cursor, c.status, String(c.done), String(c.processed));
    return '(?, ?, ?, ?, ?, ?, ?, ?)';
  });
  await boundQuery(
    q,
    `insert into sync_state as s (organization_id, connector, stream, partition, cursor, status, last_sync_timestamp, last_successful_sync, records_processed)
     select v.o, v.c, v.s, v.p, v.cursor::jsonb, v.status, now(), case when v.done::boolean then now() end, v.processed::bigint
     from (values ${tuples.join(', ')}) as v(o, c, s, p, cursor, status, done, processed)
     on conflict (organization_id, connector, stream, partition) do update set
       cursor = coalesce(excluded.cursor, s.cursor), status = excluded.status, last_sync_timestamp = now(),
       last_successful_sync = coalesce(excluded.last_successful_sync, s.last_successful_sync),
       records_processed = s.records_processed + excluded.records_processed, updated_at = now()`,
    params,
  );
}

interface PartitionMark {
  key: StateKey;
  parent: unknown;
  parentHash?: string;
}

/** The VALUES rows of one marking statement (one per partition: the last mark of a partition wins, as it would one
 * by one, since one statement cannot touch a row twice) and their parameters; undefined when there is nothing to mark. */
function markValues(marks: PartitionMark[]): { tuples: string; params: unknown[] } | undefined {
  const byKey = new Map<string, PartitionMark>();
  for (const m of marks) byKey.set(JSON.stringify(keyParams(m.key)), m);
  if (!byKey.size) return undefined;
  const params: unknown[] = [];
  const tuples = [...byKey.values()].map((m) => {
    params.push(
      ...keyParams(m.key),
      JSON.stringify(
        m.parentHash === undefined ? { parent: m.parent } : { parent: m.parent, parent_hash: m.parentHash },
      ),
    );
    return "(?, ?, ?, ?, 'pending', ?::jsonb)";
  });
  return { tuples: tuples.join(', '), params };
}

/**
 * Child partitions to fetch on the next pass, with the parent records their requests bind as $parent: one
 * statement for a batch of parents.
 */
export async function markPartitionsPending(
  q: Querier,
  marks: PartitionMark[],
  o: { resetCursor?: boolean } = {},
): Promise<void> {
  const v = markValues(marks);
  if (!v) return;
  // A full refresh re-reads children from the start: their cursor goes with the pending mark.
  await boundQuery(
    q,
    `insert into sync_state (organization_id, connector, stream, partition, status, metadata) values ${v.tuples}
     on conflict (organization_id, connector, stream, partition) do update set status = 'pending', metadata = excluded.metadata,
       ${o.resetCursor ? 'cursor = null, ' : ''}updated_at = now()`,
    v.params,
  );
}

/**
 * Child partitions of parents whose rows did not change in this write: pending when the parent record itself
 * differs from the one the partition was last marked with (its hash). The rows may already hold the new state
 * because another stream or a webhook wrote them first (Chatwoot: `conversation_updates` and status webhooks write
 * the conversation before the `conversations` stream reaches it), yet this stream's children were never read for
 * it. A partition marked before parent hashes were kept gets the hash recorded, without a mark.
 */
export async function markPartitionsIfParentChanged(
  q: Querier,
  marks: Array<PartitionMark & { parentHash: string }>,
): Promise<void> {
  const v = markValues(marks);
  if (!v) return;
  await q(
    `insert into sync_state as s (organization_id, connector, stream, partition, status, metadata) values ${v.tuples}
     on conflict (organization_id, connector, stream, partition) do update set
       status = case when s.metadata->'parent_hash' is not null then 'pending' else s.status end,
       metadata = excluded.metadata, updated_at = now()
     where s.metadata->>'parent_hash' is distinct from excluded.metadata->>'parent_hash'`,
    v.params,
  );
}

/** Partitions that failed in an earlier run get another chance. */
export async function retryFailedPartitions(q: Querier, k: Omit<StateKey, 'partition'>): Promise<void> {
  await q(
    "update sync_state set status = 'pending' where organization_id = ? and connector = ? and stream = ? and status = 'error'",
    [k.organizationId, k.connection, k.stream],
  );
}

/** The next pending partitions of a child stream after `after`, in key order (keyset pagination), with their cursors. */
export async function pendingPartitions(
  q: Querier,
  k: Omit<StateKey, 'partition'>,
  after: string,
  limit: number,
): Promise<Array<{ partition: string; parent: unknown; cursor: CursorValue | undefined }>> {
  const rows = await q<{ partition: string; parent: unknown; cursor: unknown }>(
    `select partition, metadata->'parent' as parent, cursor from sync_state
     where organization_id = ? and connector = ? and stream = ? and status = 'pending' and partition > ? order by partition limit ?`,
    [k.organizationId, k.connection, k.stream, after, limit],
  );
  return rows.map((r) => ({
    partition: r.partition,
    parent: parseJson(r.parent),
    cursor: (parseJson(r.cursor) as { value?: CursorValue } | null | undefined)?.value ?? undefined,
  }));
}

export async function markPartitionFailed(q: Querier, k: StateKey): Promise<void> {
  await q(`update sync_state set status = 'error', errors_count = errors_count + 1 where ${KEY}`, keyParams(k));
}

/** The parent record a child partition binds as $parent (undefined when the partition is not tracked). */
export async function partitionParent(q: Querier, k: StateKey): Promise<unknown> {
  const rows = await q<{ parent: unknown }>(
    `select metadata->'parent' as parent from sync_state where ${KEY}`,
    keyParams(k),
  );
  return parseJson(rows[0]?.parent) ?? undefined;
}

export async function partitionExists(q: Querier, k: StateKey): Promise<boolean> {
  return (await q(`select 1 as x from sync_state where ${KEY}`, keyParams(k))).length > 0;
}

/** Mark a tracked partition pending again (DLQ requeue); false when it is not tracked. */
export async function requeuePartition(q: Querier, k: StateKey): Promise<boolean> {
  const rows = await q(
    `update sync_state set status = 'pending', updated_at = now() where ${KEY} returning partition`,
    keyParams(k),
  );
  return rows.length > 0;
}

/**
 * One page's records against the incremental cursor (sync and the workbench alike): the page's newest cursor value,
 * and — with `client_filter` or `stop_when_older` — only the records not older than `effective`; `reachedOld` when
 * a record older than it was seen under `stop_when_older`.
 */
export async function filterPageByCursor(
  inc: NonNullable<StreamSpec['incremental']>,
  records: unknown[],
  data: Bindings,
  effective: CursorValue | undefined,
): Promise<{ records: unknown[]; pageMax: CursorValue | undefined; reachedOld: boolean }> {
  const cursorType = inc.type ?? 'datetime';
  const kept: unknown[] = [];
  let pageMax: CursorValue | undefined;
  let reachedOld = false;
  for (const r of records) {
    const v = (await evaluate(inc.cursor_field, r, data)) as CursorValue | undefined;
    if (v !== undefined && v !== null && v !== '') {
      if (pageMax === undefined || compareCursor(v, pageMax, cursorType) > 0) pageMax = v;
      if (effective !== undefined && compareCursor(v, effective, cursorType) < 0) {
        if (inc.stop_when_older) reachedOld = true;
        if (inc.client_filter || inc.stop_when_older) continue;
      }
    }
    kept.push(r);
  }
  return { records: kept, pageMax, reachedOld };
}
