import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization, transaction } from '../db/tx.ts';
import type { Querier } from '../engine/writer.ts';
import { RoutiqError } from '../errors/registry.ts';
import { recordAudit } from '../security/audit.ts';
import { assertDeadLetterId, type DeadLetterFilter, limitClause, whereClause } from './filter.ts';

/** One row of sync_errors. Times are ISO strings (UTC). */
export interface DeadLetter {
  id: string;
  organizationId: string;
  connector: string;
  connection: string;
  stream: string | null;
  syncRunId: string | null;
  errorClass: string;
  errorCode: string;
  message: string;
  details: Record<string, unknown>;
  recordKey: string | null;
  /** The raw platform record (null for request-level letters). */
  payload: unknown;
  specVersion: string | null;
  retryCount: number;
  resolved: boolean;
  resolvedAt: string | null;
  resolution: string | null;
  createdAt: string;
  updatedAt: string;
  /** Seconds since created_at, by the database clock. */
  ageSeconds: number;
}

interface Row {
  id: string;
  organization_id: string;
  connector: string;
  connection: string;
  stream: string | null;
  sync_run_id: string | null;
  error_class: string;
  error_code: string;
  message: string;
  details: unknown;
  record_key: string | null;
  payload: unknown;
  spec_version: string | null;
  retry_count: number | string;
  resolved: boolean | string;
  resolved_at: Date | string | null;
  resolution: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  age_seconds: number | string;
}

export const DEAD_LETTER_COLUMNS = `e.id, e.organization_id, e.connector, e.connection, e.stream, e.sync_run_id, e.error_class,
  e.error_code, e.message, e.details, e.record_key, e.payload, e.spec_version, e.retry_count, e.resolved, e.resolved_at,
  e.resolution, e.created_at, e.updated_at, extract(epoch from now() - e.created_at)::float8 as age_seconds`;

const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
const iso = (v: Date | string | null): string | null =>
  v === null ? null : v instanceof Date ? v.toISOString() : new Date(v).toISOString();

export function toDeadLetter(r: Row): DeadLetter {
  return {
    id: r.id,
    organizationId: r.organization_id,
    connector: r.connector,
    connection: r.connection,
    stream: r.stream,
    syncRunId: r.sync_run_id,
    errorClass: r.error_class,
    errorCode: r.error_code,
    message: r.message,
    details: (json(r.details) ?? {}) as Record<string, unknown>,
    recordKey: r.record_key,
    payload: r.payload === null || r.payload === undefined ? null : json(r.payload),
    specVersion: r.spec_version,
    retryCount: Number(r.retry_count),
    resolved: r.resolved === true || r.resolved === 't' || r.resolved === 'true',
    resolvedAt: iso(r.resolved_at),
    resolution: r.resolution,
    createdAt: iso(r.created_at) as string,
    updatedAt: iso(r.updated_at) as string,
    ageSeconds: Math.max(0, Math.floor(Number(r.age_seconds))),
  };
}

/**
 * The operator's DLQ commands work across organizations unless the filter names one: the organization's scope then,
 * else the admin path (docs/database.md#cross-organization-paths).
 */
export function dlqScope(db: Database, filter: DeadLetterFilter): Database {
  return filter.org !== undefined ? forOrganization(db, filter.org) : crossOrganization(db, 'dlq: operator command');
}

/** Dead letters matching the filter, newest first. */
export async function listDeadLetters(
  db: Database,
  filter: DeadLetterFilter = {},
  opts: { order?: 'newest' | 'oldest' } = {},
): Promise<DeadLetter[]> {
  const w = whereClause(filter);
  const dir = opts.order === 'oldest' ? 'asc' : 'desc';
  const rows = await dlqScope(db, filter).query<Row>(
    `select ${DEAD_LETTER_COLUMNS} from sync_errors e where ${w.sql} order by e.created_at ${dir}, e.id ${dir}${limitClause(filter.limit)}`,
    w.params,
  );
  return rows.map(toDeadLetter);
}

/** How many dead letters match the filter (its limit ignored). */
export async function countDeadLetters(db: Database, filter: DeadLetterFilter = {}): Promise<number> {
  const w = whereClause({ ...filter, limit: undefined });
  const rows = await dlqScope(db, filter).query<{ n: string | number }>(
    `select count(*)::int as n from sync_errors e where ${w.sql}`,
    w.params,
  );
  return Number(rows[0]?.n ?? 0);
}

/** One dead letter, or undefined. A malformed id is a usage error (RQ6001). */
export async function getDeadLetter(db: Database, id: string): Promise<DeadLetter | undefined> {
  const rows = await dlqScope(db, {}).query<Row>(
    `select ${DEAD_LETTER_COLUMNS} from sync_errors e where e.id = ?::uuid`,
    [assertDeadLetterId(id)],
  );
  return rows[0] ? toDeadLetter(rows[0]) : undefined;
}

export interface ResolveOptions {
  /** Stored in sync_errors.resolution (e.g. the operator's reason). */
  resolution: string;
  /** Who did it, for audit_log (e.g. `cli:alice@host`). */
  actor: string;
  /** Extra audit details. */
  details?: Record<string, unknown>;
}

export interface ResolveResult {
  resolved: string[];
  skipped: Array<{ id: string; reason: 'not found' | 'already resolved' }>;
}

/**
 * Mark dead letters resolved (resolved_at, resolution) and write one audit_log row each (`dlq.resolve`), in one
 * transaction. Given ids, every id is accounted for (resolved or skipped); given a filter, open letters matching it.
 */
export async function resolveDeadLetters(
  db: Database,
  target: string[] | DeadLetterFilter,
  o: ResolveOptions,
): Promise<ResolveResult> {
  if (!o.resolution.trim()) throw new RoutiqError('RQ6001', 'a resolution (reason) is required');
  if (!o.actor.trim()) throw new RoutiqError('RQ6001', 'an actor is required');
  const byIds = Array.isArray(target);
  const filter: DeadLetterFilter = byIds ? { ids: target } : { ...target, resolved: false };
  const w = whereClause(filter);
  return transaction(dlqScope(db, filter), async (q) => {
    const candidates = await q<{ id: string; resolved: boolean | string }>(
      `select e.id, e.resolved from sync_errors e where ${w.sql} order by e.created_at, e.id${limitClause(filter.limit)} for update`,
      w.params,
    );
    const result: ResolveResult = { resolved: [], skipped: [] };
    const open: string[] = [];
    for (const c of candidates) {
      if (c.resolved === true || c.resolved === 't') result.skipped.push({ id: c.id, reason: 'already resolved' });
      else open.push(c.id);
    }
    if (byIds) {
      const found = new Set(candidates.map((c) => c.id));
      for (const id of target.map((x) => x.toLowerCase()))
        if (!found.has(id) && !result.skipped.some((s) => s.id === id))
          result.skipped.push({ id, reason: 'not found' });
    }
    for (const id of open) {
      await markResolved(q, id, o.resolution, o.actor, 'dlq.resolve', o.details ?? {});
      result.resolved.push(id);
    }
    return result;
  });
}

/** Resolve one open letter and audit it (inside the caller's transaction). */
export async function markResolved(
  q: Querier,
  id: string,
  resolution: string,
  actor: string,
  action: string,
  details: Record<string, unknown>,
): Promise<boolean> {
  const rows = await q<{
    organization_id: string;
    connector: string;
    connection: string;
    stream: string | null;
    error_class: string;
    error_code: string;
    record_key: string | null;
  }>(
    `update sync_errors set resolved = true, resolved_at = now(), resolution = ?, updated_at = now()
     where id = ?::uuid and not resolved
     returning organization_id, connector, connection, stream, error_class, error_code, record_key`,
    [resolution, id],
  );
  const r = rows[0];
  if (!r) return false;
  await audit(q, actor, action, id, r.organization_id, {
    resolution,
    connector: r.connector,
    connection: r.connection,
    stream: r.stream,
    error_class: r.error_class,
    error_code: r.error_code,
    record_key: r.record_key,
    ...details,
  });
  return true;
}

export async function audit(
  q: Querier,
  actor: string,
  action: string,
  resourceId: string,
  organizationId: string | null,
  details: Record<string, unknown>,
): Promise<void> {
  await recordAudit(q, {
    actor,
    organizationId,
    action,
    resourceType: 'sync_error',
    resourceId,
    count: 1,
    details,
  });
}
