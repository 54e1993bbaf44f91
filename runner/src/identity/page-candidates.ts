import type { CandidateQuery, IdentityInput, StoredIdentity } from '@routiq/sdk';
import { candidateQueryFor, identityKey, MemoryIdentityStore } from '@routiq/sdk/identity';
import type { Querier } from '../db/tx.ts';
import { IDENTITY_COLUMNS, type IdentityRow, toStored } from './rows.ts';

/** More rows than this for one page means a hot key (a clinic landline): the page falls back to per-identity queries. */
const MAX_ROWS = 5000;

type Self = { source: string; externalId: string };

/**
 * The candidates of a page of new identities, fetched with one indexed query (a bitmap OR of index scans on
 * phone, email, natural key, cross-references, name key, surname + date of birth and evidence — never a scan of
 * the organization), then answered from memory. Identities written during the page are added, so the matcher
 * sees exactly what the per-identity query would have returned. A query for a key that was not fetched (a
 * custom `identity.match` hook asking something else) is not covered: the caller then queries the database.
 */
export class PageCandidates {
  private readonly store = new MemoryIdentityStore();
  private readonly keys = new Set<string>();

  private constructor(private readonly complete: boolean) {}

  static async load(q: Querier, organizationId: string, defaultCountry: string, inputs: readonly IdentityInput[]) {
    const page = new PageCandidates(true);
    const { sql, params, queries } = pageCandidateQuery(organizationId, defaultCountry, inputs);
    for (const { query, self } of queries) for (const k of page.queryKeys(query, self)) page.keys.add(k);
    const rows = await q<IdentityRow & { evidence: unknown }>(sql, params);
    if (rows.length > MAX_ROWS) return new PageCandidates(false);
    for (const r of rows) page.store.add(storedWithEvidence(r));
    return page;
  }

  /** Every key of the query was fetched for this page. */
  covers(query: CandidateQuery, self: Self): boolean {
    return this.complete && this.queryKeys(query, self).every((k) => this.keys.has(k));
  }

  find(query: CandidateQuery, self: Self): StoredIdentity[] {
    return this.store.findCandidates({ ...query, crossRefs: [...query.crossRefs, self] });
  }

  /** An identity written during the page (phone normalized, evidence as stored). */
  add(identity: StoredIdentity): void {
    this.store.add(identity);
  }

  private queryKeys(query: CandidateQuery, self: Self): string[] {
    return [
      ...query.phonesE164.map((p) => `p:${p}`),
      ...query.emails.map((e) => `e:${e.toLowerCase().trim()}`),
      ...[...query.crossRefs, self].map((c) => `x:${identityKey(c.source, c.externalId)}`),
      ...(query.nameKeys ?? []).map((n) => `n:${n}`),
      ...(query.lastNameDob
        ? [`ld:${JSON.stringify([query.lastNameDob.lastName, query.lastNameDob.dateOfBirth])}`]
        : []),
    ];
  }
}

/** The one query that fetches the candidates of a page of identities (exported for EXPLAIN in the bench). */
export function pageCandidateQuery(
  organizationId: string,
  defaultCountry: string,
  inputs: readonly IdentityInput[],
): { sql: string; params: unknown[]; queries: Array<{ query: CandidateQuery; self: Self }> } {
  const queries = inputs.map((i) => ({
    query: candidateQueryFor(i, defaultCountry),
    self: { source: i.source, externalId: i.externalId },
  }));
  const ors: string[] = [];
  const params: unknown[] = [organizationId];
  const list = (values: readonly string[]) => values.map(() => '?').join(', ');
  const phones = new Set<string>();
  const emails = new Set<string>();
  const names = new Set<string>();
  const refs = new Map<string, Set<string>>();
  const lastDobs = new Set<string>();
  for (const { query, self } of queries) {
    for (const p of query.phonesE164) phones.add(p);
    for (const e of query.emails) emails.add(e.toLowerCase().trim());
    for (const n of query.nameKeys ?? []) names.add(n);
    for (const c of [...query.crossRefs, self]) {
      const set = refs.get(c.source) ?? new Set<string>();
      set.add(c.externalId);
      refs.set(c.source, set);
    }
    if (query.lastNameDob) lastDobs.add(JSON.stringify([query.lastNameDob.lastName, query.lastNameDob.dateOfBirth]));
  }
  if (phones.size) {
    ors.push(`i.phone_e164 in (${list([...phones])})`);
    params.push(...phones);
  }
  if (emails.size) {
    ors.push(`lower(i.email) in (${list([...emails])})`);
    params.push(...emails);
  }
  for (const [source, ids] of refs) {
    ors.push(`(i.source = ? and i.external_id in (${list([...ids])}))`);
    params.push(source, ...ids);
    // Reverse direction: stored identities whose cross-references name one of these (GIN, one probe each).
    for (const id of ids) {
      ors.push('i.cross_refs @> ?::jsonb');
      params.push(JSON.stringify([{ source, external_id: id }]));
    }
  }
  if (names.size) {
    ors.push(`i.name_key in (${list([...names])})`);
    params.push(...names);
  }
  for (const ld of lastDobs) {
    const [last, dob] = JSON.parse(ld) as [string, string];
    ors.push('(lower(i.last_name) = ? and i.date_of_birth = ?::date)');
    params.push(last.toLowerCase(), dob);
  }
  // Evidence written in conversations (stored normalized) that names one of these phones or emails.
  for (const value of [...phones, ...emails]) {
    ors.push('i.evidence @> ?::jsonb');
    params.push(JSON.stringify([{ value, origin: 'message' }]));
  }
  const sql = `select ${IDENTITY_COLUMNS}, i.evidence from patient_identities i
     where i.organization_id = ? and i.deleted_at is null and (${ors.join(' or ')}) limit ${MAX_ROWS + 1}`;
  return { sql, params, queries };
}

/** A stored row with its evidence (which `IDENTITY_COLUMNS` leaves out). */
export function storedWithEvidence(r: IdentityRow & { evidence: unknown }): StoredIdentity {
  const stored = toStored(r);
  const evidence = typeof r.evidence === 'string' ? JSON.parse(r.evidence) : r.evidence;
  if (Array.isArray(evidence)) stored.evidence = evidence;
  return stored;
}
