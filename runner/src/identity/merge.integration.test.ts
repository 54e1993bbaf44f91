import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { isRoutiqError } from '../errors/registry.ts';
import { mergePatients, unmergePatients } from './merge.ts';
import {
  createOrganization,
  patientOf,
  snapshotTable,
  writeAppointment,
  writeConversation,
  writeIdentities,
} from './test-support.ts';

const kinds = await backends();

const TABLES = ['patients', 'patient_identities', 'conversations', 'appointments'] as const;

async function snapshot(db: TestDb['db'], org: string) {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const t of TABLES) out[t] = await snapshotTable(db, t, org, ['updated_at']);
  return out;
}

async function expectRefused(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(isRoutiqError(e), `expected a RoutiqError, got ${String(e)}`).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(message);
}

describe.each(kinds)('patient merge and unmerge (%s)', (kind) => {
  let t: TestDb;
  const ORG = 'org_merge';
  const OTHER = 'org_other';
  let p1: string; // Jane Citizen: cliniko c1 + chatwoot w1 (same phone)
  let p2: string; // Jane Citizen-Smith: cliniko c2 + manychat m1 (same phone)
  let p3: string; // Ravi Patel: cliniko c3
  let other: string; // a patient of another organization

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG);
    await createOrganization(t.db, OTHER);
    await writeIdentities(t.db, ORG, [
      {
        source: 'cliniko',
        externalId: 'c1',
        firstName: 'Jane',
        lastName: 'Citizen',
        email: 'jane@example.com',
        phoneRaw: '0412 345 678',
        dateOfBirth: '1980-01-15',
      },
      { source: 'chatwoot', externalId: 'w1', displayName: 'Jane Citizen', phoneRaw: '+61412345678' },
      {
        source: 'cliniko',
        externalId: 'c2',
        firstName: 'Jane',
        lastName: 'Citizen-Smith',
        email: 'jcs@work.example',
        phoneRaw: '0498 765 432',
      },
      { source: 'manychat', externalId: 'm1', firstName: 'Janey', lastName: 'Smith', phoneRaw: '61498765432' },
      {
        source: 'cliniko',
        externalId: 'c3',
        firstName: 'Ravi',
        lastName: 'Patel',
        phoneRaw: '0455 111 222',
        dateOfBirth: '1975-09-09',
      },
    ]);
    await writeIdentities(t.db, OTHER, [
      { source: 'cliniko', externalId: 'c1', firstName: 'Jane', lastName: 'Citizen', phoneRaw: '0412 345 678' },
    ]);
    await writeConversation(t.db, ORG, 'chatwoot', 'conv-w1', 'w1');
    await writeConversation(t.db, ORG, 'manychat', 'conv-m1', 'm1');
    await writeAppointment(t.db, ORG, 'appt-c1', 'c1');
    await writeAppointment(t.db, ORG, 'appt-c2', 'c2');
    const links = await patientOf(t.db, ORG);
    p1 = links.get('cliniko:c1')!;
    p2 = links.get('cliniko:c2')!;
    p3 = links.get('cliniko:c3')!;
    other = (await patientOf(t.db, OTHER)).get('cliniko:c1')!;
    // The seed is what the tests assume: two patients for Jane, each with two identities.
    expect(links.get('chatwoot:w1')).toBe(p1);
    expect(links.get('manychat:m1')).toBe(p2);
    expect(new Set([p1, p2, p3]).size).toBe(3);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('merges identities, conversations and appointments into one patient and audits it; unmerge restores every row', async () => {
    const before = await snapshot(t.db, ORG);
    const m = await mergePatients(t.db, {
      organizationId: ORG,
      from: p2,
      into: p1,
      actor: 'test:alice',
      reason: 'same person (married name)',
      method: 'manual',
    });
    expect(m.identityIds).toHaveLength(2);

    const links = await patientOf(t.db, ORG);
    expect(['cliniko:c1', 'chatwoot:w1', 'cliniko:c2', 'manychat:m1'].map((k) => links.get(k))).toEqual([
      p1,
      p1,
      p1,
      p1,
    ]);
    const ids = await t.db.query<{ match_method: string; match_confidence: string }>(
      `select match_method, match_confidence::text as match_confidence from patient_identities
       where organization_id = ? and external_id in ('c2', 'm1')`,
      [ORG],
    );
    expect(ids.map((r) => [r.match_method, Number(r.match_confidence)])).toEqual([
      ['manual', 1],
      ['manual', 1],
    ]);
    const convs = await t.db.query<{ external_id: string; patient_id: string }>(
      'select external_id, patient_id from conversations where organization_id = ? order by external_id',
      [ORG],
    );
    expect(convs).toEqual([
      { external_id: 'conv-m1', patient_id: p1 },
      { external_id: 'conv-w1', patient_id: p1 },
    ]);
    const appts = await t.db.query<{ external_id: string; patient_id: string }>(
      'select external_id, patient_id from appointments where organization_id = ? order by external_id',
      [ORG],
    );
    expect(appts).toEqual([
      { external_id: 'appt-c1', patient_id: p1 },
      { external_id: 'appt-c2', patient_id: p1 },
    ]);
    const [from] = await t.db.query<{ merged_into: string }>('select merged_into from patients where id = ?', [p2]);
    expect(from?.merged_into).toBe(p1);
    // into keeps the fields of its highest-priority (cliniko), oldest identity.
    const [into] = await t.db.query<Record<string, unknown>>(
      `select first_name, last_name, email, phone_e164, to_char(date_of_birth, 'YYYY-MM-DD') as dob, primary_source
       from patients where id = ?`,
      [p1],
    );
    expect(into).toEqual({
      first_name: 'Jane',
      last_name: 'Citizen',
      email: 'jane@example.com',
      phone_e164: '+61412345678',
      dob: '1980-01-15',
      primary_source: 'cliniko',
    });

    const audit = await t.db.query<{
      id: string;
      actor: string;
      resource_type: string;
      resource_id: string;
      details: any;
    }>(
      "select id::text as id, actor, resource_type, resource_id, details from audit_log where action = 'patients.merge' and organization_id = ?",
      [ORG],
    );
    expect(audit).toHaveLength(1);
    const a = audit[0]!;
    expect(a).toMatchObject({ id: m.auditId, actor: 'test:alice', resource_type: 'patient', resource_id: p2 });
    expect(a.details).toMatchObject({
      into: p1,
      reason: 'same person (married name)',
      method: 'manual',
      identity_ids: m.identityIds,
    });
    expect(a.details.before.from.id).toBe(p2);
    expect(a.details.before.into.id).toBe(p1);
    expect(a.details.before.from.merged_into).toBeNull();

    const u = await unmergePatients(t.db, { organizationId: ORG, patientId: p2, actor: 'test:bob', reason: 'not her' });
    expect(u).toMatchObject({
      mergeAuditId: m.auditId,
      from: p2,
      into: p1,
      conversations: 1,
      appointments: 1,
      restored: { from: 'snapshot', into: 'snapshot' },
    });
    expect(await snapshot(t.db, ORG)).toEqual(before);
    const undo = await t.db.query<{ resource_id: string; details: any }>(
      "select resource_id, details from audit_log where action = 'patients.unmerge' and organization_id = ?",
      [ORG],
    );
    expect(undo).toHaveLength(1);
    expect(undo[0]).toMatchObject({
      resource_id: p2,
      details: { merge_audit_id: m.auditId, into: p1, reason: 'not her' },
    });

    // Undone once: neither the audit id nor the patient can be unmerged again.
    await expectRefused(
      unmergePatients(t.db, { organizationId: ORG, mergeAuditId: m.auditId, actor: 'x', reason: 'again' }),
      'RQ5006',
      /already undone/,
    );
    await expectRefused(
      unmergePatients(t.db, { organizationId: ORG, patientId: p2, actor: 'x', reason: 'again' }),
      'RQ5006',
      /is not merged/,
    );
  });

  it('unmerge repoints rows that arrived after the merge and recomputes fields that changed since', async () => {
    const m = await mergePatients(t.db, {
      organizationId: ORG,
      from: p2,
      into: p1,
      actor: 'test',
      reason: 'duplicate',
      method: 'manual',
    });
    // After the merge: a new ManyChat conversation follows the identity to p1; the subscriber renames themself.
    await writeConversation(t.db, ORG, 'manychat', 'conv-m1-b', 'm1');
    await writeIdentities(t.db, ORG, [
      { source: 'manychat', externalId: 'm1', firstName: 'Jane', lastName: 'Smith', phoneRaw: '61498765432' },
    ]);
    const [late] = await t.db.query<{ patient_id: string }>(
      "select patient_id from conversations where organization_id = ? and external_id = 'conv-m1-b'",
      [ORG],
    );
    expect(late?.patient_id).toBe(p1);

    const u = await unmergePatients(t.db, {
      organizationId: ORG,
      mergeAuditId: m.auditId,
      actor: 'test',
      reason: 'two people',
    });
    expect(u.restored).toEqual({ from: 'recomputed', into: 'snapshot' });
    expect(u.conversations).toBe(2);
    const convs = await t.db.query<{ external_id: string; patient_id: string }>(
      "select external_id, patient_id from conversations where organization_id = ? and source = 'manychat' order by external_id",
      [ORG],
    );
    expect(convs).toEqual([
      { external_id: 'conv-m1', patient_id: p2 },
      { external_id: 'conv-m1-b', patient_id: p2 },
    ]);
    const [p] = await t.db.query<{
      merged_into: string | null;
      first_name: string;
      last_name: string;
      primary_source: string;
    }>('select merged_into, first_name, last_name, primary_source from patients where id = ?', [p2]);
    expect(p).toEqual({ merged_into: null, first_name: 'Jane', last_name: 'Citizen-Smith', primary_source: 'cliniko' });
  });

  it('refuses cross-organization, unknown, self and already-merged merges, and changes nothing', async () => {
    const before = await snapshot(t.db, ORG);
    const base = { organizationId: ORG, actor: 'test', reason: 'r', method: 'manual' as const };
    await expectRefused(
      mergePatients(t.db, { ...base, from: other, into: p1 }),
      'RQ1008',
      /no patient .* in organization "org_merge"/,
    );
    await expectRefused(
      mergePatients(t.db, { ...base, from: p1, into: other }),
      'RQ1008',
      /never merged across organizations/,
    );
    await expectRefused(
      mergePatients(t.db, { ...base, organizationId: OTHER, from: p1, into: other }),
      'RQ1008',
      /no patient/,
    );
    await expectRefused(
      mergePatients(t.db, { ...base, from: '00000000-0000-4000-8000-000000000000', into: p1 }),
      'RQ1008',
      /no patient/,
    );
    await expectRefused(mergePatients(t.db, { ...base, from: 'not-a-uuid', into: p1 }), 'RQ1008', /no patient/);
    await expectRefused(
      mergePatients(t.db, { ...base, organizationId: 'org_nope', from: p2, into: p1 }),
      'RQ1008',
      /no organization/,
    );
    await expectRefused(mergePatients(t.db, { ...base, from: p1, into: p1 }), 'RQ5006', /into itself/);
    await expectRefused(mergePatients(t.db, { ...base, from: p2, into: p1, reason: '  ' }), 'RQ6001', /reason/);
    expect(await snapshot(t.db, ORG)).toEqual(before);
    expect((await snapshot(t.db, OTHER)).patients?.[0]?.merged_into).toBeNull();

    const m = await mergePatients(t.db, { ...base, from: p2, into: p1 });
    await expectRefused(mergePatients(t.db, { ...base, from: p2, into: p3 }), 'RQ5006', /already merged into/);
    await expectRefused(mergePatients(t.db, { ...base, from: p3, into: p2 }), 'RQ5006', /already merged into/);
    await expectRefused(
      unmergePatients(t.db, { organizationId: OTHER, mergeAuditId: m.auditId, actor: 'x', reason: 'r' }),
      'RQ1008',
      /no patient merge/,
    );
    await unmergePatients(t.db, { organizationId: ORG, mergeAuditId: m.auditId, actor: 'x', reason: 'r' });
  });

  it('undoes merges in reverse order only', async () => {
    const base = { organizationId: ORG, actor: 'test', reason: 'r', method: 'manual' as const };
    const before = await snapshot(t.db, ORG);
    const first = await mergePatients(t.db, { ...base, from: p2, into: p1 });
    const second = await mergePatients(t.db, { ...base, from: p1, into: p3 });
    expect(new Set((await patientOf(t.db, ORG)).values())).toEqual(new Set([p3]));
    await expectRefused(
      unmergePatients(t.db, { organizationId: ORG, mergeAuditId: first.auditId, actor: 'x', reason: 'r' }),
      'RQ5006',
      new RegExp(`has since been merged into ${p3}.*unmerge ${second.auditId}`),
    );
    await unmergePatients(t.db, { organizationId: ORG, patientId: p1, actor: 'x', reason: 'r' });
    await unmergePatients(t.db, { organizationId: ORG, mergeAuditId: first.auditId, actor: 'x', reason: 'r' });
    expect(await snapshot(t.db, ORG)).toEqual(before);
  });

  it.runIf(kind === 'postgres')('waits for the identity lock a writer holds', async () => {
    const holder = new pg.Client({ connectionString: t.url! });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock(hashtext($1))', [`routiq:identity:${ORG}`]);
      let done = false;
      const merging = mergePatients(t.db, {
        organizationId: ORG,
        from: p2,
        into: p1,
        actor: 'test',
        reason: 'r',
        method: 'manual',
      }).then((r) => {
        done = true;
        return r;
      });
      // Wait until the merge is observed blocked on the advisory lock (PostgreSQL lists it as not granted).
      while (!done) {
        const waiting = await holder.query(
          "select 1 from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())",
        );
        if (waiting.rowCount) break;
        await new Promise((r) => setImmediate(r));
      }
      expect(done).toBe(false);
      await holder.query('commit');
      const m = await merging;
      expect(done).toBe(true);
      await unmergePatients(t.db, { organizationId: ORG, mergeAuditId: m.auditId, actor: 'x', reason: 'r' });
    } finally {
      await holder.end();
    }
  });
});
