/**
 * Reads shared by the identity operations (merge, reconcile, duplicates): the organization row, its stored
 * identities as the sdk's `StoredIdentity`, and the per-organization identity lock the writer takes.
 */
import type { StoredIdentity } from '@routiq/sdk';
import type { Database } from '../db/database.ts';
import { transaction } from '../engine/sync.ts';
import type { Querier } from '../engine/writer.ts';
import { RoutiqError } from '../errors/registry.ts';

/** Either a database (the operation opens its own transaction) or a querier inside a caller's transaction. */
export type DbOrQuerier = Database | Querier;

/** Default priority of sources for the unified patient's fields (first wins), as in the sync engine. */
export const DEFAULT_SOURCE_PRIORITY: readonly string[] = Object.freeze(['cliniko', 'chatwoot', 'manychat']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Run `fn` in one transaction: the caller's (a querier) or a new one (a database). */
export async function inTransaction<T>(dbq: DbOrQuerier, fn: (q: Querier) => Promise<T>): Promise<T> {
  if (typeof dbq === 'function') return fn(dbq);
  return transaction(dbq, fn);
}

/**
 * The lock `upsertIdentities` takes: identity creation, merges and unmerges of one organization are serialized
 * until the transaction ends. Re-entrant within a transaction.
 */
export async function lockIdentities(q: Querier, organizationId: string): Promise<void> {
  await q('select pg_advisory_xact_lock(hashtext(?))', [`routiq:identity:${organizationId}`]);
}

export interface OrganizationInfo {
  id: string;
  defaultCountry: string;
  settings: Record<string, unknown>;
  /** `settings.identity.source_priority`, or cliniko > chatwoot > manychat. */
  sourcePriority: string[];
}

function parseJson<T>(v: unknown, fallback: T): T {
  if (v === null || v === undefined) return fallback;
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as T;
    } catch {
      return fallback;
    }
  }
  return v as T;
}

export function sourcePriorityOf(settings: Readonly<Record<string, unknown>>): string[] {
  const identity = settings.identity as { source_priority?: unknown } | undefined;
  const prio = identity?.source_priority;
  return Array.isArray(prio) && prio.length > 0 && prio.every((s) => typeof s === 'string')
    ? [...(prio as string[])]
    : [...DEFAULT_SOURCE_PRIORITY];
}

/** The organization row; RQ1008 when it is not in the database. */
export async function loadOrganization(q: Querier, organizationId: string): Promise<OrganizationInfo> {
  const rows = await q<{ id: string; default_country: string; settings: unknown }>(
    'select id, default_country, settings from organizations where id = ?',
    [organizationId],
  );
  const row = rows[0];
  if (!row) {
    throw new RoutiqError(
      'RQ1008',
      `no organization "${organizationId}" in the database (it is registered by its first sync)`,
    );
  }
  const settings = parseJson<Record<string, unknown>>(row.settings, {});
  return {
    id: row.id,
    defaultCountry: row.default_country.trim(),
    settings,
    sourcePriority: sourcePriorityOf(settings),
  };
}

interface IdentityRow {
  id: string;
  patient_id: string;
  source: string;
  external_id: string;
  first_name: string | null;
  last_name: string | null;
  display_name: string | null;
  email: string | null;
  phone: string | null;
  phone_e164: string | null;
  date_of_birth: string | null;
  cross_refs: unknown;
}

/** A stored identity with its row id. */
export interface StoredIdentityRow extends StoredIdentity {
  id: string;
}

const IDENTITY_COLUMNS = `i.id, i.patient_id, i.source, i.external_id, i.first_name, i.last_name, i.display_name, i.email,
  i.phone, i.phone_e164, to_char(i.date_of_birth, 'YYYY-MM-DD') as date_of_birth, i.cross_refs`;

function toStored(r: IdentityRow): StoredIdentityRow {
  const refs = parseJson<Array<{ source: string; external_id: string }>>(r.cross_refs, []);
  return {
    id: r.id,
    patientId: r.patient_id,
    source: r.source,
    externalId: r.external_id,
    firstName: r.first_name,
    lastName: r.last_name,
    displayName: r.display_name,
    email: r.email,
    phoneRaw: r.phone,
    phoneE164: r.phone_e164,
    dateOfBirth: r.date_of_birth,
    crossRefs: refs.map((c) => ({ source: String(c.source), externalId: String(c.external_id) })),
  };
}

/**
 * The organization's live identities (not soft-deleted) linked to live patients (not merged), as the matcher
 * sees them through `findCandidates`. Ordered by source and external id, so plans are deterministic.
 */
export async function loadStoredIdentities(q: Querier, organizationId: string): Promise<StoredIdentityRow[]> {
  const rows = await q<IdentityRow>(
    `select ${IDENTITY_COLUMNS}
     from patient_identities i join patients p on p.id = i.patient_id
     where i.organization_id = ? and i.deleted_at is null and p.merged_into is null
     order by i.source, i.external_id`,
    [organizationId],
  );
  return rows.map(toStored);
}

/** Every identity (deleted ones too) of the given patients. */
export async function loadPatientIdentities(q: Querier, patientIds: readonly string[]): Promise<StoredIdentityRow[]> {
  if (patientIds.length === 0) return [];
  const rows = await q<IdentityRow>(
    `select ${IDENTITY_COLUMNS} from patient_identities i
     where i.patient_id in (${patientIds.map(() => '?::uuid').join(', ')}) order by i.source, i.external_id`,
    [...patientIds],
  );
  return rows.map(toStored);
}

/**
 * Pairs of patients a person separated (`patients.unmerge`), resolved to the patients that hold them now
 * (following `merged_into`). Reconcile never merges such a pair again and duplicate listings leave it out;
 * a manual merge still can.
 */
export async function loadKeptApart(q: Querier, organizationId: string): Promise<Array<[string, string]>> {
  const rows = await q<{ a: string; b: string }>(
    `select resource_id as a, details->>'into' as b from audit_log
     where organization_id = ? and action = 'patients.unmerge' and resource_type = 'patient'`,
    [organizationId],
  );
  if (rows.length === 0) return [];
  const merged = await q<{ id: string; merged_into: string }>(
    'select id, merged_into from patients where organization_id = ? and merged_into is not null',
    [organizationId],
  );
  const next = new Map(merged.map((r) => [r.id, r.merged_into]));
  const root = (p: string): string => {
    const seen = new Set<string>();
    let cur = p;
    while (next.has(cur) && !seen.has(cur)) {
      seen.add(cur);
      cur = next.get(cur)!;
    }
    return cur;
  };
  return rows.filter((r) => r.a && r.b).map((r) => [root(r.a), root(r.b)] as [string, string]);
}
