import { loadConnector } from '@routiq/runner';
import { buildConnectionContext } from '@routiq/runner/testing';
import { type ClinikoSim, startCliniko } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blank, CONNECTORS_DIR, connectorRunner, iso } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { org } from '../helpers/engine.ts';

/**
 * Issue #5: full sync, the source changes, incremental sync → the database equals the simulator's state
 * (every record, every mapped field), no duplicates, archived/cancelled/deleted reflected, no 429 received.
 */
const API_KEY = 'MTAtMDAwMDAwMDAwMDAxLWFiY2RlZjAxMjM0NTY3ODk-au1';
const kinds = await backends();

const idOf = (link: unknown) => (typeof link === 'string' ? (link.split('/').pop() ?? null) : null);

describe.each(kinds)('Cliniko connector against the simulator (%s)', (kind) => {
  let t: TestDb;
  let sim: ClinikoSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    sim = await startCliniko({ users: [{ apiKey: API_KEY }], seed: 42, scale: 3 });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('mirrors patients, appointments, practitioners and appointment types exactly across full and incremental syncs', async () => {
    const r = connectorRunner(
      t.db,
      'org_cliniko_e2e',
      {
        connector: 'cliniko',
        config: { base_url: sim.url, contact_email: 'ops@routiq.example' },
        secrets: { api_key: '${CLINIKO_KEY}' },
      },
      { CLINIKO_KEY: API_KEY },
    );
    const first = await r.sync();
    expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
    const deletedBeforeFirstSync = new Set(
      sim
        .snapshot()
        .users[0]!.patients.filter((p) => p.deleted_at)
        .map((p) => String(p.id)),
    );
    // Mutate until every kind of change has happened at least once (deterministic for the seed), syncing after each round.
    const seen: Record<string, number> = {};
    const wanted = [
      'patient_archived',
      'patient_deleted',
      'patient_updated',
      'appointment_cancelled',
      'appointment_deleted',
    ];
    for (let round = 0; round < 20 && !wanted.every((k) => seen[k]); round++) {
      const m = sim.mutate(5);
      for (const [k, v] of Object.entries(m.counts)) seen[k] = (seen[k] ?? 0) + v;
      const inc = await r.sync();
      expect(inc.status, JSON.stringify(inc.streams)).toBe('succeeded');
    }
    expect(wanted.filter((k) => !seen[k])).toEqual([]);
    expect(sim.stats.rateLimited).toBe(0);
    const snap = sim.snapshot().users[0]!;
    const q = t.db.query.bind(t.db);
    const org = r.org.id;

    // patients → patient_identities (every live or archived patient; deleted ones carry deleted_at)
    const ids = await q<Record<string, unknown>>(
      `select external_id, first_name, last_name, email, phone, to_char(date_of_birth, 'YYYY-MM-DD') as date_of_birth, archived_at, deleted_at
       from patient_identities where organization_id = ? and source = 'cliniko' order by external_id`,
      [org],
    );
    const byId = new Map(ids.map((x) => [String(x.external_id), x]));
    expect(byId.size).toBe(ids.length);
    let archived = 0;
    let deleted = 0;
    for (const p of snap.patients) {
      const id = String(p.id);
      const row = byId.get(id);
      if (p.deleted_at && deletedBeforeFirstSync.has(id)) {
        // Deleted before we ever saw it: Cliniko hides it and its tombstone has no data to store.
        if (row) expect(iso(row.deleted_at)).toBe(iso(p.deleted_at));
        continue;
      }
      expect(row, `patient ${id}`).toBeDefined();
      const phones = (p.patient_phone_numbers as Array<{ phone_type: string; number: string }>) ?? [];
      const phone = phones.find((x) => x.phone_type === 'Mobile')?.number ?? phones[0]?.number ?? null;
      expect({ ...row, archived_at: iso(row!.archived_at), deleted_at: iso(row!.deleted_at) }).toEqual({
        external_id: id,
        first_name: blank(p.first_name),
        last_name: blank(p.last_name),
        email: blank(p.email),
        phone,
        date_of_birth: blank(p.date_of_birth),
        archived_at: iso(p.archived_at),
        deleted_at: iso(p.deleted_at),
      });
      if (p.archived_at) archived++;
      if (p.deleted_at) deleted++;
    }
    expect(archived, 'archived patients').toBeGreaterThan(0);
    expect(deleted, `patients deleted after the first sync (before: ${deletedBeforeFirstSync.size})`).toBeGreaterThan(
      0,
    );

    // appointments: cancelled, did-not-arrive, arrived and deleted all reflected as soft state
    const appts = await q<Record<string, unknown>>(
      `select external_id, patient_external_id, practitioner_external_id, appointment_type_external_id, appointment_type, starts_at, ends_at,
              status, cancelled_at, archived_at, deleted_at, notes, patient_id from appointments where organization_id = ? order by external_id`,
      [org],
    );
    const apptById = new Map(appts.map((a) => [String(a.external_id), a]));
    const typeName = new Map(snap.appointment_types.map((x) => [String(x.id), x.name]));
    const statuses = new Set<string>();
    for (const a of snap.individual_appointments) {
      const row = apptById.get(String(a.id));
      if (a.deleted_at && !row) continue; // deleted before the first sync: never visible
      expect(row, `appointment ${String(a.id)}`).toBeDefined();
      const status = a.cancelled_at
        ? 'cancelled'
        : a.did_not_arrive === true
          ? 'did_not_arrive'
          : a.patient_arrived === true
            ? 'arrived'
            : 'booked';
      statuses.add(status);
      const link = (k: string) => idOf((a[k] as { links?: { self?: string } } | undefined)?.links?.self);
      expect({
        external_id: row!.external_id,
        patient_external_id: row!.patient_external_id,
        practitioner_external_id: row!.practitioner_external_id,
        appointment_type_external_id: row!.appointment_type_external_id,
        appointment_type: row!.appointment_type,
        starts_at: iso(row!.starts_at),
        ends_at: iso(row!.ends_at),
        status: row!.status,
        cancelled_at: iso(row!.cancelled_at),
        archived_at: iso(row!.archived_at),
        deleted_at: iso(row!.deleted_at),
        notes: row!.notes,
      }).toEqual({
        external_id: String(a.id),
        patient_external_id: link('patient'),
        practitioner_external_id: link('practitioner'),
        appointment_type_external_id: link('appointment_type'),
        appointment_type: typeName.get(String(link('appointment_type'))) ?? null,
        starts_at: iso(a.starts_at),
        ends_at: iso(a.ends_at),
        status,
        cancelled_at: iso(a.cancelled_at),
        archived_at: iso(a.archived_at),
        deleted_at: iso(a.deleted_at),
        notes: blank(a.notes),
      });
      // linked to the unified patient of its Cliniko patient
      if (byId.has(String(link('patient')))) expect(row!.patient_id).not.toBeNull();
    }
    expect(statuses).toEqual(new Set(['booked', 'cancelled', 'did_not_arrive', 'arrived']));
    expect(appts.length).toBe(apptById.size);

    const pracs = await q<{ external_id: string; active: boolean }>(
      'select external_id, active from practitioners where organization_id = ? order by external_id',
      [org],
    );
    expect(pracs.map((p) => [p.external_id, p.active])).toEqual(
      [...snap.practitioners]
        .sort((a, b) => String(a.id).localeCompare(String(b.id)))
        .map((p) => [String(p.id), p.active !== false]),
    );
    const types = await q<{ external_id: string; name: string; archived_at: unknown }>(
      'select external_id, name, archived_at from appointment_types where organization_id = ? order by external_id',
      [org],
    );
    expect(types.map((x) => [x.external_id, x.name, iso(x.archived_at)])).toEqual(
      [...snap.appointment_types]
        .sort((a, b) => String(a.id).localeCompare(String(b.id)))
        .map((x) => [String(x.id), x.name, iso(x.archived_at)]),
    );

    // Lineage: every row names its stream, connector version and run, and its source hash is the raw record's.
    const lineage = await q<{ n: string; bad: string }>(
      `select count(*)::text as n,
              count(*) filter (where r.source_hash is distinct from i.source_hash or i.spec_version <> '1.0.0' or s.id is null)::text as bad
       from patient_identities i
       left join raw_records r on r.organization_id = i.organization_id and r.source = i.source and r.stream = i.stream and r.external_id = i.external_id
       left join sync_runs s on s.id = i.last_sync_run_id
       where i.organization_id = ? and i.stream = 'patients'`,
      [org],
    );
    expect(Number(lineage[0]?.n)).toBeGreaterThan(0);
    expect(lineage[0]?.bad).toBe('0');

    // An unchanged source: one request per stream, nothing written.
    const before = sim.stats.requests;
    const idle = await r.sync();
    expect(sim.stats.requests - before).toBe(idle.streams.length);
    expect(idle.streams.every((s) => s.inserted === 0 && s.updated === 0)).toBe(true);
  });

  it('derives the shard from the key suffix (default au1) when no base_url is set', async () => {
    const { spec } = loadConnector(CONNECTORS_DIR, 'cliniko');
    const ctx = async (key: string) => {
      const o = org('org_shard', [
        { connector: 'cliniko', config: { contact_email: 'ops@routiq.example' }, secrets: { api_key: '${K}' } },
      ]);
      return (await buildConnectionContext(spec, o, o.connections[0]!, { api_key: key })).baseUrl;
    };
    expect(await ctx('MxJrZXkiOiI1Njd1amJmZTQ1NyJ9-au2')).toBe('https://api.au2.cliniko.com/v1');
    expect(await ctx('abc-UK2')).toBe('https://api.uk2.cliniko.com/v1');
    expect(await ctx('no-suffix-here-ca1')).toBe('https://api.ca1.cliniko.com/v1');
    expect(await ctx('nosuffix')).toBe('https://api.au1.cliniko.com/v1');
  });

  it('is refused by the platform without a contact email in the User-Agent', async () => {
    const r = connectorRunner(
      t.db,
      'org_cliniko_ua',
      {
        connector: 'cliniko',
        config: { base_url: sim.url, contact_email: 'ops@routiq.example', app_name: 'x' },
        secrets: { api_key: '${K}' },
      },
      { K: API_KEY },
    );
    const ok = await r.sync();
    expect(ok.status).toBe('succeeded');
    const res = await fetch(`${sim.url}/patients`, {
      headers: { Authorization: `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`, 'User-Agent': 'NoEmail' },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
  });
});
