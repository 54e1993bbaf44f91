/**
 * Calendly's data for one organization: hosts (users), event types, scheduled events and their invitees, generated
 * deterministically from a seed and moved forward by `mutate()`. Shapes and behaviour follow README.md beside this
 * file (API v2, https://developer.calendly.com/api-docs); times are kept in ms and rendered by server.ts.
 */
import { generatePeople, type Person, tenantProfile } from '../common/people.ts';
import { type Rng, rngFor } from '../common/prng.ts';
import { DAY, HOUR, MINUTE, SimClock } from '../common/time.ts';

export interface CalendlyOrgConfig {
  /** The personal access token (or OAuth access token) the organization's owner uses. */
  token: string;
}

export interface CaUser {
  uuid: string;
  name: string;
  email: string;
  slug: string;
  timezone: string;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface CaEventType {
  uuid: string;
  name: string;
  slug: string;
  duration: number;
  kind: 'solo' | 'group';
  /** Invitees per event (1 for one-on-one). */
  limit: number;
  active: boolean;
  color: string;
  ownerIndex: number;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface CaCancellation {
  canceledBy: string;
  reason: string | null;
  cancelerType: 'invitee' | 'host';
  createdAtMs: number;
}

export interface CaInvitee {
  uuid: string;
  personIdx: number;
  name: string;
  firstName: string | null;
  lastName: string | null;
  email: string;
  textReminderNumber: string | null;
  timezone: string;
  status: 'active' | 'canceled';
  cancellation: CaCancellation | null;
  noShow: { uuid: string; createdAtMs: number } | null;
  rescheduled: boolean;
  oldInvitee: { eventUuid: string; uuid: string } | null;
  newInvitee: { eventUuid: string; uuid: string } | null;
  answers: Array<{ question: string; answer: string; position: number }>;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface CaEvent {
  uuid: string;
  typeIndex: number;
  hostIndex: number;
  startMs: number;
  endMs: number;
  status: 'active' | 'canceled';
  cancellation: CaCancellation | null;
  location: Record<string, unknown>;
  notes: string | null;
  invitees: CaInvitee[];
  createdAtMs: number;
  updatedAtMs: number;
}

export interface CalendlyOrg {
  index: number;
  token: string;
  uuid: string;
  name: string;
  timezone: string;
  users: CaUser[];
  eventTypes: CaEventType[];
  events: CaEvent[];
  people: Person[];
}

export type CalendlyMutationAction = 'booked' | 'canceled' | 'rescheduled' | 'no_show' | 'group_joined';

export interface CalendlyMutationSummary {
  steps: number;
  now: string;
  counts: Partial<Record<CalendlyMutationAction, number>>;
  /** Every change: the event (and invitee) it touched. */
  changes: Array<{ action: CalendlyMutationAction; event: string; invitee?: string }>;
}

const TYPES: ReadonlyArray<{ name: string; duration: number; kind: 'solo' | 'group'; limit: number; color: string }> = [
  { name: 'Initial Consultation', duration: 60, kind: 'solo', limit: 1, color: '#0069ff' },
  { name: 'Follow-up Appointment', duration: 30, kind: 'solo', limit: 1, color: '#8247f5' },
  { name: 'Telehealth Check-in', duration: 15, kind: 'solo', limit: 1, color: '#17e885' },
  { name: 'Reformer Pilates Class', duration: 55, kind: 'group', limit: 6, color: '#ff4f00' },
];

const HOSTS = ['Dr Hana Okafor', 'Liam Brennan', 'Priya Raman'];

const CANCEL_REASONS = ['Feeling better', 'Work came up', 'Sick', 'Need to reschedule', ''];

const slugify = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/(^-|-$)/g, '');

export class CalendlyModel {
  readonly clock: SimClock;
  readonly orgs: CalendlyOrg[];
  private mutations = 0;

  constructor(readonly opts: { seed: number; scale: number; nowMs: number; orgs: CalendlyOrgConfig[] }) {
    this.clock = new SimClock(opts.nowMs);
    this.orgs = opts.orgs.map((o, i) => this.generate(i, o));
  }

  private generate(index: number, cfg: CalendlyOrgConfig): CalendlyOrg {
    const { seed, scale, nowMs } = this.opts;
    const rng = rngFor(seed, 'calendly-org', index);
    const profile = tenantProfile(index);
    const born = nowMs - 400 * DAY;
    const users: CaUser[] = HOSTS.map((name) => {
      const first = (name.split(' ').at(-2) ?? name).toLowerCase();
      const created = born + rng.int(0, 30) * DAY;
      return {
        uuid: rng.uuid(),
        name,
        email: `${first}.${slugify(name.split(' ').at(-1) ?? '')}@${slugify(profile.name)}.example`,
        slug: slugify(name),
        timezone: profile.timeZone,
        createdAtMs: created,
        updatedAtMs: created + rng.int(1, 200) * DAY,
      };
    });
    const eventTypes: CaEventType[] = TYPES.map((t, i) => {
      const created = born + rng.int(1, 60) * DAY;
      return {
        uuid: rng.uuid(),
        name: t.name,
        slug: slugify(t.name),
        duration: t.duration,
        kind: t.kind,
        limit: t.limit,
        // One retired type: still on past events, listed with active=false.
        active: i !== 2,
        color: t.color,
        ownerIndex: i % users.length,
        createdAtMs: created,
        updatedAtMs: created + rng.int(1, 100) * DAY,
      };
    });
    const people = generatePeople(seed, index, Math.max(8, Math.round(30 * scale)), nowMs).filter(
      (p) => p.email !== null,
    );
    const org: CalendlyOrg = {
      index,
      token: cfg.token,
      uuid: rng.uuid(),
      name: profile.name,
      timezone: profile.timeZone,
      users,
      eventTypes,
      events: [],
      people,
    };
    // History: bookings made over the last 60 days for slots from 45 days ago to 30 days ahead.
    const count = Math.max(10, Math.round(50 * scale));
    for (let i = 0; i < count; i++) {
      const r = rngFor(seed, 'calendly-event', index, i);
      const createdAt = nowMs - r.int(2, 60 * 24) * HOUR - r.int(0, 59) * MINUTE;
      const start = this.slot(r, Math.max(createdAt + 2 * HOUR, nowMs - 45 * DAY), nowMs + 30 * DAY);
      const ev = this.book(org, r, createdAt, start, r.chance(0.2) ? 3 : r.int(0, 1), false);
      if (ev.startMs < nowMs && r.chance(0.1) && eventTypes[ev.typeIndex]!.limit === 1)
        this.markNoShow(ev.invitees[0]!, ev.endMs + r.int(1, 48) * HOUR, r);
      else if (r.chance(0.15))
        this.cancel(org, ev, Math.max(createdAt + MINUTE, Math.min(nowMs - MINUTE, ev.startMs - HOUR)), r);
    }
    return org;
  }

  /** A start time on a 15-minute grid during clinic hours (UTC here; only the instant matters). */
  private slot(r: Rng, fromMs: number, toMs: number): number {
    const t = fromMs + Math.floor(r.next() * Math.max(HOUR, toMs - fromMs));
    return Math.floor(t / (15 * MINUTE)) * 15 * MINUTE;
  }

  private invitee(org: CalendlyOrg, r: Rng, ev: CaEvent, atMs: number, personIdx?: number): CaInvitee {
    const p = org.people[personIdx ?? r.int(0, org.people.length - 1)]!;
    // Event types with separate name fields fill first_name/last_name; the others only `name` (docs: Invitee).
    const separate = ev.typeIndex % 2 === 0;
    const name = r.chance(0.15) ? `${p.firstName} ${p.lastName}`.toLowerCase() : `${p.firstName} ${p.lastName}`;
    return {
      uuid: r.uuid(),
      personIdx: p.idx,
      name,
      firstName: separate ? p.firstName : null,
      lastName: separate ? p.lastName : null,
      // Typed by the invitee at every booking: the case varies, the address does not.
      email: r.chance(0.2) ? (p.emailAsTyped ?? p.email!) : p.email!,
      textReminderNumber: p.mobile && r.chance(0.6) ? p.mobile.e164 : null,
      timezone: org.timezone,
      status: 'active',
      cancellation: null,
      noShow: null,
      rescheduled: false,
      oldInvitee: null,
      newInvitee: null,
      answers: r.chance(0.5)
        ? [
            {
              question: 'What would you like to discuss?',
              answer: r.pick(['Lower back pain', 'Knee rehab', 'Shoulder', 'Review']),
              position: 0,
            },
          ]
        : [],
      createdAtMs: atMs,
      updatedAtMs: atMs,
    };
  }

  /** A booking: a new event (or a seat in an upcoming group class) with its invitee. */
  private book(org: CalendlyOrg, r: Rng, atMs: number, startMs: number, typeIndex: number, join: boolean): CaEvent {
    const type = org.eventTypes[typeIndex]!;
    if (join && type.limit > 1) {
      const open = org.events.find(
        (e) =>
          e.typeIndex === typeIndex &&
          e.status === 'active' &&
          e.startMs > atMs &&
          e.invitees.filter((i) => i.status === 'active').length < type.limit,
      );
      if (open) {
        open.invitees.push(this.invitee(org, r, open, atMs));
        open.updatedAtMs = atMs;
        return open;
      }
    }
    const ev: CaEvent = {
      uuid: r.uuid(),
      typeIndex,
      hostIndex: type.kind === 'group' ? type.ownerIndex : r.int(0, org.users.length - 1),
      startMs,
      endMs: startMs + type.duration * MINUTE,
      status: 'active',
      cancellation: null,
      location:
        typeIndex === 2
          ? { type: 'zoom', status: 'pushed', join_url: `https://us02web.zoom.us/j/${r.digits(11)}` }
          : { type: 'physical', location: `${org.name}, ${tenantProfile(org.index).city}` },
      notes: r.chance(0.2) ? 'Please bring any scans or referral letters.' : null,
      invitees: [],
      createdAtMs: atMs,
      updatedAtMs: atMs,
    };
    ev.invitees.push(this.invitee(org, r, ev, atMs));
    if (type.limit > 1) for (let k = r.int(1, 3); k > 0; k--) ev.invitees.push(this.invitee(org, r, ev, atMs));
    org.events.push(ev);
    return ev;
  }

  /**
   * A one-on-one invitee's cancellation cancels the event (Calendly: "Cancel Event"); a group seat's cancellation
   * cancels the invitee only. Either way the event's invitees_counter, hence updated_at, changes.
   */
  private cancel(org: CalendlyOrg, ev: CaEvent, atMs: number, r: Rng, invitee?: CaInvitee): CaInvitee {
    const type = org.eventTypes[ev.typeIndex]!;
    const who = invitee ?? ev.invitees.find((i) => i.status === 'active') ?? ev.invitees[0]!;
    const byHost = r.chance(0.2);
    const c: CaCancellation = {
      canceledBy: byHost ? org.users[ev.hostIndex]!.name : who.name,
      reason: r.pick(CANCEL_REASONS) || null,
      cancelerType: byHost ? 'host' : 'invitee',
      createdAtMs: atMs,
    };
    who.status = 'canceled';
    who.cancellation = c;
    who.updatedAtMs = atMs;
    if (type.limit === 1) {
      ev.status = 'canceled';
      ev.cancellation = c;
    }
    ev.updatedAtMs = atMs;
    return who;
  }

  /** Marking a no-show touches the invitee only (the event resource carries no no-show field). */
  private markNoShow(inv: CaInvitee, atMs: number, r: Rng): void {
    inv.noShow = { uuid: r.uuid(), createdAtMs: atMs };
    inv.updatedAtMs = atMs;
  }

  mutate(steps = 1): CalendlyMutationSummary {
    const summary: CalendlyMutationSummary = { steps, now: '', counts: {}, changes: [] };
    for (let s = 0; s < steps; s++) {
      const n = this.mutations++;
      for (const org of this.orgs) {
        const r = rngFor(this.opts.seed, 'calendly-mutate', org.index, n);
        const now = this.clock.advance(r.int(1, 9) * MINUTE + r.int(0, 999));
        const action = r.weighted<CalendlyMutationAction>([
          ['booked', 40],
          ['canceled', 20],
          ['rescheduled', 15],
          ['no_show', 15],
          ['group_joined', 10],
        ]);
        const done = this.apply(org, r, now, action);
        if (done) {
          summary.counts[done.action] = (summary.counts[done.action] ?? 0) + 1;
          summary.changes.push(done);
        }
      }
    }
    summary.now = new Date(this.clock.nowMs).toISOString();
    return summary;
  }

  private apply(
    org: CalendlyOrg,
    r: Rng,
    now: number,
    action: CalendlyMutationAction,
  ): CalendlyMutationSummary['changes'][number] | undefined {
    const oneOnOne = (e: CaEvent) => org.eventTypes[e.typeIndex]!.limit === 1;
    const upcoming = org.events.filter((e) => e.status === 'active' && e.startMs > now + HOUR && oneOnOne(e));
    switch (action) {
      case 'booked':
      case 'group_joined': {
        const typeIndex = action === 'group_joined' ? 3 : r.pick([0, 1, 1]);
        const ev = this.book(org, r, now, this.slot(r, now + 3 * HOUR, now + 21 * DAY), typeIndex, true);
        return { action, event: ev.uuid, invitee: ev.invitees.at(-1)!.uuid };
      }
      case 'canceled': {
        if (!upcoming.length) return undefined;
        const ev = r.pick(upcoming);
        return { action, event: ev.uuid, invitee: this.cancel(org, ev, now, r).uuid };
      }
      case 'rescheduled': {
        // Calendly's reschedule cancels the old invitee (rescheduled: true, new_invitee) and books a new event
        // whose invitee points back (old_invitee).
        if (!upcoming.length) return undefined;
        const old = r.pick(upcoming);
        const oldInv = old.invitees[0]!;
        const next = this.book(org, r, now, this.slot(r, now + 3 * HOUR, now + 21 * DAY), old.typeIndex, false);
        const nextInv = next.invitees[0]!;
        const person = org.people.find((p) => p.idx === oldInv.personIdx)!;
        Object.assign(nextInv, {
          personIdx: oldInv.personIdx,
          name: oldInv.name,
          firstName: oldInv.firstName,
          lastName: oldInv.lastName,
          email: oldInv.email,
          textReminderNumber: oldInv.textReminderNumber ?? (person.mobile ? person.mobile.e164 : null),
          oldInvitee: { eventUuid: old.uuid, uuid: oldInv.uuid },
        });
        this.cancel(org, old, now, r, oldInv);
        oldInv.cancellation = {
          ...oldInv.cancellation!,
          cancelerType: 'invitee',
          canceledBy: oldInv.name,
          reason: null,
        };
        old.cancellation = oldInv.cancellation;
        oldInv.rescheduled = true;
        oldInv.newInvitee = { eventUuid: next.uuid, uuid: nextInv.uuid };
        return { action, event: next.uuid, invitee: nextInv.uuid };
      }
      case 'no_show': {
        const past = org.events.filter(
          (e) => e.status === 'active' && e.endMs < now && oneOnOne(e) && e.invitees[0]!.noShow === null,
        );
        if (!past.length) return undefined;
        const ev = r.pick(past);
        this.markNoShow(ev.invitees[0]!, now, r);
        return { action, event: ev.uuid, invitee: ev.invitees[0]!.uuid };
      }
    }
  }
}
