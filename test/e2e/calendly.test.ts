import { type CalendlySim, type CalendlySnapshot, startCalendly } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blank, connectorRunner, iso } from '../helpers/connectors.ts';
import { openTestDb, type TestDb } from '../helpers/db.ts';

/**
 * The fourth connector (issue #22: written from docs/adding-a-connector.md with the workbench): a full sync of the
 * Calendly simulator into the embedded database equals the simulator's data; after bookings, cancellations,
 * reschedules and no-shows an incremental run makes exactly the expected requests (every event page, invitees only
 * of the events that changed) and the database equals the simulator again, except the documented gap (a no-show on
 * an otherwise unchanged event), which a full refresh closes.
 */
const TOKEN = 'e2e-calendly-token';
const uuidOf = (uri: unknown) => String(uri).split('/').pop() ?? '';

type Org = CalendlySnapshot['orgs'][number];
type Rec = Record<string, unknown>;

/** What the unified tables must hold for this snapshot (connectors/calendly/README.md). */
function expected(o: Org) {
  const types = new Map(o.event_types.map((t) => [uuidOf(t.uri), t]));
  const appointments = o.scheduled_events.map((e) => {
    const counter = e.invitees_counter as { limit: number };
    const invitee = counter.limit === 1 ? o.invitees[String(e.uri)]?.[0] : undefined;
    const cancellation = e.cancellation as Rec | undefined;
    const membership = (e.event_memberships as Rec[])[0]!;
    return {
      external_id: uuidOf(e.uri),
      patient_external_id: invitee ? String(invitee.email).toLowerCase() : null,
      practitioner_external_id: uuidOf(membership.user),
      appointment_type_external_id: uuidOf(e.event_type),
      appointment_type: types.get(uuidOf(e.event_type))?.name ?? null,
      starts_at: iso(e.start_time),
      ends_at: iso(e.end_time),
      status: e.status === 'canceled' ? 'cancelled' : invitee?.no_show ? 'did_not_arrive' : 'booked',
      cancelled_at: iso(cancellation?.created_at),
      cancellation_reason: blank(cancellation?.reason) ?? null,
      notes: e.meeting_notes_plain ?? null,
      linked: invitee !== undefined,
    };
  });
  // One identity per lowercased email: the invitee updated last wins (ties: any of them).
  const byEmail = new Map<string, Rec[]>();
  for (const list of Object.values(o.invitees))
    for (const i of list) {
      const k = String(i.email).toLowerCase();
      const best = byEmail.get(k);
      if (!best || String(i.updated_at) > String(best[0]!.updated_at)) byEmail.set(k, [i]);
      else if (String(i.updated_at) === String(best[0]!.updated_at)) best.push(i);
    }
  const identities = new Map(
    [...byEmail].map(([k, list]) => [
      k,
      list.map((i) => ({
        external_id: k,
        first_name: i.first_name ?? null,
        last_name: i.last_name ?? null,
        display_name: i.name,
        email: i.email,
        phone: i.text_reminder_number ?? null,
      })),
    ]),
  );
  const hosts = new Map(
    o.scheduled_events.flatMap((e) =>
      (e.event_memberships as Rec[]).map((m) => [
        uuidOf(m.user),
        { external_id: uuidOf(m.user), display_name: m.user_name },
      ]),
    ),
  );
  const appointmentTypes = o.event_types.map((t) => ({
    external_id: uuidOf(t.uri),
    name: t.name,
    duration_minutes: t.duration,
    archived_at: t.active ? null : iso(t.updated_at),
  }));
  return { appointments, identities, hosts, appointmentTypes };
}

describe('Calendly connector against the simulator (embedded)', () => {
  let t: TestDb;
  let sim: CalendlySim;
  beforeAll(async () => {
    t = await openTestDb('embedded');
    sim = await startCalendly({ orgs: [{ token: TOKEN }], seed: 11, scale: 1, now: '2026-11-01T00:00:00Z' });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  async function dbState(orgId: string) {
    const q = t.db.query.bind(t.db);
    const appts = await q<Rec>(
      `select external_id, patient_external_id, practitioner_external_id, appointment_type_external_id, appointment_type,
              starts_at, ends_at, status, cancelled_at, cancellation_reason, notes, patient_id
       from appointments where organization_id = ? and source = 'calendly' order by external_id`,
      [orgId],
    );
    const ids = await q<Rec>(
      `select external_id, first_name, last_name, display_name, email, phone from patient_identities
       where organization_id = ? and source = 'calendly' order by external_id`,
      [orgId],
    );
    const hosts = await q<Rec>(
      `select external_id, display_name from practitioners where organization_id = ? and source = 'calendly' order by external_id`,
      [orgId],
    );
    const types = await q<Rec>(
      `select external_id, name, duration_minutes, archived_at from appointment_types
       where organization_id = ? and source = 'calendly' order by external_id`,
      [orgId],
    );
    return {
      appointments: new Map(
        appts.map((a) => [
          String(a.external_id),
          {
            ...a,
            patient_id: a.patient_id,
            starts_at: iso(a.starts_at),
            ends_at: iso(a.ends_at),
            cancelled_at: iso(a.cancelled_at),
          },
        ]),
      ),
      identities: new Map(ids.map((i) => [String(i.external_id), i])),
      hosts,
      types: types.map((x) => ({ ...x, archived_at: iso(x.archived_at) })),
      count: appts.length,
    };
  }

  /**
   * Rows that differ from a snapshot: appointment ids and identity keys (counts, practitioners and appointment types
   * must match exactly).
   */
  async function compare(orgId: string, snap: Org): Promise<{ appointments: string[]; identities: string[] }> {
    const want = expected(snap);
    const got = await dbState(orgId);
    expect(got.count).toBe(want.appointments.length);
    expect(got.types).toEqual([...want.appointmentTypes].sort((a, b) => a.external_id.localeCompare(b.external_id)));
    expect(got.hosts).toEqual([...want.hosts.values()].sort((a, b) => a.external_id.localeCompare(b.external_id)));
    expect(got.identities.size).toBe(want.identities.size);
    const identities = [...want.identities]
      .filter(([k, options]) => !options.some((o) => JSON.stringify(o) === JSON.stringify(got.identities.get(k))))
      .map(([k]) => k);
    const appointments: string[] = [];
    for (const { linked, ...a } of want.appointments) {
      const row = got.appointments.get(a.external_id);
      expect(row, `appointment ${a.external_id}`).toBeDefined();
      const { patient_id, ...fields } = row!;
      if (JSON.stringify(fields) !== JSON.stringify(a)) appointments.push(a.external_id);
      // One-on-one appointments are linked to the unified patient (relink at the end of the run).
      expect(patient_id !== null, `patient link of ${a.external_id}`).toBe(linked);
    }
    return { appointments, identities };
  }

  const none = { appointments: [], identities: [] };

  it('mirrors the simulator; an incremental run reads invitees of changed events only; a full refresh closes the no-show gap', async () => {
    const org = sim.snapshot().orgs[0]!;
    const r = connectorRunner(
      t.db,
      'org_calendly_e2e',
      {
        connector: 'calendly',
        config: { base_url: sim.url, organization: org.organization },
        secrets: { api_token: '${CALENDLY_TOKEN}' },
      },
      { CALENDLY_TOKEN: TOKEN },
    );
    const first = await r.sync();
    expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
    expect(await compare(r.org.id, org)).toEqual(none);
    const eventsBefore = org.scheduled_events.length;
    const cursorBefore = org.scheduled_events
      .map((e) => String(e.updated_at))
      .sort()
      .at(-1)!;
    expect(sim.requests.filter((q) => q.split('?')[0]!.endsWith('/invitees')).length, 'first sync: every event').toBe(
      eventsBefore,
    );

    // Changes of every kind, then one incremental run.
    const kinds: Record<string, number> = {};
    let noShows: string[] = [];
    for (
      let i = 0;
      i < 10 && !['booked', 'canceled', 'rescheduled', 'no_show', 'group_joined'].every((k) => kinds[k]);
      i++
    ) {
      const m = sim.mutate(4);
      for (const [k, v] of Object.entries(m.counts)) kinds[k] = (kinds[k] ?? 0) + v;
      noShows = [...noShows, ...m.changes.filter((c) => c.action === 'no_show').map((c) => c.event)];
    }
    expect(Object.keys(kinds).sort()).toEqual(['booked', 'canceled', 'group_joined', 'no_show', 'rescheduled']);
    sim.resetStats();
    const inc = await r.sync();
    expect(inc.status, JSON.stringify(inc.streams)).toBe('succeeded');

    const after = sim.snapshot().orgs[0]!;
    const changed = after.scheduled_events.filter((e) => String(e.updated_at) > cursorBefore).map((e) => uuidOf(e.uri));
    const pages = Math.ceil(after.scheduled_events.length / 100);
    const paths = sim.requests.map((q) => q.split(' ')[1]!.split('?')[0]!);
    expect(paths.filter((p) => p === '/event_types')).toHaveLength(1);
    expect(paths.filter((p) => p === '/scheduled_events')).toHaveLength(pages);
    expect(
      paths
        .filter((p) => p.endsWith('/invitees'))
        .map((p) => p.split('/')[2])
        .sort(),
    ).toEqual([...changed].sort());
    expect(paths.length).toBe(1 + pages + changed.length);
    expect(changed.length).toBeGreaterThan(0);
    expect(sim.stats.rateLimited).toBe(0);

    // Equal to what an incremental run can see: the simulator, with the invitees of unchanged events as they were
    // at the first sync. Against the simulator itself the difference is exactly the documented limit: no-shows
    // marked on events that did not otherwise change (their appointment, and the identity when that booking is now
    // the person's newest).
    const gap = [...new Set(noShows)].filter((e) => !changed.includes(e));
    expect(gap.length, 'a no-show on an unchanged event happened').toBeGreaterThan(0);
    const seen = {
      ...after,
      invitees: Object.fromEntries(
        Object.entries(after.invitees).map(([uri, list]) => [
          uri,
          gap.includes(uuidOf(uri)) ? org.invitees[uri]! : list,
        ]),
      ),
    };
    expect(await compare(r.org.id, seen)).toEqual(none);
    const truth = await compare(r.org.id, after);
    expect(truth.appointments.sort()).toEqual(gap.sort());
    const gapEmails = new Set(
      gap.flatMap((e) => after.invitees[`${sim.url}/scheduled_events/${e}`]!.map((i) => String(i.email).toLowerCase())),
    );
    expect(truth.identities.filter((k) => !gapEmails.has(k))).toEqual([]);

    const full = await r.sync({ fullRefresh: true });
    expect(full.status, JSON.stringify(full.streams)).toBe('succeeded');
    expect(await compare(r.org.id, sim.snapshot().orgs[0]!)).toEqual(none);
  }, 60_000);
});
