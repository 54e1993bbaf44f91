/**
 * Test support (not used by the product): write identities, conversations and appointments through the engine's
 * writer exactly as a sync does (identity resolution by the sdk `matchIdentity` hook under the identity lock).
 */
import { type HookLogger, type IdentityInput, matchIdentity } from '@routiq/sdk';
import type { Database } from '../db/database.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { type MappedRow, type Querier, type WriteContext, writeRows } from '../engine/writer.ts';
import { DEFAULT_SOURCE_PRIORITY } from './store.ts';

const silent: HookLogger = { debug() {}, info() {}, warn() {}, error() {} };

export async function createOrganization(
  db: Database,
  id: string,
  opts: { defaultCountry?: string; settings?: Record<string, unknown> } = {},
): Promise<void> {
  await db.query('insert into organizations (id, name, default_country, settings) values (?, ?, ?, ?::jsonb)', [
    id,
    `Org ${id}`,
    opts.defaultCountry ?? 'AU',
    JSON.stringify(opts.settings ?? {}),
  ]);
}

export function writeContext(
  organizationId: string,
  source: string,
  opts: { defaultCountry?: string; settings?: Record<string, unknown>; stream?: string } = {},
): WriteContext {
  const defaultCountry = opts.defaultCountry ?? 'AU';
  const settings = opts.settings ?? {};
  return {
    organizationId,
    source,
    specVersion: 'test-1',
    stream: opts.stream ?? 'test',
    runId: null,
    defaultCountry,
    matchIdentity,
    hookContext: (q: Querier) => ({
      organizationId,
      connector: source,
      logger: silent,
      db: { query: (sql, params) => q(sql, params ?? []) },
      settings,
      defaultCountry,
    }),
    sourcePriority: [...DEFAULT_SOURCE_PRIORITY],
  };
}

/** The mapped row a connector would produce for an identity. */
export function identityRow(i: IdentityInput, extra: Record<string, unknown> = {}): MappedRow {
  const row: Record<string, unknown> = { external_id: i.externalId };
  const set = (k: string, v: unknown) => {
    if (v !== undefined && v !== null) row[k] = v;
  };
  set('first_name', i.firstName);
  set('last_name', i.lastName);
  set('display_name', i.displayName);
  set('email', i.email);
  set('phone', i.phoneRaw ?? i.phoneE164);
  set('country_hint', i.countryHint);
  set('date_of_birth', i.dateOfBirth);
  row.cross_refs = (i.crossRefs ?? []).map((r) => ({ source: r.source, external_id: r.externalId }));
  if (i.evidence) row.evidence = i.evidence;
  Object.assign(row, extra);
  return { target: 'patient_identities', mode: 'upsert', row, sourceHash: `h:${i.source}:${i.externalId}` };
}

/** Write identities one at a time, in the given order (each one may match those before it). */
export async function writeIdentities(db: Database, organizationId: string, identities: IdentityInput[]) {
  for (const i of identities) {
    await transaction(forOrganization(db, organizationId), (q) =>
      writeRows(q, writeContext(organizationId, i.source), [identityRow(i)]),
    );
  }
}

/** What `writeIdentityPages` sent: pages written, SQL statements, and of those the candidate lookups. */
export interface StatementCount {
  pages: number;
  statements: number;
  candidateQueries: number;
}

/**
 * Write identities as a sync does: pages of `pageSize` of one source each, one transaction per page (the writer
 * fetches the candidates of a page with one query), inside the organization (row-level security).
 */

export async function writeIdentityPages(
  db: Database,
  organizationId: string,
  identities: IdentityInput[],
  pageSize = 25,
  count?: StatementCount,
): Promise<void> {
  let page: IdentityInput[] = [];
  const flush = async () => {
    if (page.length === 0) return;
    const rows = page;
    page = [];
    if (count) count.pages++;
    await transaction(forOrganization(db, organizationId), (q) =>
      writeRows(
        count
          ? (sql, params) => {
              count.statements++;
              if (/^\s*select\b[\s\S]*\bfrom patient_identities i\b/.test(sql)) count.candidateQueries++;
              return q(sql, params);
            }
          : q,
        writeContext(organizationId, rows[0]!.source),
        rows.map((i) => identityRow(i)),
      ),
    );
  };
  for (const i of identities) {
    if (page.length > 0 && (page[0]!.source !== i.source || page.length >= pageSize)) await flush();
    page.push(i);
  }
  await flush();
}

export async function writeConversation(
  db: Database,
  organizationId: string,
  source: string,
  externalId: string,
  patientExternalId: string,
): Promise<void> {
  await transaction(forOrganization(db, organizationId), (q) =>
    writeRows(q, writeContext(organizationId, source, { stream: 'conversations' }), [
      {
        target: 'conversations',
        mode: 'upsert',
        row: {
          external_id: externalId,
          patient_external_id: patientExternalId,
          channel: 'whatsapp',
          status: 'open',
          started_at: '2025-06-01T10:00:00Z',
        },
        sourceHash: `h:conv:${externalId}`,
      },
    ]),
  );
}

export async function writeAppointment(
  db: Database,
  organizationId: string,
  externalId: string,
  patientExternalId: string,
): Promise<void> {
  await transaction(forOrganization(db, organizationId), (q) =>
    writeRows(q, writeContext(organizationId, 'cliniko', { stream: 'appointments' }), [
      {
        target: 'appointments',
        mode: 'upsert',
        row: {
          external_id: externalId,
          patient_external_id: patientExternalId,
          status: 'booked',
          starts_at: '2025-07-01T09:00:00Z',
          ends_at: '2025-07-01T09:30:00Z',
        },
        sourceHash: `h:appt:${externalId}`,
      },
    ]),
  );
}

/** `source:external_id` → patient id. */
export async function patientOf(db: Database, organizationId: string): Promise<Map<string, string>> {
  const rows = await db.query<{ source: string; external_id: string; patient_id: string }>(
    'select source, external_id, patient_id from patient_identities where organization_id = ?',
    [organizationId],
  );
  return new Map(rows.map((r) => [`${r.source}:${r.external_id}`, r.patient_id]));
}

/** Full rows of a table for one organization as JSON, ordered by id (for before/after comparisons). */
export async function snapshotTable(
  db: Database,
  table: 'patients' | 'patient_identities' | 'conversations' | 'appointments',
  organizationId: string,
  omit: readonly string[] = [],
): Promise<Array<Record<string, unknown>>> {
  const rows = await db.query<{ row: unknown }>(
    `select to_jsonb(t) as row from ${table} t where t.organization_id = ? order by t.id`,
    [organizationId],
  );
  return rows.map((r) => {
    const row = (typeof r.row === 'string' ? JSON.parse(r.row) : r.row) as Record<string, unknown>;
    for (const k of omit) delete row[k];
    return row;
  });
}
