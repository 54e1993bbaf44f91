import type { Database } from '../db/database.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import type { Querier } from '../engine/writer.ts';
import { RoutiqError } from '../errors/registry.ts';
import { storedWithEvidence } from './page-candidates.ts';
import {
  IDENTITY_COLUMNS,
  type IdentityRow,
  parseJson,
  type StoredIdentityRow,
  sourcePriorityOf,
  toStored,
} from './rows.ts';

export { DEFAULT_SOURCE_PRIORITY, type StoredIdentityRow, sourcePriorityOf } from './rows.ts';

/** Either a database (the operation opens its own transaction) or a querier inside a caller's transaction. */
export type DbOrQuerier = Database | Querier;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Run `fn` in one transaction: the caller's (a querier) or a new one of the organization (a database). */
export async function inTransaction<T>(
  dbq: DbOrQuerier,
  fn: (q: Querier) => Promise<T>,
  organizationId: string,
): Promise<T> {
  if (typeof dbq === 'function') return fn(dbq);
  return transaction(forOrganization(dbq, organizationId), fn);
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

/**
 * The organization's live identities (not soft-deleted) linked to live patients (not merged), as the matcher
 * sees them through `findCandidates`. Ordered by source and external id, so plans are deterministic.
 */
export async function loadStoredIdentities(q: Querier, organizationId: string): Promise<StoredIdentityRow[]> {
  const rows = await q<IdentityRow & { evidence: unknown }>(
    `select ${IDENTITY_COLUMNS}, i.evidence
     from patient_identities i join patients p on p.id = i.patient_id
     where i.organization_id = ? and i.deleted_at is null and p.merged_into is null
     order by i.source, i.external_id`,
    [organizationId],
  );
  return rows.map((r) => ({ ...storedWithEvidence(r), id: r.id }));
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
