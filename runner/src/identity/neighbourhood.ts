/**
 * What a reconcile pass must read when only some identities changed: the writer marks every identity it inserts,
 * changes, deletes or restores (`identity_reconcile_marks`, migrations 0018 and 0020), and the pass re-matches the
 * neighbourhood of the marked ones instead of every identity of the organization. A merge needs a link both ways
 * (an identity of A links B, one of B links A), and an identity's decision changes only when it or one of its
 * candidates changed. So, with M the marked identities:
 *   A = live M ∪ candidates(M), candidates taken with M's keys now and as the last pass saw them
 *       (the mark's `previous`: a phone changed from X to Y changes what X's other holders decide)
 *   B = every identity of the patients of A and of M, re-matched against B ∪ candidates(B)
 *   then, round by round, every identity of each patient those re-matched identities link and that is not loaded
 *   yet (its decision is the other direction of a pair; for a group that grows, the patients it links), re-matched
 *   the same way, until a round links no new patient.
 * Pairs between patients outside A were planned by the pass that cleared their marks and cannot have changed. Reads
 * are the writer's indexed candidate queries (page-candidates.ts), a few per hundred identities, each key's holders
 * fetched once: the cost follows the size of the change and the namesakes around it, not the organization. Too
 * many marks (a first sync) or too large a neighbourhood (a clinic landline on thousands of records) returns null:
 * the caller plans the whole organization, which is cheaper then.
 */

import type { IdentityInput, StoredIdentity } from '@routiq/sdk';
import { identityKey, type PatientLink, planPatientLinks } from '@routiq/sdk/identity';
import { pgArray } from '../db/pg-array.ts';
import { boundQuery } from '../db/tx.ts';
import type { Querier } from '../engine/writer.ts';
import { type FetchedKeys, identityKeyQuery, pageCandidateQuery, storedWithEvidence } from './page-candidates.ts';
import { IDENTITY_COLUMNS, type IdentityRow, type StoredIdentityRow } from './rows.ts';

/** More marked identities than this: plan the whole organization (a first sync marks every identity). */
export const MAX_MARKS = 2000;
/** More identities than this in the neighbourhood: plan the whole organization. */
export const MAX_NEIGHBOURHOOD = 20_000;
/** Identities per candidate query. */
const CHUNK = 100;
/** Marks per statement that clears them. */
const CLEAR_CHUNK = 10_000;

/** A marked identity as the pass saw it: its mark is cleared only if no write marked it again since. */
export interface Mark {
  id: string;
  markedAt: string;
}

export interface Neighbourhood {
  /** Live identities of the neighbourhood, ordered by source and external id (as the whole-organization plan). */
  identities: StoredIdentityRow[];
  /** The ones to re-match (`source:externalId`). */
  rematch: Set<string>;
  /** What they link (`planPatientLinks` over `identities`, re-matching `rematch`): the plan need not match again. */
  links: PatientLink[];
}

type Row = IdentityRow & { evidence: unknown };

/** The organization's marked identities (at most `limit`), as `identity_reconcile_marks` holds them. */
export async function loadMarks(q: Querier, organizationId: string, limit?: number): Promise<Mark[]> {
  const rows = await q<{ id: string; marked_at: string }>(
    `select identity_id::text as id, marked_at::text as marked_at from identity_reconcile_marks
     where organization_id = ?${limit === undefined ? '' : ` limit ${Math.floor(limit)}`}`,
    [organizationId],
  );
  return rows.map((r) => ({ id: r.id, markedAt: r.marked_at }));
}

/**
 * Clear the marks a pass has dealt with. An identity written again since the pass read its mark (a newer
 * `marked_at`) keeps it for the next pass. A mark whose identity is gone is cleared too.
 */
export async function clearMarks(q: Querier, organizationId: string, marks: readonly Mark[]): Promise<void> {
  for (let i = 0; i < marks.length; i += CLEAR_CHUNK) {
    const chunk = marks.slice(i, i + CLEAR_CHUNK);
    await boundQuery(
      q,
      `delete from identity_reconcile_marks m
       using unnest(?::uuid[], ?::timestamptz[]) as v(id, marked_at)
       where m.organization_id = ? and m.identity_id = v.id and m.marked_at = v.marked_at`,
      [pgArray(chunk.map((m) => m.id)), pgArray(chunk.map((m) => m.markedAt)), organizationId],
    );
  }
}

const list = (n: number) => Array.from({ length: n }, () => '?::uuid').join(', ');

/** The neighbourhood of the marked identities, or null when the whole organization should be planned instead. */
export async function loadNeighbourhood(
  q: Querier,
  organizationId: string,
  defaultCountry: string,
  settings: Readonly<Record<string, unknown>>,
  marks: readonly Mark[],
): Promise<Neighbourhood | null> {
  if (marks.length > MAX_MARKS) return null;
  const live = new Map<string, StoredIdentityRow>(); // by row id
  const add = (rows: readonly Row[]) => {
    for (const r of rows) if (!live.has(r.id)) live.set(r.id, { ...storedWithEvidence(r), id: r.id });
  };
  const tooBig = () => live.size > MAX_NEIGHBOURHOOD;

  // Marked rows, deleted ones too: their neighbours lost a candidate and their patient lost an identity.
  const marked: Array<Row & { gone: boolean; previous: unknown }> = [];
  for (let i = 0; i < marks.length; i += CHUNK) {
    const ids = marks.slice(i, i + CHUNK).map((m) => m.id);
    marked.push(
      ...(await q<Row & { gone: boolean; previous: unknown }>(
        `select ${IDENTITY_COLUMNS}, i.evidence, (i.deleted_at is not null or p.merged_into is not null) as gone,
           m.previous
         from patient_identities i join patients p on p.id = i.patient_id
           left join identity_reconcile_marks m on m.organization_id = i.organization_id and m.identity_id = i.id
         where i.organization_id = ? and i.id in (${list(ids.length)})`,
        [organizationId, ...ids],
      )),
    );
  }
  add(marked.filter((r) => !r.gone));

  // A: the marked identities and every identity that has one of them as a candidate, now or as the last pass saw
  // it (a phone changed from X to Y: X's other holders lost a candidate). The key relation is symmetric: the same
  // query from either side.
  const fetched: FetchedKeys = { phones: new Set(), emails: new Set(), names: new Set(), lastDobs: new Set() };
  const a = await candidates(
    q,
    organizationId,
    defaultCountry,
    [
      ...marked.map((r) => storedWithEvidence(r)),
      ...marked.flatMap((r) => {
        const before = previousOf(r);
        return before ? [before] : [];
      }),
    ],
    fetched,
  );
  if (a === null) return null;
  add(a);
  // B: every identity of the patients of A and of the marked rows, and every candidate of those.
  const loaded = new Set([...[...live.values()].map((i) => i.patientId), ...marked.map((r) => r.patient_id)]);
  const rematch = new Set<string>();
  let links: PatientLink[] = [];
  let next = await members(q, organizationId, [...loaded]);
  // Then, round by round, the patients those identities link outside what is loaded: a merge needs a link both
  // ways, so their identities' decisions are needed too (and, for a group that grows, the patients they link).
  for (;;) {
    add(next);
    for (const r of next) rematch.add(identityKey(r.source, r.external_id));
    const more = await candidates(
      q,
      organizationId,
      defaultCountry,
      next.map((r) => storedWithEvidence(r)),
      fetched,
    );
    if (more === null) return null;
    add(more);
    if (tooBig()) return null;
    links = planPatientLinks(sorted(live), { defaultCountry, settings, rematch });
    const targets = [...new Set(links.map((l) => l.to))].filter((p) => !loaded.has(p));
    if (targets.length === 0) break;
    for (const p of targets) loaded.add(p);
    next = await members(q, organizationId, targets);
  }

  const identities = sorted(live);
  return { identities, rematch, links };
}

/** The identity as the last pass saw it (its mark's `previous`, written by the writer's first change since). */
function previousOf(r: Row & { previous: unknown }): StoredIdentity | null {
  const p = (typeof r.previous === 'string' ? JSON.parse(r.previous) : r.previous) as Partial<
    IdentityRow & { evidence: unknown }
  > | null;
  if (!p || typeof p !== 'object') return null;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return storedWithEvidence({
    id: r.id,
    patient_id: r.patient_id,
    source: r.source,
    external_id: r.external_id,
    first_name: text(p.first_name),
    last_name: text(p.last_name),
    display_name: text(p.display_name),
    email: text(p.email),
    phone: text(p.phone),
    phone_e164: text(p.phone_e164),
    date_of_birth: text(p.date_of_birth),
    cross_refs: p.cross_refs ?? [],
    evidence: p.evidence ?? null,
  });
}

/** By source and external id, as the whole-organization plan reads them (the first identity of a link is its `via`). */
function sorted(live: ReadonlyMap<string, StoredIdentityRow>): StoredIdentityRow[] {
  return [...live.values()].sort((x, y) =>
    x.source === y.source ? cmp(x.externalId, y.externalId) : cmp(x.source, y.source),
  );
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

/** Every live identity of the given patients. */
async function members(q: Querier, organizationId: string, patientIds: readonly string[]): Promise<Row[]> {
  const out: Row[] = [];
  for (let i = 0; i < patientIds.length; i += CHUNK) {
    const ids = patientIds.slice(i, i + CHUNK);
    out.push(
      ...(await q<Row>(
        `select ${IDENTITY_COLUMNS}, i.evidence from patient_identities i join patients p on p.id = i.patient_id
         where i.organization_id = ? and i.patient_id in (${list(ids.length)}) and i.deleted_at is null
           and p.merged_into is null`,
        [organizationId, ...ids],
      )),
    );
  }
  return out;
}

/** The candidates of `inputs` (the writer's page queries), or null when a query passes the neighbourhood's limit. */
async function candidates(
  q: Querier,
  organizationId: string,
  defaultCountry: string,
  inputs: readonly IdentityInput[],
  fetched: FetchedKeys,
): Promise<Row[] | null> {
  const out: Row[] = [];
  for (let i = 0; i < inputs.length; i += CHUNK) {
    const chunk = inputs.slice(i, i + CHUNK);
    const keys = identityKeyQuery(organizationId, defaultCountry, chunk, MAX_NEIGHBOURHOOD);
    const keyed = keys ? await q<{ identity_id: string }>(keys.sql, keys.params) : [];
    if (keyed.length > MAX_NEIGHBOURHOOD) return null;
    const ids = [...new Set(keyed.map((k) => String(k.identity_id)))];
    const query = pageCandidateQuery(organizationId, defaultCountry, chunk, ids, MAX_NEIGHBOURHOOD, fetched);
    const rows = await q<Row>(query.sql, query.params);
    if (rows.length > MAX_NEIGHBOURHOOD) return null;
    out.push(...rows);
  }
  return out;
}
