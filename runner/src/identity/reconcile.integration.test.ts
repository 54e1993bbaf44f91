import type { IdentityInput } from '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { listDuplicates } from './duplicates.ts';
import { mergePatients, unmergePatients } from './merge.ts';
import { reconcileOrganization } from './reconcile.ts';
import { createOrganization, patientOf, snapshotTable, writeConversation, writeIdentities } from './test-support.ts';

const kinds = await backends();

/**
 * Arrival order splits Alice and Bob: their WhatsApp/Messenger contact (phone only) and their email contact
 * (email only) share no key, and the Cliniko record that carries both joins one of the two patients only.
 * The Lees share a phone and an email (mother and son), the Browns are twins on one phone: never merged.
 * Michael Johnson / Mike Jonson is a planted near-duplicate (nickname, surname typo, same date of birth) that the
 * matcher cannot find (its candidate query needs the exact surname) and leaves for review.
 */
const SEED: IdentityInput[] = [
  { source: 'chatwoot', externalId: 'w10', displayName: 'Alice Nguyen', phoneRaw: '+61411111111' },
  { source: 'chatwoot', externalId: 'w11', displayName: 'Alice Nguyen', email: 'alice@example.com' },
  { source: 'manychat', externalId: 'm20', firstName: 'Bob', lastName: 'Smith', phoneRaw: '61422222222' },
  { source: 'chatwoot', externalId: 'w21', displayName: 'Bob Smith', email: 'bob@example.com' },
  {
    source: 'cliniko',
    externalId: 'c10',
    firstName: 'Alice',
    lastName: 'Nguyen',
    phoneRaw: '0411 111 111',
    email: 'Alice@Example.com',
    dateOfBirth: '1990-05-05',
  },
  {
    source: 'cliniko',
    externalId: 'c20',
    firstName: 'Robert',
    lastName: 'Smith',
    phoneRaw: '0422 222 222',
    email: 'bob@example.com',
    dateOfBirth: '1982-11-30',
  },
  {
    source: 'cliniko',
    externalId: 'c30',
    firstName: 'Sarah',
    lastName: 'Lee',
    phoneRaw: '0433 333 333',
    email: 'sarah.lee@example.com',
    dateOfBirth: '1985-03-03',
  },
  {
    source: 'cliniko',
    externalId: 'c31',
    firstName: 'Tom',
    lastName: 'Lee',
    phoneRaw: '0433 333 333',
    email: 'sarah.lee@example.com',
    dateOfBirth: '2015-07-07',
  },
  { source: 'chatwoot', externalId: 'w30', displayName: 'Sarah Lee', phoneRaw: '+61433333333' },
  {
    source: 'cliniko',
    externalId: 'c40',
    firstName: 'Emma',
    lastName: 'Brown',
    phoneRaw: '0444 444 444',
    dateOfBirth: '2010-01-01',
  },
  {
    source: 'cliniko',
    externalId: 'c41',
    firstName: 'Olivia',
    lastName: 'Brown',
    phoneRaw: '0444 444 444',
    dateOfBirth: '2010-01-01',
  },
  { source: 'manychat', externalId: 'm50', firstName: 'Zed', lastName: 'Zulu', phoneRaw: '61455555555' },
  {
    source: 'cliniko',
    externalId: 'c60',
    firstName: 'Michael',
    lastName: 'Johnson',
    phoneRaw: '0466 666 666',
    dateOfBirth: '1970-02-02',
  },
  {
    source: 'cliniko',
    externalId: 'c61',
    firstName: 'Mike',
    lastName: 'Jonson',
    email: 'mj@example.com',
    dateOfBirth: '1970-02-02',
  },
];

const PEOPLE = [
  ['chatwoot:w10', 'chatwoot:w11', 'cliniko:c10'],
  ['manychat:m20', 'chatwoot:w21', 'cliniko:c20'],
  ['cliniko:c30', 'chatwoot:w30'],
  ['cliniko:c31'],
  ['cliniko:c40'],
  ['cliniko:c41'],
  ['manychat:m50'],
  ['cliniko:c60'],
  ['cliniko:c61'],
];

/** Identities grouped by patient, as sorted lists (comparable regardless of patient ids). */
function grouping(links: Map<string, string>): string[][] {
  const by = new Map<string, string[]>();
  for (const [key, patient] of links) by.set(patient, [...(by.get(patient) ?? []), key]);
  return [...by.values()].map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

const TRUTH = PEOPLE.map((g) => [...g].sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));

describe.each(kinds)('reconcile and duplicates (%s)', (kind) => {
  let t: TestDb;
  const ORG = 'org_reconcile';

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG);
    await writeIdentities(t.db, ORG, SEED);
    await writeConversation(t.db, ORG, 'chatwoot', 'conv-w10', 'w10');
    await writeConversation(t.db, ORG, 'manychat', 'conv-m20', 'm20');
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('the seed splits Alice and Bob and keeps the households apart', async () => {
    const links = await patientOf(t.db, ORG);
    expect(links.get('chatwoot:w10')).not.toBe(links.get('cliniko:c10'));
    expect(links.get('manychat:m20')).not.toBe(links.get('cliniko:c20'));
    expect(grouping(links)).toHaveLength(TRUTH.length + 2);
  });

  it('lists the planted near-duplicate, and never a household member', async () => {
    const links = await patientOf(t.db, ORG);
    const { duplicates, stats } = await listDuplicates(t.db, { organizationId: ORG });
    const pair = (a: string, b: string) =>
      duplicates.find(
        (d) =>
          d.patientIds.includes(links.get(a)!) && d.patientIds.includes(links.get(b)!) && links.get(a) !== links.get(b),
      );
    const planted = pair('cliniko:c60', 'cliniko:c61');
    expect(planted).toBeDefined();
    expect(planted!.score).toBeGreaterThanOrEqual(0.75);
    expect(planted!.reasons.length).toBeGreaterThan(0);
    expect(planted!.explanation).toContain('same date of birth');
    expect(pair('cliniko:c30', 'cliniko:c31')).toBeUndefined();
    expect(pair('cliniko:c40', 'cliniko:c41')).toBeUndefined();
    expect(stats.identities).toBe(SEED.length);
    for (const d of duplicates) expect(d.patientIds[0] < d.patientIds[1]).toBe(true);
  });

  it('a dry run plans the two merges and writes nothing', async () => {
    const before = await snapshotTable(t.db, 'patients', ORG);
    const r = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system', dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.merges).toHaveLength(2);
    expect(r.merges.every((m) => m.auditId === undefined)).toBe(true);
    expect(await snapshotTable(t.db, 'patients', ORG)).toEqual(before);
    const [audit] = await t.db.query<{ n: number }>('select count(*)::int as n from audit_log');
    expect(audit?.n).toBe(0);
  });

  it('merges the split people and nothing else, audited; a second run plans nothing', async () => {
    const split = await patientOf(t.db, ORG);
    const r = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system' });
    expect(r.merges).toHaveLength(2);
    expect(r.identities).toBe(SEED.length);
    const links = await patientOf(t.db, ORG);
    expect(grouping(links)).toEqual(TRUTH);
    // The oldest patient of each group keeps its id: the one created by the first identity to arrive.
    expect(links.get('cliniko:c10')).toBe(split.get('chatwoot:w10'));
    expect(links.get('cliniko:c20')).toBe(split.get('manychat:m20'));

    const audit = await t.db.query<{ id: string; actor: string; resource_id: string; details: any }>(
      "select id::text as id, actor, resource_id, details from audit_log where action = 'patients.merge' order by id",
    );
    expect(audit.map((a) => a.id).sort()).toEqual(r.merges.map((m) => m.auditId).sort());
    for (const a of audit) {
      expect(a.actor).toBe('system');
      expect(a.details.method).toBe('reconcile');
      expect(a.details.via).toMatch(/^(chatwoot|manychat|cliniko):/);
    }
    const moved = await t.db.query<{ n: number }>(
      "select count(*)::int as n from patient_identities where organization_id = ? and match_method = 'reconcile' and match_confidence >= 0.5",
      [ORG],
    );
    expect(moved[0]?.n).toBe(r.merges.reduce((n, m) => n + (m.identityIds?.length ?? 0), 0));
    const convs = await t.db.query<{ external_id: string; patient_id: string }>(
      'select external_id, patient_id from conversations where organization_id = ? order by external_id',
      [ORG],
    );
    expect(convs).toEqual([
      { external_id: 'conv-m20', patient_id: links.get('cliniko:c20') },
      { external_id: 'conv-w10', patient_id: links.get('cliniko:c10') },
    ]);
    const [alice] = await t.db.query<Record<string, unknown>>(
      'select first_name, last_name, email, primary_source, merged_into from patients where id = ?',
      [links.get('cliniko:c10')],
    );
    expect(alice).toEqual({
      first_name: 'Alice',
      last_name: 'Nguyen',
      email: 'Alice@Example.com',
      primary_source: 'cliniko',
      merged_into: null,
    });

    const again = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system' });
    expect(again.merges).toEqual([]);
    expect(again.skipped).toEqual([]);
    // Inside a caller's transaction too.
    const inTx = await transaction(forOrganization(t.db, ORG), (q) =>
      reconcileOrganization(q, { organizationId: ORG }),
    );
    expect(inTx.merges).toEqual([]);

    // Split pairs are no longer duplicates; the planted one still is.
    const { duplicates } = await listDuplicates(t.db, { organizationId: ORG });
    const patients = new Set(duplicates.flatMap((d) => d.patientIds));
    expect(patients.has(links.get('cliniko:c60')!)).toBe(true);
    expect(patients.has(links.get('cliniko:c10')!)).toBe(false);
  });

  it('never re-merges a pair a person unmerged; a manual merge still can', async () => {
    const links = await patientOf(t.db, ORG);
    const alice = links.get('cliniko:c10')!;
    const [merge] = await t.db.query<{ resource_id: string; id: string }>(
      "select id::text as id, resource_id from audit_log where action = 'patients.merge' and details->>'into' = ?",
      [alice],
    );
    const u = await unmergePatients(t.db, {
      organizationId: ORG,
      mergeAuditId: merge!.id,
      actor: 'test:reviewer',
      reason: 'two different Alices',
    });
    expect(u.from).toBe(merge!.resource_id);

    const r = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system' });
    expect(r.merges).toEqual([]);
    expect(r.skipped).toEqual([expect.objectContaining({ from: u.from, into: alice, reason: 'kept_apart' })]);
    const dup = await listDuplicates(t.db, { organizationId: ORG });
    expect(dup.stats.keptApart).toBe(1);
    expect(dup.duplicates.some((d) => d.patientIds.includes(u.from) && d.patientIds.includes(alice))).toBe(false);

    await mergePatients(t.db, {
      organizationId: ORG,
      from: u.from,
      into: alice,
      actor: 'test:reviewer',
      reason: 'same Alice after all',
      method: 'manual',
    });
    expect(grouping(await patientOf(t.db, ORG))).toEqual(TRUTH);
    expect((await reconcileOrganization(t.db, { organizationId: ORG })).skipped).toEqual([]);
  });
});
