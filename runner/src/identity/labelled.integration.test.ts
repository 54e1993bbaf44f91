/**
 * The offline evaluation of the sdk matcher (@routiq/sandbox/identity), replayed through the real engine: a
 * labelled identity set written one identity at a time by the writer (SQL candidate search, identity lock), then
 * `reconcileOrganization` over the database. The result must be as good as the in-memory evaluation of the same
 * set says.
 */

import { evaluateMatching, generateLabelledSet, toIdentityInput } from '@routiq/sandbox/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { reconcileOrganization } from './reconcile.ts';
import { createOrganization, patientOf, writeIdentities } from './test-support.ts';

const kinds = await backends();
const SEED = 20250627;
const PEOPLE = 300;

interface Quality {
  precision: number;
  recall: number;
  f1: number;
  sharedPhoneWrongMerges: number;
  truePairs: number;
  predictedPairs: number;
  truePositives: number;
}

const choose2 = (n: number) => (n * (n - 1)) / 2;

function quality(
  identities: Array<{ key: string; personId: string; truePhoneE164: string | null }>,
  patientOf: Map<string, string>,
): Quality {
  const cell = new Map<string, number>();
  const byPatient = new Map<string, typeof identities>();
  const byPerson = new Map<string, number>();
  for (const i of identities) {
    const p = patientOf.get(i.key)!;
    cell.set(`${p} ${i.personId}`, (cell.get(`${p} ${i.personId}`) ?? 0) + 1);
    byPatient.set(p, [...(byPatient.get(p) ?? []), i]);
    byPerson.set(i.personId, (byPerson.get(i.personId) ?? 0) + 1);
  }
  let truePositives = 0;
  for (const n of cell.values()) truePositives += choose2(n);
  let predictedPairs = 0;
  for (const l of byPatient.values()) predictedPairs += choose2(l.length);
  let truePairs = 0;
  for (const n of byPerson.values()) truePairs += choose2(n);
  const owners = new Map<string, Set<string>>();
  for (const i of identities) {
    if (i.truePhoneE164) owners.set(i.truePhoneE164, (owners.get(i.truePhoneE164) ?? new Set()).add(i.personId));
  }
  let sharedPhoneWrongMerges = 0;
  for (const l of byPatient.values()) {
    for (let x = 0; x < l.length; x++) {
      for (let y = x + 1; y < l.length; y++) {
        const a = l[x]!;
        const b = l[y]!;
        if (a.personId === b.personId) continue;
        if ([...owners.values()].some((s) => s.has(a.personId) && s.has(b.personId))) sharedPhoneWrongMerges++;
      }
    }
  }
  const precision = predictedPairs ? truePositives / predictedPairs : 1;
  const recall = truePairs ? truePositives / truePairs : 1;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, sharedPhoneWrongMerges, truePairs, predictedPairs, truePositives };
}

describe.each(kinds)('labelled set through the engine (%s)', (kind) => {
  let t: TestDb;
  const ORG = 'org_labelled';
  const set = generateLabelledSet({ seed: SEED, people: PEOPLE });
  const labelled = set.identities.map((l) => ({
    key: `${l.source}:${l.externalId}`,
    personId: l.personId,
    truePhoneE164: l.truePhoneE164,
  }));

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG, { defaultCountry: set.defaultCountry });
    await writeIdentities(t.db, ORG, set.identities.map(toIdentityInput));
  }, 300_000);
  afterAll(async () => {
    await t?.drop();
  });

  it('matching + reconcile in the database is as good as the offline evaluation', async () => {
    const memory = await evaluateMatching({ seed: SEED, size: PEOPLE, reconcile: true });
    const before = quality(labelled, await patientOf(t.db, ORG));
    const r = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system' });
    const after = quality(labelled, await patientOf(t.db, ORG));

    expect(r.identities).toBe(set.identities.length);
    expect(after.sharedPhoneWrongMerges).toBe(0);
    expect(after.precision).toBe(1);
    expect(after.recall).toBeGreaterThanOrEqual(before.recall);
    // Same rules, same candidates: the database reaches the in-memory figures (up to tie-breaks between
    // equally good patients, which follow patient ids: random uuids here, a counter in memory).
    expect(after.f1).toBeGreaterThanOrEqual(Math.min(0.99, memory.f1 - 0.005));
    expect(r.merges.length).toBeGreaterThan(0);

    const again = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system' });
    expect(again.merges).toEqual([]);
  });
});
