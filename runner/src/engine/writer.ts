import { randomUUID } from 'node:crypto';
import type { UnifiedTarget } from '@routiq/schemas';
import type {
  HookContext,
  IdentityEvidence,
  IdentityInput,
  MatchContext,
  MatchIdentityHook,
  StoredIdentity,
} from '@routiq/sdk';
import { normalizePhone } from '@routiq/sdk';
import { evidenceForStorage, identityNameKey, inboxPhoneE164, normalizeIdentityForStorage } from '@routiq/sdk/identity';
import { pgArray } from '../db/pg-array.ts';
import { boundQuery, type Querier } from '../db/tx.ts';
import { marking } from '../identity/marks.ts';
import {
  crossRefKey,
  idCondition,
  identityKeySql,
  PageCandidates,
  storedWithEvidence,
} from '../identity/page-candidates.ts';
import { IDENTITY_COLUMNS, type IdentityRow } from '../identity/rows.ts';
import { type Column, type Reference, targetInfo } from './columns.ts';
import { sanitize, storable } from './sanitize.ts';
import { stageEnd, stageStart } from './stage-clock.ts';

/** Run SQL inside the current transaction (`?` placeholders). */
export type { Querier } from '../db/tx.ts';

export interface MappedRow {
  target: UnifiedTarget;
  mode: 'upsert' | 'patch';
  row: Record<string, unknown>;
  /** Hash of the raw platform record (lineage). */
  sourceHash: string;
  /** The platform's version of the record (ISO-8601; spec `map[].version`); undefined: current at fetch time. */
  version?: string | null | undefined;
  /** Text in the raw record was sanitized (NUL / lone surrogates replaced). */
  sanitized?: boolean | undefined;
}

export interface WriteContext {
  organizationId: string;
  source: string;
  specVersion: string;
  stream: string;
  /** null for pushed (webhook) writes. */
  runId: string | null;
  defaultCountry: string;
  matchIdentity: MatchIdentityHook;
  hookContext: (q: Querier) => HookContext;
  /** Source priority for the unified patient's fields (first wins). */
  sourcePriority: string[];
}

export interface WriteResult {
  inserted: number;
  updated: number;
  unchanged: number;
  /** external_ids per target that were inserted or changed (drives child fan-out). */
  changed: Map<UnifiedTarget, Set<string>>;
  /**
   * Of those, the ones whose links the write statement itself resolved, per `resolvedKey(target, field)`: an upsert
   * that carried the reference field took the parent's value as its transaction saw it, so relinking them in the same
   * transaction finds nothing to do (relinkQueries' `resolved`).
   */
  resolved: Map<string, Set<string>>;
}

/** The key of WriteResult.resolved: a target and one of its reference fields. */
export const resolvedKey = (target: UnifiedTarget, field: string): string => `${target}.${field}`;

/** Values go in as text literals and are cast in SQL: one shape for every type, on PGlite and PostgreSQL. */
function lit(v: unknown, c: Column): string | null {
  if (v === undefined || v === null || v === '') return c.sqlType === 'text' && v === '' ? '' : null;
  // Rows from mappings are already clean (map.ts); hooks' rows are not: PostgreSQL refuses NUL and lone surrogates.
  if (c.sqlType === 'jsonb') return JSON.stringify(storable(v));
  if (c.sqlType === 'timestamptz') return toIso(v);
  if (c.sqlType === 'bigint' || c.sqlType === 'integer') return String(Math.trunc(Number(v)));
  if (c.sqlType === 'boolean') return v ? 'true' : 'false';
  const text = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return sanitize(text).value as string;
}

/** Accepts ISO strings, unix seconds (int or float) and unix milliseconds. */
export function toIso(v: unknown): string | null {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'number') return new Date(v > 1e12 ? v : v * 1000).toISOString();
  if (typeof v === 'string') {
    if (/^\d+(\.\d+)?$/.test(v)) return toIso(Number(v));
    const t = Date.parse(v);
    return Number.isNaN(t) ? v : new Date(t).toISOString();
  }
  return null;
}

const JSON_DEFAULT = new Set(['metadata']);

/** Per-row lineage values every VALUES list carries after the mapped columns. */
const LINEAGE_VALUES = ['source_hash', 'source_version', 'sanitized'];

function dedupe(rows: MappedRow[]): MappedRow[] {
  // ON CONFLICT cannot touch one row twice in a statement: the newest version of a key wins (the last on a tie).
  // Evidence accumulates (see EVIDENCE_UNION), so the evidence of the rows that lose is kept on the winner.
  const byKey = new Map<string, MappedRow>();
  const evidence = new Map<string, unknown[]>();
  for (const r of rows) {
    const k = String(r.row.external_id);
    if (Array.isArray(r.row.evidence)) evidence.set(k, [...(evidence.get(k) ?? []), ...r.row.evidence]);
    const prev = byKey.get(k);
    if (prev && !supersedes(r, prev)) continue;
    byKey.set(k, r);
  }
  return [...byKey.entries()].map(([k, r]) => {
    const all = evidence.get(k);
    return all && all.length > 0 ? { ...r, row: { ...r.row, evidence: all } } : r;
  });
}

/**
 * Whether `r` replaces `prev` (same key, later in the batch): not when it is older; on a tie, not when it would
 * undo a deletion (the upsert's tie rule: of one version, a deletion is the later event).
 */
export function supersedes(r: MappedRow, prev: MappedRow): boolean {
  if (!prev.version || !r.version) return true;
  const a = Date.parse(r.version);
  const b = Date.parse(prev.version);
  return !(a < b) && !(a === b && isDeletion(prev) && !isDeletion(r));
}

function isDeletion(r: MappedRow): boolean {
  return r.row.deleted_at !== undefined && r.row.deleted_at !== null && r.row.deleted_at !== '';
}

/**
 * `patient_identities.evidence` accumulates: what a write maps is added to what is stored (deduplicated), never
 * replacing it. Evidence comes from several places — the contact's inboxes on the contact record, phones and
 * emails written in its messages (a patch from the messages stream) — and each write carries only its own part.
 */
const EVIDENCE_UNION = (stored: string, mapped: string): string =>
  `(select jsonb_agg(distinct e) from jsonb_array_elements(coalesce(${stored}, '[]'::jsonb) || coalesce(${mapped}::jsonb, '[]'::jsonb)) as e)`;

/** The value a column takes in an update of `t` from `v`. */
function assigned(target: UnifiedTarget, c: Column): string {
  if (target === 'patient_identities' && c.name === 'evidence') return EVIDENCE_UNION('t.evidence', 'v.evidence');
  return `v.${c.name}::${c.sqlType}`;
}

export async function writeRows(q: Querier, ctx: WriteContext, rows: MappedRow[]): Promise<WriteResult> {
  const result: WriteResult = { inserted: 0, updated: 0, unchanged: 0, changed: new Map(), resolved: new Map() };
  const groups = new Map<string, MappedRow[]>();
  for (const r of rows) {
    const k = `${r.target}|${r.mode}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  // Identities first so references resolve in the same transaction; then parents before children.
  const order: UnifiedTarget[] = [
    'patient_identities',
    'practitioners',
    'appointment_types',
    'inboxes',
    'conversations',
    'appointments',
    'messages',
    'attachments',
  ];
  for (const target of order) {
    for (const mode of ['upsert', 'patch'] as const) {
      const g = groups.get(`${target}|${mode}`);
      if (!g?.length) continue;
      const batch = dedupe(g);
      const changed = result.changed.get(target) ?? new Set<string>();
      result.changed.set(target, changed);
      let r: { inserted: number; updated: number; keys: string[]; resolvedFields?: string[] };
      if (mode === 'patch') r = await patchRows(q, ctx, target, batch);
      else if (target === 'patient_identities') {
        const t0 = stageStart();
        r = await upsertIdentities(q, ctx, batch);
        stageEnd('identity', t0);
      } else r = await upsertRows(q, ctx, target, batch);
      result.inserted += r.inserted;
      result.updated += r.updated;
      result.unchanged += batch.length - r.inserted - r.updated;
      for (const k of r.keys) changed.add(k);
      for (const field of r.resolvedFields ?? []) {
        const key = resolvedKey(target, field);
        const set = result.resolved.get(key) ?? new Set<string>();
        result.resolved.set(key, set);
        for (const k of r.keys) set.add(k);
      }
    }
  }
  return result;
}

/**
 * The rows of a batch as a FROM item, `unnest(?::text[], …)`: one text array per column (pgArray), each value a text
 * literal cast in SQL as before. A VALUES list of one parameter per value cost PostgreSQL more to parse and plan
 * than to run (about 1 ms per 500-row statement), and the runner a placeholder and a bind value each.
 */
function valuesClause(
  batch: MappedRow[],
  ctx: WriteContext,
  cols: Column[],
  extra: (r: MappedRow) => Array<string | null> = () => [],
): {
  sql: string;
  params: string[];
} {
  const columns: Array<Array<string | null>> = [];
  const push = (i: number, v: string | null) => {
    const c = columns[i];
    if (c) c.push(v);
    else columns[i] = [v];
  };
  for (const r of batch) {
    let i = 0;
    push(i++, ctx.organizationId);
    push(i++, ctx.source);
    for (const c of cols)
      push(i++, lit(r.row[c.name], c) ?? (JSON_DEFAULT.has(c.name) ? '{}' : c.name === 'cross_refs' ? '[]' : null));
    push(i++, r.sourceHash);
    push(i++, r.version ?? null);
    push(i++, String(!!r.sanitized));
    for (const v of extra(r)) push(i++, v);
  }
  return { sql: `unnest(${columns.map(() => '?::text[]').join(', ')})`, params: columns.map((c) => pgArray(c)) };
}

/**
 * Only the columns some row of the batch produced are written and compared: a column filled by another
 * step (e.g. appointment_type by relink) is not reset to null by a mapping that never sets it.
 */
function presentColumns(all: Column[], batch: MappedRow[]): Column[] {
  return all.filter((c) => c.name === 'external_id' || batch.some((r) => c.name in r.row));
}

async function upsertRows(q: Querier, ctx: WriteContext, target: UnifiedTarget, batch: MappedRow[]) {
  const full = targetInfo(target);
  const cols = presentColumns(full.columns, batch);
  const present = full.references.filter((r) => cols.some((c) => c.name === r.field));
  const refSelect = (ref: Reference) =>
    ref.via === 'patient_identities'
      ? `(select x.patient_id from patient_identities x where x.organization_id = v.organization_id and x.source = v.source and x.external_id = v.${ref.field})`
      : `(select x.${ref.value ?? 'id'} from ${ref.table} x where x.organization_id = v.organization_id and x.source = v.source and x.external_id = v.${ref.field})`;
  // A name the mapping also sets itself (appointment_type mapped directly): the parent's name wins where the parent
  // is there, as the relink would set it; else the mapped value.
  const overrides = new Map(
    present.filter((r) => cols.some((c) => c.name === r.column)).map((r) => [r.column, refSelect(r)] as const),
  );
  const info = { ...full, references: present.filter((r) => !overrides.has(r.column)) };
  const v = valuesClause(batch, ctx, cols);
  const vnames = ['organization_id', 'source', ...cols.map((c) => c.name), ...LINEAGE_VALUES];
  const refSelects = info.references.map(refSelect);
  const colList = [...cols.map((c) => c.name), ...info.references.map((r) => r.column)];
  const colValue = (c: Column) => {
    const o = overrides.get(c.name);
    return o ? `coalesce(${o}, v.${c.name}::${c.sqlType})` : `v.${c.name}::${c.sqlType}`;
  };
  // Two deliveries of one version (a message created and deleted within the same second; webhooks arrive in any
  // order): the deletion is the later event, so a live copy of the same version never undoes it.
  const tieKeepsDeletion = cols.some((c) => c.name === 'deleted_at')
    ? '\n  and not (excluded.source_version = t.source_version and t.deleted_at is not null and excluded.deleted_at is null)'
    : '';
  // Unversioned rows (polled, current at fetch time) carry now(), the transaction's start: they always apply.
  // A versioned row applies only when it is not older than the stored version (late or replayed deliveries).
  const sql = `insert into ${target} as t (organization_id, source, ${colList.join(', ')}, source_hash, source_version, sanitized, spec_version, stream, last_sync_run_id)
select v.organization_id, v.source, ${cols.map(colValue).join(', ')}${refSelects.length ? `, ${refSelects.join(', ')}` : ''}, v.source_hash, coalesce(v.source_version::timestamptz, now()), v.sanitized::boolean, ?, ?, ?::uuid
from ${v.sql} as v(${vnames.join(', ')})
on conflict (organization_id, source, external_id) do update set
  ${cols.map((c) => `${c.name} = excluded.${c.name}`).join(', ')},
  ${info.references.map((r) => `${r.column} = coalesce(excluded.${r.column}, t.${r.column})`).join(', ')}${info.references.length ? ',' : ''}
  source_hash = excluded.source_hash, source_version = greatest(excluded.source_version, t.source_version),
  sanitized = excluded.sanitized, spec_version = excluded.spec_version, stream = excluded.stream,
  last_sync_run_id = excluded.last_sync_run_id, updated_at = now()
where ((${cols.map((c) => `t.${c.name}`).join(', ')}, t.spec_version) is distinct from (${cols.map((c) => `excluded.${c.name}`).join(', ')}, excluded.spec_version)
   ${info.references.map((r) => `or (t.${r.column} is null and excluded.${r.column} is not null)`).join(' ')})
  and (excluded.source_version = now() or t.source_version is null or excluded.source_version >= t.source_version)${tieKeepsDeletion}
returning t.external_id, (t.xmax = 0) as inserted`;
  const rows = await boundQuery<{ external_id: string; inserted: boolean }>(q, sql, [
    ctx.specVersion,
    ctx.stream,
    ctx.runId,
    ...v.params,
  ]);
  const inserted = rows.filter((r) => r.inserted === true || (r.inserted as unknown) === 't').length;
  return {
    inserted,
    updated: rows.length - inserted,
    keys: rows.map((r) => r.external_id),
    // Every reference whose field the batch carried was resolved above, by a subquery or an override.
    resolvedFields: present.map((r) => r.field),
  };
}

async function patchRows(q: Querier, ctx: WriteContext, target: UnifiedTarget, batch: MappedRow[]) {
  // Patch touches only the fields the mapping produced (e.g. deleted_at from a tombstone feed).
  const info = targetInfo(target);
  const fields = new Set<string>();
  for (const r of batch) for (const k of Object.keys(r.row)) if (k !== 'external_id') fields.add(k);
  if (target === 'patient_identities' && fields.has('evidence')) {
    // Stored normalized, as the writer stores an identity's evidence (phones in E.164, emails lower-cased).
    for (const r of batch)
      if (Array.isArray(r.row.evidence))
        r.row.evidence = evidenceForStorage(identityInput(ctx, r.row, null), ctx.defaultCountry);
  }
  const cols = info.columns.filter((c) => fields.has(c.name) || c.name === 'external_id');
  const setCols = cols.filter((c) => c.name !== 'external_id');
  if (!setCols.length) return { inserted: 0, updated: 0, keys: [] };
  const v = valuesClause(batch, ctx, cols);
  const vnames = ['organization_id', 'source', ...cols.map((c) => c.name), ...LINEAGE_VALUES];
  // Evidence only accumulates, so its order of arrival does not matter: it neither needs a newer version nor makes
  // the identity newer (a message polled now must not make a contact webhook signed a moment earlier look stale).
  const evidenceOnly = target === 'patient_identities' && setCols.every((c) => c.name === 'evidence');
  const dml = `update ${target} as t set ${setCols.map((c) => `${c.name} = ${assigned(target, c)}`).join(', ')},
  source_version = ${evidenceOnly ? 't.source_version' : 'greatest(coalesce(v.source_version::timestamptz, now()), t.source_version)'},
  spec_version = ?, last_sync_run_id = ?::uuid, updated_at = now()
from ${v.sql} as v(${vnames.join(', ')})
where t.organization_id = v.organization_id and t.source = v.source and t.external_id = v.external_id
  and (${setCols.map((c) => `t.${c.name}`).join(', ')}) is distinct from (${setCols.map((c) => assigned(target, c)).join(', ')})
  and (${evidenceOnly ? 'true' : 'v.source_version is null or t.source_version is null or v.source_version::timestamptz >= t.source_version'})`;
  // A patched identity (evidence a message brought, a tombstone) is marked for the reconcile pass.
  const sql =
    target === 'patient_identities'
      ? marking(dml, { returning: 't.external_id', out: 'external_id' })
      : `${dml}\nreturning t.external_id`;
  const rows = await q<{ external_id: string }>(sql, [ctx.specVersion, ctx.runId, ...v.params]);
  if (target === 'patient_identities' && rows.length)
    await refreshPatients(
      q,
      ctx,
      rows.map((r) => r.external_id),
    );
  return { inserted: 0, updated: rows.length, keys: rows.map((r) => r.external_id) };
}

function identityInput(ctx: WriteContext, row: Record<string, unknown>, e164: string | null): IdentityInput {
  const str = (k: string) => (row[k] === undefined || row[k] === null || row[k] === '' ? null : String(row[k]));
  return {
    source: ctx.source,
    externalId: String(row.external_id),
    firstName: str('first_name'),
    lastName: str('last_name'),
    displayName: str('display_name'),
    email: str('email'),
    phoneRaw: str('phone'),
    phoneE164: e164,
    dateOfBirth: str('date_of_birth'),
    countryHint: str('country_hint'),
    crossRefs: ((row.cross_refs as Array<{ source: string; external_id: string }> | undefined) ?? []).map((c) => ({
      source: String(c.source),
      externalId: String(c.external_id),
    })),
    ...(Array.isArray(row.evidence) ? { evidence: row.evidence as IdentityEvidence[] } : {}),
  };
}

/**
 * Derived identity columns: the name key, the evidence normalized (so that later identities find it through
 * its index), and the phone of the contact's own channel when the phone field is empty or junk.
 */
function deriveIdentity(
  ctx: WriteContext,
  r: MappedRow,
  e164: string | null,
): { e164: string | null; nameKey: string | null } {
  const input = identityInput(ctx, r.row, e164);
  if (input.evidence) r.row.evidence = evidenceForStorage(input, ctx.defaultCountry);
  return {
    e164: e164 ?? (input.evidence ? inboxPhoneE164(input, ctx.defaultCountry) : null),
    nameKey: identityNameKey(input),
  };
}

async function upsertIdentities(q: Querier, ctx: WriteContext, batch: MappedRow[]) {
  const cols = presentColumns(targetInfo('patient_identities').columns, batch);
  const keys = batch.map((r) => String(r.row.external_id));
  // Identity resolution is serialized per organization (until commit): two writers (a sync and a webhook, or two
  // instances) must not both create the same identity, nor two patients for one person seen on two platforms.
  await q('select pg_advisory_xact_lock(hashtext(?))', [`routiq:identity:${ctx.organizationId}`]);
  const existing = await q<{ external_id: string }>(
    `select external_id from patient_identities where organization_id = ? and source = ? and external_id in (${keys.map(() => '?').join(', ')})`,
    [ctx.organizationId, ctx.source, ...keys],
  );
  const known = new Set(existing.map((r) => r.external_id));
  // `known` grows as new identities are inserted below; the update is for the ones stored before this batch.
  const storedBefore = new Set(known);
  const phones = new Map<string, { e164: string | null; valid: boolean; nameKey: string | null }>();
  for (const r of batch) {
    const n = normalizePhone((r.row.phone as string | null | undefined) ?? null, {
      defaultCountry: ctx.defaultCountry,
      countryHint: (r.row.country_hint as string | null | undefined) ?? null,
    });
    const d = deriveIdentity(ctx, r, n.e164);
    phones.set(String(r.row.external_id), { e164: d.e164, valid: n.valid, nameKey: d.nameKey });
  }

  let inserted = 0;
  const changedKeys: string[] = [];
  // The candidates of every new identity of the page, in one indexed query (never a scan of the organization);
  // the identities matched below join this page store as they are written, so each one still sees those before it.
  const fresh = batch.filter((r) => !known.has(String(r.row.external_id)));
  const page =
    fresh.length > 0
      ? await PageCandidates.load(
          q,
          ctx.organizationId,
          ctx.defaultCountry,
          fresh.map((r) => identityInput(ctx, r.row, phones.get(String(r.row.external_id))?.e164 ?? null)),
        )
      : null;
  // New identities one by one: each may match one created just before it (identity resolution needs it). It sees
  // those through the page store; the rows of the unmatched ones (a new patient each, the common case) are written
  // together, in two statements per page rather than two per identity. Before anything reads the database (a
  // candidate query the page store does not cover, the hook's own queries, a matched patient's promotion), the
  // pending rows are written, so every read sees every identity matched before it, as when each was written at once.
  const pendingPatients: Array<Array<string | null>> = [];
  const pendingIdentities: Array<{ r: MappedRow; extra: Array<string | null> }> = [];
  const flush = async () => {
    if (pendingPatients.length) {
      const rows = pendingPatients.splice(0);
      await boundQuery(
        q,
        `insert into patients (id, organization_id, first_name, last_name, display_name, email, phone_e164, date_of_birth, primary_source)
         select v.id::uuid, v.organization_id, v.first_name, v.last_name, v.display_name, v.email, v.phone_e164, v.date_of_birth::date, v.primary_source
         from (values ${rows.map((r) => `(${r.map(() => '?').join(', ')})`).join(',\n')})
           as v(id, organization_id, first_name, last_name, display_name, email, phone_e164, date_of_birth, primary_source)`,
        rows.flat(),
      );
    }
    if (pendingIdentities.length) {
      const rows = pendingIdentities.splice(0);
      const byRow = new Map(rows.map((x) => [x.r, x.extra]));
      await insertIdentities(
        q,
        ctx,
        cols,
        rows.map((x) => x.r),
        (r) => byRow.get(r) ?? [],
      );
    }
  };
  const hc = ctx.hookContext(q);
  const hookContext = {
    ...hc,
    db: {
      query: async <T>(sql: string, params?: readonly unknown[]) => {
        await flush();
        return hc.db.query<T>(sql, params);
      },
    },
  };
  for (const r of batch) {
    const key = String(r.row.external_id);
    if (known.has(key)) continue;
    const ph = phones.get(key) ?? { e164: null, valid: false, nameKey: null };
    const input = identityInput(ctx, r.row, ph.e164);
    const self = { source: ctx.source, externalId: key };
    const mctx: MatchContext = {
      ...hookContext,
      findCandidates: async (query) => {
        if (page?.covers(query, self)) return page.find(query, self);
        await flush();
        return findCandidates(q, ctx.organizationId, query, self);
      },
    };
    const match = await ctx.matchIdentity(input, mctx);
    let patientId = match.patientId;
    if (!patientId) {
      patientId = randomUUID();
      pendingPatients.push([
        patientId,
        ctx.organizationId,
        input.firstName ?? null,
        input.lastName ?? null,
        input.displayName ?? null,
        input.email ?? null,
        ph.e164,
        input.dateOfBirth ?? null,
        ctx.source,
      ]);
    }
    const extra = [ph.e164, String(ph.valid), patientId, match.method, String(match.confidence), ph.nameKey];
    page?.add({ ...normalizeIdentityForStorage(input, ctx.defaultCountry), phoneE164: ph.e164, patientId });
    if (match.patientId) {
      // Joins a patient (perhaps one pending here): written now, then the patient takes its fields by priority.
      await flush();
      await insertIdentities(q, ctx, cols, [r], () => extra);
      await promotePatient(q, ctx, match.patientId, key);
    } else pendingIdentities.push({ r, extra });
    known.add(key);
    inserted++;
    changedKeys.push(key);
  }
  await flush();

  // Known identities: a set-based update that skips unchanged rows.
  const updates = batch.filter((r) => storedBefore.has(String(r.row.external_id)));
  let updated = 0;
  if (updates.length) {
    const v = valuesClause(updates, ctx, cols, (r) => {
      const ph = phones.get(String(r.row.external_id));
      return [ph?.e164 ?? null, String(ph?.valid ?? false), ph?.nameKey ?? null];
    });
    // Each changed identity is marked for the reconcile pass, with its fields before this update (`o`, the row as
    // the statement found it) unless a mark already holds them (the first change since the last pass).
    const rows = await q<{ external_id: string }>(
      marking(
        `update patient_identities as t set ${cols.map((c) => `${c.name} = ${assigned('patient_identities', c)}`).join(', ')},
         phone_e164 = v.phone_e164, phone_valid = v.phone_valid::boolean, name_key = v.name_key, source_hash = v.source_hash,
         source_version = greatest(coalesce(v.source_version::timestamptz, now()), t.source_version), sanitized = v.sanitized::boolean,
         spec_version = ?, stream = ?, last_sync_run_id = ?::uuid, updated_at = now()
       from ${v.sql} as v(organization_id, source, ${cols.map((c) => c.name).join(', ')}, ${LINEAGE_VALUES.join(', ')}, phone_e164, phone_valid, name_key),
         patient_identities o
       where t.organization_id = v.organization_id and t.source = v.source and t.external_id = v.external_id and o.id = t.id
         and (${cols.map((c) => `t.${c.name}`).join(', ')}, t.phone_e164, t.name_key, t.spec_version) is distinct from (${cols.map((c) => assigned('patient_identities', c)).join(', ')}, v.phone_e164, v.name_key, ?)
         and (v.source_version is null or t.source_version is null or v.source_version::timestamptz >= t.source_version)`,
        { returning: 't.external_id', out: 'external_id', previous: PREVIOUS_IDENTITY },
      ),
      [ctx.specVersion, ctx.stream, ctx.runId, ...v.params, ctx.specVersion],
    );
    updated = rows.length;
    changedKeys.push(...rows.map((r) => r.external_id));
    if (rows.length)
      await refreshPatients(
        q,
        ctx,
        rows.map((r) => r.external_id),
      );
  }
  return { inserted, updated, keys: changedKeys };
}

/**
 * The identity's matching fields before an update (`o`: the row joined to itself, read as the statement found it),
 * kept in its reconcile mark until the pass has looked at the keys it had (identity/neighbourhood.ts).
 */
const PREVIOUS_IDENTITY = `jsonb_build_object('first_name', o.first_name, 'last_name', o.last_name,
  'display_name', o.display_name, 'email', o.email, 'phone', o.phone, 'phone_e164', o.phone_e164,
  'date_of_birth', to_char(o.date_of_birth, 'YYYY-MM-DD'), 'cross_refs', o.cross_refs, 'evidence', o.evidence)`;

/** New identities (`extra`: phone_e164, phone_valid, patient_id, match_method, match_confidence, name_key). */
async function insertIdentities(
  q: Querier,
  ctx: WriteContext,
  cols: Column[],
  rows: MappedRow[],
  extra: (r: MappedRow) => Array<string | null>,
): Promise<void> {
  const v = valuesClause(rows, ctx, cols, extra);
  await boundQuery(
    q,
    marking(
      `insert into patient_identities as t (organization_id, source, ${cols.map((c) => c.name).join(', ')}, source_hash, source_version, sanitized, phone_e164, phone_valid, patient_id, match_method, match_confidence, name_key, spec_version, stream, last_sync_run_id)
     select v.organization_id, v.source, ${cols.map((c) => `v.${c.name}::${c.sqlType}`).join(', ')}, v.source_hash, coalesce(v.source_version::timestamptz, now()), v.sanitized::boolean, v.phone_e164, v.phone_valid::boolean, v.patient_id::uuid, v.match_method, v.match_confidence::numeric, v.name_key, ?, ?, ?::uuid
     from ${v.sql} as v(organization_id, source, ${cols.map((c) => c.name).join(', ')}, ${LINEAGE_VALUES.join(', ')}, phone_e164, phone_valid, patient_id, match_method, match_confidence, name_key)`,
    ),
    [ctx.specVersion, ctx.stream, ctx.runId, ...v.params],
  );
}

/** The unified patient takes its fields from its highest-priority identity. */
async function promotePatient(q: Querier, ctx: WriteContext, patientId: string, externalId: string): Promise<void> {
  const cur = await q<{ primary_source: string | null }>('select primary_source from patients where id = ?', [
    patientId,
  ]);
  const prio = (s: string | null) => {
    const i = s ? ctx.sourcePriority.indexOf(s) : -1;
    return i === -1 ? ctx.sourcePriority.length : i;
  };
  if (prio(ctx.source) < prio(cur[0]?.primary_source ?? null)) {
    await q('update patients set primary_source = ?, updated_at = now() where id = ?', [ctx.source, patientId]);
  }
  await refreshPatients(q, ctx, [externalId]);
}

async function refreshPatients(q: Querier, ctx: WriteContext, externalIds: string[]): Promise<void> {
  if (!externalIds.length) return;
  await q(
    `update patients p set first_name = coalesce(i.first_name, p.first_name), last_name = coalesce(i.last_name, p.last_name),
       display_name = coalesce(i.display_name, p.display_name), email = coalesce(i.email, p.email),
       phone_e164 = coalesce(i.phone_e164, p.phone_e164), date_of_birth = coalesce(i.date_of_birth, p.date_of_birth),
       deleted_at = i.deleted_at, updated_at = now()
     from patient_identities i
     where i.patient_id = p.id and p.primary_source = i.source and i.organization_id = ? and i.source = ?
       and i.external_id in (${externalIds.map(() => '?').join(', ')})
       and (p.first_name, p.last_name, p.display_name, p.email, p.phone_e164, p.date_of_birth, p.deleted_at)
           is distinct from (coalesce(i.first_name, p.first_name), coalesce(i.last_name, p.last_name), coalesce(i.display_name, p.display_name),
                             coalesce(i.email, p.email), coalesce(i.phone_e164, p.phone_e164), coalesce(i.date_of_birth, p.date_of_birth), i.deleted_at)`,
    [ctx.organizationId, ctx.source, ...externalIds],
  );
}

export async function findCandidates(
  q: Querier,
  organizationId: string,
  query: {
    phonesE164: string[];
    emails: string[];
    crossRefs: Array<{ source: string; externalId: string }>;
    lastNameDob?: { lastName: string; dateOfBirth: string } | undefined;
    nameKeys?: string[] | undefined;
  },
  self?: { source: string; externalId: string },
): Promise<StoredIdentity[]> {
  const emails = query.emails.map((e) => e.toLowerCase().trim());
  // Reverse cross-references and message evidence first, as plain equalities on identity_keys (migration 0014):
  // every condition below is then a leakproof `=` that row-level security lets PostgreSQL use as an index condition.
  const keys = identityKeySql(
    organizationId,
    self ? [crossRefKey(self.source, self.externalId)] : [],
    [...query.phonesE164, ...emails],
    200,
  );
  const keyed = keys ? await q<{ identity_id: string }>(keys.sql, keys.params) : [];
  const ids = [...new Set(keyed.map((k) => String(k.identity_id)))];
  const ors: string[] = [];
  const params: unknown[] = [organizationId];
  if (query.phonesE164.length) {
    ors.push(`i.phone_e164 in (${query.phonesE164.map(() => '?').join(', ')})`);
    params.push(...query.phonesE164);
  }
  if (emails.length) {
    ors.push(`i.email_lower in (${emails.map(() => '?').join(', ')})`);
    params.push(...emails);
  }
  for (const c of query.crossRefs) {
    ors.push('(i.source = ? and i.external_id = ?)');
    params.push(c.source, c.externalId);
  }
  if (query.lastNameDob) {
    ors.push('(i.last_name_lower = ? and i.date_of_birth = ?::date)');
    params.push(query.lastNameDob.lastName.toLowerCase(), query.lastNameDob.dateOfBirth);
  }
  if (query.nameKeys?.length) {
    ors.push(`i.name_key in (${query.nameKeys.map(() => '?').join(', ')})`);
    params.push(...query.nameKeys);
  }
  if (ids.length) {
    ors.push(idCondition(ids));
    params.push(...ids);
  }
  if (!ors.length) return [];
  const rows = await q<IdentityRow & { evidence: unknown }>(
    `select ${IDENTITY_COLUMNS}, i.evidence from patient_identities i
     where i.organization_id = ? and i.deleted_at is null and (${ors.join(' or ')}) limit 200`,
    params,
  );
  return rows.map(storedWithEvidence);
}

/**
 * One link a child row takes from its parent, found by natural key within one organization and source: the child
 * `table`'s `column` takes the parent's `value` where the child's `field` names the parent's external_id. `nullOnly`:
 * only an unset link is filled (a message's conversation never changes), else any value that differs is replaced.
 */
interface Link {
  child: UnifiedTarget;
  column: string;
  parent: UnifiedTarget;
  value: string;
  field: string;
  nullOnly: boolean;
}

const LINKS: readonly Link[] = [
  {
    child: 'conversations',
    column: 'patient_id',
    parent: 'patient_identities',
    value: 'patient_id',
    field: 'patient_external_id',
    nullOnly: false,
  },
  {
    child: 'appointments',
    column: 'patient_id',
    parent: 'patient_identities',
    value: 'patient_id',
    field: 'patient_external_id',
    nullOnly: false,
  },
  {
    child: 'messages',
    column: 'conversation_id',
    parent: 'conversations',
    value: 'id',
    field: 'conversation_external_id',
    nullOnly: true,
  },
  {
    child: 'appointments',
    column: 'appointment_type',
    parent: 'appointment_types',
    value: 'name',
    field: 'appointment_type_external_id',
    nullOnly: false,
  },
  // The inbox's name on its conversations: a rename reaches every one, and a conversation that came first gets it.
  { child: 'conversations', column: 'inbox_name', parent: 'inboxes', value: 'name', field: 'inbox', nullOnly: false },
  {
    child: 'attachments',
    column: 'message_id',
    parent: 'messages',
    value: 'id',
    field: 'message_external_id',
    nullOnly: true,
  },
];

/** The organization-wide form: a join of the organization's children with their parents. */
function linkSql(l: Link, scope: string): string {
  const pending = l.nullOnly ? `c.${l.column} is null` : `c.${l.column} is distinct from p.${l.value}`;
  return `update ${l.child} c set ${l.column} = p.${l.value} from ${l.parent} p
     where ${scope} and p.organization_id = c.organization_id and p.source = c.source
       and p.external_id = c.${l.field} and ${pending}`;
}

/**
 * The scoped form: the children selected by `scope` (the written ones by their natural key, or those naming a
 * written parent by their reference column), each probing its parent by the parent's natural key. Scalar subqueries
 * rather than a join: the planner cannot reorder them, so the parent is always one unique-index probe per child. As a
 * join, with the statistics of tables that grew since their last ANALYZE (a first sync), PostgreSQL picked a nested
 * loop of the organization's children by the organization's parents: seconds per batch at 4,000 patients.
 */
function probeSql(l: Link, scope: string): string {
  const parent = `from ${l.parent} p where p.organization_id = c.organization_id and p.source = c.source and p.external_id = c.${l.field}`;
  // Null (no parent yet) leaves the row alone, as the join does.
  const pending = l.nullOnly
    ? `c.${l.column} is null and (select true ${parent})`
    : `(select p.${l.value} is distinct from c.${l.column} ${parent})`;
  return `update ${l.child} c set ${l.column} = (select p.${l.value} ${parent})
     where ${scope} and ${pending}`;
}

/**
 * Link what one transaction wrote (`changed`: external_ids per target, as writeRows returns them), whatever the order
 * records arrived in: a child written takes its parent's value if the parent is there, a parent written reaches the
 * children that name it. One statement per link and direction, keyed by the written external_ids through the natural
 * key and the child-side indexes (migrations 0015, 0016): the cost follows the rows written, not the organization's size.
 * Together with identity merges (which move conversations and appointments themselves) this keeps every link
 * `relinkOrganization` would set.
 */
export async function relinkWritten(
  q: Querier,
  organizationId: string,
  source: string,
  changed: ReadonlyMap<UnifiedTarget, ReadonlySet<string>>,
  resolved?: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<void> {
  const s = relinkStatements(organizationId, source, changed, resolved);
  if (s) await q(s.sql, s.params);
}

/**
 * relinkWritten's statements, each with its parameters: one per link and direction that has written keys.
 * `resolved` (WriteResult.resolved, same transaction only): children whose link their own write set are left out of
 * the child direction. Parents written later in the transaction reach them by the parent direction; a parent
 * committed by another transaction meanwhile is the post-commit relink's (write-page.ts), which passes none.
 */
export function relinkQueries(
  organizationId: string,
  source: string,
  changed: ReadonlyMap<UnifiedTarget, ReadonlySet<string>>,
  resolved?: ReadonlyMap<string, ReadonlySet<string>>,
): Array<{ sql: string; params: unknown[] }> {
  const out: Array<{ sql: string; params: unknown[] }> = [];
  for (const l of LINKS) {
    const done = resolved?.get(resolvedKey(l.child, l.field));
    const children = changed.get(l.child);
    const unresolved = done?.size && children ? new Set([...children].filter((k) => !done.has(k))) : children;
    for (const [column, keys] of [
      ['external_id', unresolved],
      [l.field, changed.get(l.parent)],
    ] as const) {
      if (!keys?.size) continue;
      const list = [...keys];
      out.push({
        sql: probeSql(
          l,
          `c.organization_id = ? and c.source = ? and c.${column} in (${list.map(() => '?').join(', ')})`,
        ),
        params: [organizationId, source, ...list],
      });
    }
  }
  return out;
}

/**
 * relinkQueries as one SQL text of several statements with their parameters in order, to be sent as one message:
 * one round trip instead of one per statement (up to twelve when a page adds identities). Undefined when nothing
 * was written that takes or gives a link.
 */
export function relinkStatements(
  organizationId: string,
  source: string,
  changed: ReadonlyMap<UnifiedTarget, ReadonlySet<string>>,
  resolved?: ReadonlyMap<string, ReadonlySet<string>>,
): { sql: string; params: unknown[] } | undefined {
  const qs = relinkQueries(organizationId, source, changed, resolved);
  if (!qs.length) return undefined;
  return { sql: qs.map((x) => x.sql).join(';\n'), params: qs.flatMap((x) => x.params) };
}

/**
 * Every link of one organization and source, whatever was written: a scan of the organization's children. Not on
 * any write path (relinkWritten links what a write touched); kept as the reference the scoped relink is tested against.
 */
export async function relinkOrganization(q: Querier, organizationId: string, source: string): Promise<void> {
  for (const l of LINKS) await q(linkSql(l, 'c.organization_id = ? and c.source = ?'), [organizationId, source]);
}
