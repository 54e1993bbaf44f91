import type { CandidateQuery, IdentityInput, StoredIdentity } from '@routiq/sdk';
import { candidateQueryFor, identityKey, MemoryIdentityStore } from '@routiq/sdk/identity';
import { pgArray } from '../db/pg-array.ts';
import type { Querier } from '../db/tx.ts';
import { IDENTITY_COLUMNS, type IdentityRow, toStored } from './rows.ts';

/**
 * More rows than this for one query: the page is fetched in halves; for one identity it means a hot key (a clinic
 * landline), and that identity falls back to its own query.
 */
const MAX_ROWS = 5000;
/**
 * A chunk over the row limit is halved only while it is big enough that its identities average at most this many
 * candidates: below that size the rows come from hot keys (a clinic landline on many patients), which halving does
 * not shrink, and each over-limit query reads MAX_ROWS rows for nothing. Those identities get their own queries.
 */
const SPREAD_CANDIDATES = 25;

type Self = { source: string; externalId: string };

/**
 * The candidates of a page of new identities, fetched with two indexed queries (the identity ids whose
 * cross-references or message evidence name one of the page's keys, from `identity_keys`; then a bitmap OR of index
 * scans on phone, email, natural key, name key, surname + date of birth and those ids — never a scan of the
 * organization), then answered from memory. Every condition is a plain `=` on text, uuid or date: under row-level
 * security only leakproof conditions may be index conditions (migration 0014). Identities written during the page
 * are added, so the matcher sees exactly what the per-identity query would have returned. A query for a key that
 * was not fetched (a custom `identity.match` hook asking something else) is not covered: the caller then queries
 * the database.
 */
export class PageCandidates {
  private readonly store = new MemoryIdentityStore();
  private readonly keys = new Set<string>();

  private constructor(private readonly maxRows: number) {}

  static async load(
    q: Querier,
    organizationId: string,
    defaultCountry: string,
    inputs: readonly IdentityInput[],
    maxRows = MAX_ROWS,
  ) {
    const page = new PageCandidates(maxRows);
    await page.fill(q, organizationId, defaultCountry, inputs);
    return page;
  }

  /**
   * Fetches the candidates of `inputs` and records the keys they cover. When a chunk's rows pass MAX_ROWS it is
   * fetched again in halves: in a large organization a page of new patients has tens of namesakes each (every
   * identity sharing a name key), and the whole page fell back to one query per identity (73,000 queries for a
   * 100,000-patient practice). A chunk still over the limit once small (SPREAD_CANDIDATES), or a single identity,
   * is left uncovered (hot keys: a clinic landline), and the caller queries each of its identities on its own, as
   * before.
   */
  private async fill(
    q: Querier,
    organizationId: string,
    defaultCountry: string,
    inputs: readonly IdentityInput[],
  ): Promise<void> {
    const halves = async () => {
      if (inputs.length < 2 || inputs.length * SPREAD_CANDIDATES <= this.maxRows) return;
      const mid = Math.ceil(inputs.length / 2);
      await this.fill(q, organizationId, defaultCountry, inputs.slice(0, mid));
      await this.fill(q, organizationId, defaultCountry, inputs.slice(mid));
    };
    if (!inputs.length) return;
    const keys = identityKeyQuery(organizationId, defaultCountry, inputs, this.maxRows);
    const keyed = keys ? await q<{ identity_id: string }>(keys.sql, keys.params) : [];
    if (keyed.length > this.maxRows) return halves();
    const ids = [...new Set(keyed.map((k) => String(k.identity_id)))];
    const { sql, params, queries } = pageCandidateQuery(organizationId, defaultCountry, inputs, ids, this.maxRows);
    const rows = await q<IdentityRow & { evidence: unknown; name_key: string | null }>(sql, params);
    if (rows.length > this.maxRows) return halves();
    for (const { query, self } of queries) for (const k of this.queryKeys(query, self)) this.keys.add(k);
    // The row's stored name key, and the object itself (a fresh row): a page of new patients in a large practice
    // reads tens of namesakes per identity, and each was copied and its name folded again here.
    for (const r of rows) this.store.add(storedWithEvidence(r), { nameKey: r.name_key ?? null, owned: true });
  }

  /** Every key of the query was fetched for this page. */
  covers(query: CandidateQuery, self: Self): boolean {
    return this.queryKeys(query, self).every((k) => this.keys.has(k));
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

type PageKeys = {
  queries: Array<{ query: CandidateQuery; self: Self }>;
  phones: Set<string>;
  emails: Set<string>;
  names: Set<string>;
  refs: Map<string, Set<string>>;
  lastDobs: Set<string>;
};

function pageKeys(defaultCountry: string, inputs: readonly IdentityInput[]): PageKeys {
  const queries = inputs.map((i) => ({
    query: candidateQueryFor(i, defaultCountry),
    self: { source: i.source, externalId: i.externalId },
  }));
  const keys: PageKeys = {
    queries,
    phones: new Set(),
    emails: new Set(),
    names: new Set(),
    refs: new Map(),
    lastDobs: new Set(),
  };
  for (const { query, self } of queries) {
    for (const p of query.phonesE164) keys.phones.add(p);
    for (const e of query.emails) keys.emails.add(e.toLowerCase().trim());
    for (const n of query.nameKeys ?? []) keys.names.add(n);
    for (const c of [...query.crossRefs, self]) {
      const set = keys.refs.get(c.source) ?? new Set<string>();
      set.add(c.externalId);
      keys.refs.set(c.source, set);
    }
    if (query.lastNameDob)
      keys.lastDobs.add(JSON.stringify([query.lastNameDob.lastName, query.lastNameDob.dateOfBirth]));
  }
  return keys;
}

const list = (values: readonly unknown[]) => values.map(() => '?').join(', ');

/** An `identity_keys` value of kind `xref` (as migration 0014's `patient_identity_keys` writes it). */
export function crossRefKey(source: string, externalId: string): string {
  return `${source}\u001f${externalId}`;
}

/**
 * The ids of the identities whose stored cross-references name one of `crossRefKeys` (`crossRefKey`), or whose
 * message evidence is one of `evidence` (E.164 phones, lower-cased emails): the lookups jsonb `@>` made before
 * migration 0014, as plain equalities on `identity_keys`. Null when there is nothing to look up.
 */
export function identityKeySql(
  organizationId: string,
  crossRefKeys: readonly string[],
  evidence: readonly string[],
  limit: number,
): { sql: string; params: unknown[] } | null {
  const ors: string[] = [];
  const params: unknown[] = [organizationId];
  if (crossRefKeys.length) {
    ors.push(`(k.kind = 'xref' and k.value in (${list(crossRefKeys)}))`);
    params.push(...crossRefKeys);
  }
  if (evidence.length) {
    ors.push(`(k.kind = 'evidence' and k.value in (${list(evidence)}))`);
    params.push(...evidence);
  }
  if (!ors.length) return null;
  return {
    sql: `select k.identity_id from identity_keys k where k.organization_id = ? and (${ors.join(' or ')})
     limit ${limit}`,
    params,
  };
}

/**
 * The identity-key lookup of a page: identities whose cross-references name one of the page's identities or
 * cross-references (the reverse direction: a Chatwoot contact that points at this Cliniko patient), or whose
 * message evidence names one of the page's phones or emails.
 */
export function identityKeyQuery(
  organizationId: string,
  defaultCountry: string,
  inputs: readonly IdentityInput[],
  maxRows = MAX_ROWS,
): { sql: string; params: unknown[] } | null {
  const keys = pageKeys(defaultCountry, inputs);
  const xrefs = [...keys.refs].flatMap(([source, ids]) => [...ids].map((id) => crossRefKey(source, id)));
  return identityKeySql(organizationId, xrefs, [...keys.phones, ...keys.emails], maxRows + 1);
}

/** The condition on the ids an identity-key lookup found (`?::uuid` parameters). */
export function idCondition(ids: readonly string[]): string {
  return `i.id in (${ids.map(() => '?::uuid').join(', ')})`;
}

/**
 * The query that fetches the candidates of a page of identities, given the ids `identityKeyQuery` found (exported
 * for EXPLAIN in the bench and the plan test).
 */
export function pageCandidateQuery(
  organizationId: string,
  defaultCountry: string,
  inputs: readonly IdentityInput[],
  keyedIds: readonly string[],
  maxRows = MAX_ROWS,
  fetched?: FetchedKeys,
): { sql: string; params: unknown[]; queries: Array<{ query: CandidateQuery; self: Self }> } {
  const keys = pageKeys(defaultCountry, inputs);
  const { queries, refs } = keys;
  // Keys an earlier query of the same reader already fetched every holder of (the reconcile neighbourhood's
  // rounds: a namesake's name key comes back with each of its namesakes) are left out, and this query's recorded.
  const fresh = (set: Set<string>, done: Set<string> | undefined) => {
    if (!done) return set;
    const out = new Set<string>();
    for (const k of set) if (!done.has(k)) out.add(k);
    for (const k of out) done.add(k);
    return out;
  };
  const phones = fresh(keys.phones, fetched?.phones);
  const emails = fresh(keys.emails, fetched?.emails);
  const names = fresh(keys.names, fetched?.names);
  const lastDobs = fresh(keys.lastDobs, fetched?.lastDobs);
  // One arm per kind of key, each an index scan by `= any(array)` (leakproof, so an index condition under row-level
  // security), combined with UNION (each row once, as the OR it replaced). The arrays travel as one parameter each:
  // as an OR of IN lists of hundreds of values the statement took PostgreSQL ~16 ms to plan and ~2 ms to run.
  // The organization is compared with `(select ?)`, a value the planner does not look up in its statistics: for an
  // organization they do not know yet (new, in a shared table) it took the organization to hold one row, kept only
  // it as the index condition and filtered the organization's rows by the keys (1.4 s a page at 20,000 identities).
  const arms: string[] = [];
  const params: unknown[] = [];
  const from = `select ${IDENTITY_COLUMNS}, i.evidence, i.name_key from patient_identities i`;
  const live = 'i.organization_id = (select ?::text) and i.deleted_at is null';
  const arm = (cond: string, ...values: unknown[]) => {
    arms.push(`${from} where ${live} and ${cond}`);
    params.push(organizationId, ...values);
  };
  if (phones.size) arm('i.phone_e164 = any(?::text[])', pgArray(phones));
  if (emails.size) arm('i.email_lower = any(?::text[])', pgArray(emails));
  // Natural keys: one probe of the unique index per key. As `external_id = any(…)` the planner may scan the whole
  // (organization, source) prefix when its statistics say the source has no rows yet (a first sync).
  for (const [source, ids] of refs) {
    arms.push(
      `select c.* from unnest(?::text[]) as k(external_id), lateral (${from}
         where ${live} and i.source = ? and i.external_id = k.external_id limit 1) as c`,
    );
    params.push(pgArray(ids), organizationId, source);
  }
  if (names.size) arm('i.name_key = any(?::text[])', pgArray(names));
  if (lastDobs.size) {
    // Surname and date of birth as pairs: one probe of their index each (as two `= any(…)` the index kept only the
    // organization when the statistics did not know it, and filtered).
    const pairs = [...lastDobs].map((ld) => JSON.parse(ld) as [string, string]);
    arms.push(
      `select c.* from unnest(?::text[], ?::date[]) as k(last_name, dob), lateral (${from}
         where ${live} and i.last_name_lower = k.last_name and i.date_of_birth = k.dob offset 0) as c`,
    );
    params.push(
      pgArray(pairs.map(([last]) => last.toLowerCase())),
      pgArray(pairs.map(([, dob]) => dob)),
      organizationId,
    );
  }
  // Reverse cross-references and message evidence, resolved to ids by identityKeyQuery.
  if (keyedIds.length) arm('i.id = any(?::uuid[])', pgArray(keyedIds));
  // Never empty: every input's own natural key is an arm (cross-references are never left out).
  const sql = `${arms.join('\nunion\n')}\nlimit ${maxRows + 1}`;
  return { sql, params, queries };
}

/** Lookup keys whose holders a reader has fetched already (see `pageCandidateQuery`). */
export interface FetchedKeys {
  phones: Set<string>;
  emails: Set<string>;
  names: Set<string>;
  lastDobs: Set<string>;
}

/** A stored row with its evidence (which `IDENTITY_COLUMNS` leaves out). */
export function storedWithEvidence(r: IdentityRow & { evidence: unknown }): StoredIdentity {
  const stored = toStored(r);
  const evidence = typeof r.evidence === 'string' ? JSON.parse(r.evidence) : r.evidence;
  if (Array.isArray(evidence)) stored.evidence = evidence;
  return stored;
}
