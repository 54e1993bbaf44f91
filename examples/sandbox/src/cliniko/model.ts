/**
 * Cliniko ground truth: one practice per API-key user. Ids are 18-digit strings (int64 above 2^53),
 * family members get consecutive ids, so parsing ids as JS numbers merges different patients.
 */
import {
  clinikoPhoneText,
  clinikoStyleId,
  generatePeople,
  type Person,
  randomPhone,
  type TenantProfile,
  tenantProfile,
} from '../common/people.ts';
import { type Rng, rngFor } from '../common/prng.ts';
import { DAY, HOUR, MINUTE, SECOND, SimClock } from '../common/time.ts';

export interface ClinikoUserConfig {
  /** The API key, with or without the `-<shard>` suffix. Requests may send it either way. */
  apiKey: string;
  name?: string;
}

export interface ClUser {
  id: string;
  firstName: string;
  lastName: string;
  email: string;
  createdAtMs: number;
}

export interface ClBusiness {
  id: string;
  name: string;
  address1: string;
  city: string;
  state: string;
  postCode: string;
  countryCode: string;
  country: string;
  timeZone: string;
  timeZoneIdentifier: string;
  createdAtMs: number;
  updatedAtMs: number;
  archivedAtMs: number | null;
}

export interface ClPractitioner {
  id: string;
  active: boolean;
  title: string;
  firstName: string;
  lastName: string;
  designation: string;
  description: string;
  showInOnlineBookings: boolean;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface ClAppointmentType {
  id: string;
  name: string;
  description: string;
  durationMinutes: number;
  color: string;
  category: string;
  createdAtMs: number;
  updatedAtMs: number;
  archivedAtMs: number | null;
  telehealth: boolean;
}

export interface ClPatient {
  id: string;
  createdAtMs: number;
  updatedAtMs: number;
  archivedAtMs: number | null;
  deletedAtMs: number | null;
  title: string | null;
  firstName: string;
  lastName: string;
  preferredFirstName: string | null;
  email: string | null;
  dob: string | null;
  sex: string | null;
  genderIdentity: string | null;
  address1: string;
  city: string;
  state: string;
  postCode: string;
  countryCode: string;
  timeZone: string | null;
  phones: Array<{ number: string; phone_type: string }>;
  notes: string;
  appointmentNotes: string;
  occupation: string;
  emergencyContact: string;
  medicare: string | null;
  medicareReference: string | null;
  oldReferenceId: string | null;
  reminderType: string;
  referralSource: string | null;
  acceptedPrivacyPolicy: boolean | null;
  acceptedEmailMarketing: boolean;
  acceptedSmsMarketing: boolean;
  personIdx: number | null;
}

export interface ClAppointment {
  id: string;
  createdAtMs: number;
  updatedAtMs: number;
  startsAtMs: number;
  endsAtMs: number;
  archivedAtMs: number | null;
  cancelledAtMs: number | null;
  deletedAtMs: number | null;
  cancellationNote: string | null;
  cancellationReason: number | null;
  didNotArrive: boolean;
  patientArrived: boolean;
  patientId: string;
  practitionerId: string;
  appointmentTypeId: string;
  businessId: string;
  notes: string | null;
  bookingIpAddress: string | null;
  emailReminderSent: boolean;
  smsReminderSent: boolean;
  telehealthUrl: string | null;
  onlineBookingPolicyAccepted: boolean | null;
}

export interface ClPractice {
  index: number;
  name: string;
  /** Key as configured, and the part before the shard suffix (what identifies the user). */
  apiKey: string;
  keyCore: string;
  profile: TenantProfile;
  user: ClUser;
  businesses: ClBusiness[];
  practitioners: ClPractitioner[];
  appointmentTypes: ClAppointmentType[];
  patients: ClPatient[];
  patientsById: Map<string, ClPatient>;
  appointments: ClAppointment[];
  appointmentsById: Map<string, ClAppointment>;
  people: Person[];
  usedIds: Set<string>;
}

export const CANCELLATION_REASONS: Record<number, string> = {
  10: 'Feeling Better',
  20: 'Condition Worse',
  30: 'Sick',
  31: 'COVID-19 related',
  40: 'Away',
  50: 'Other',
  60: 'Work',
};

export interface ClinikoMutationAction {
  type:
    | 'patient_created'
    | 'patient_updated'
    | 'patient_archived'
    | 'patient_unarchived'
    | 'patient_deleted'
    | 'appointment_created'
    | 'appointment_rescheduled'
    | 'appointment_cancelled'
    | 'appointment_did_not_arrive'
    | 'appointment_arrived'
    | 'appointment_deleted';
  userIndex: number;
  id: string;
  detail?: string;
}

export interface ClinikoMutationSummary {
  step: number;
  at: string;
  actions: ClinikoMutationAction[];
  counts: Record<string, number>;
}

/** Strips a trailing shard suffix: `abc-au2` → `abc`. */
export function keyCore(apiKey: string): string {
  return apiKey.replace(/-[a-z]{2}\d{1,2}$/i, '');
}

export function keyShard(apiKey: string): string | null {
  const m = /-([a-z]{2}\d{1,2})$/i.exec(apiKey);
  return m ? (m[1] as string).toLowerCase() : null;
}

const COUNTRY_NAME: Record<string, string> = {
  AU: 'Australia',
  NZ: 'New Zealand',
  ID: 'Indonesia',
  GB: 'United Kingdom',
  US: 'United States',
};

export class ClinikoModel {
  readonly seed: number;
  readonly scale: number;
  readonly clock: SimClock;
  readonly practices: ClPractice[] = [];
  private stepNo = 0;

  constructor(opts: { seed: number; scale: number; nowMs: number; users: ClinikoUserConfig[] }) {
    this.seed = opts.seed;
    this.scale = opts.scale;
    this.clock = new SimClock(opts.nowMs);
    const cores = new Set<string>();
    opts.users.forEach((u, i) => {
      const core = keyCore(u.apiKey);
      if (cores.has(core)) throw new Error(`duplicate Cliniko API key ${u.apiKey}`);
      cores.add(core);
      this.practices.push(this.generate(i, u));
    });
  }

  get steps(): number {
    return this.stepNo;
  }

  private generate(index: number, cfg: ClinikoUserConfig): ClPractice {
    const now = this.clock.nowMs;
    const profile = tenantProfile(index);
    const rng = rngFor(this.seed, 'cl-practice', index);
    const people = generatePeople(this.seed, index, Math.max(8, Math.round(40 * this.scale)), now);
    const used = new Set<string>(people.map((p) => p.clinikoId));
    const opened = now - rng.int(900, 1400) * DAY;
    const practice: ClPractice = {
      index,
      name: cfg.name ?? profile.name,
      apiKey: cfg.apiKey,
      keyCore: keyCore(cfg.apiKey),
      profile,
      user: {
        id: clinikoStyleId(used, opened, rng),
        firstName: 'Practice',
        lastName: 'Manager',
        email: `admin@${profile.name.toLowerCase().replace(/[^a-z]+/g, '')}.example`,
        createdAtMs: opened,
      },
      businesses: [],
      practitioners: [],
      appointmentTypes: [],
      patients: [],
      patientsById: new Map(),
      appointments: [],
      appointmentsById: new Map(),
      people,
      usedIds: used,
    };
    practice.businesses.push({
      id: clinikoStyleId(used, opened, rng),
      name: profile.name,
      address1: rng.pick([
        '12 Jl. Pantai Batu Bolong',
        '88 Campbell Pde',
        '201 Ponsonby Rd',
        '310 Brunswick St',
        '45 Queen St',
      ]),
      city: profile.city,
      state: profile.state,
      postCode: profile.postCode,
      countryCode: profile.countryCode,
      country: COUNTRY_NAME[profile.countryCode] ?? profile.countryCode,
      timeZone: profile.timeZoneLabel,
      timeZoneIdentifier: profile.timeZone,
      createdAtMs: opened,
      updatedAtMs: opened + rng.int(1, 300) * DAY,
      archivedAtMs: null,
    });
    if (rng.chance(0.3)) {
      const t = opened + rng.int(100, 500) * DAY;
      practice.businesses.push({
        ...(practice.businesses[0] as ClBusiness),
        id: clinikoStyleId(used, t, rng),
        name: `${profile.name} (Mobile)`,
        address1: 'Mobile service',
        createdAtMs: t,
        updatedAtMs: t,
      });
    }
    const pracNames: Array<[string, string, string]> = [
      ['Dr', 'Hannah', 'Okafor'],
      ['', 'Ketut', 'Wirawan'],
      ['', 'Chloé', 'Martin'],
      ['', 'Ben', 'Tāwhiao'],
      ['', 'Sofia', 'Lindqvist'],
    ];
    for (let i = 0; i < 4; i++) {
      const [title, first, last] = pracNames[(i + index) % pracNames.length] as [string, string, string];
      const t = opened + i * rng.int(20, 200) * DAY;
      practice.practitioners.push({
        id: clinikoStyleId(used, t, rng),
        active: i !== 3,
        title,
        firstName: first,
        lastName: last,
        designation: rng.pick(['Physiotherapist', 'Osteopath', 'Remedial Massage Therapist', 'Exercise Physiologist']),
        description: '',
        showInOnlineBookings: i !== 3,
        createdAtMs: t,
        updatedAtMs: i === 3 ? now - rng.int(30, 200) * DAY : t + rng.int(0, 100) * DAY,
      });
    }
    const types: Array<[string, number, string, boolean]> = [
      ['Initial Consultation', 60, 'Physiotherapy', false],
      ['Follow-up', 30, 'Physiotherapy', false],
      ['Remedial Massage 60', 60, 'Massage', false],
      ['Telehealth Review', 30, 'Physiotherapy', true],
      ['Surf Fitness Assessment', 45, 'Exercise', false],
    ];
    types.forEach(([name, dur, cat, tele], i) => {
      const t = opened + i * DAY;
      practice.appointmentTypes.push({
        id: clinikoStyleId(used, t, rng),
        name,
        description: '',
        durationMinutes: dur,
        color: rng.pick(['#2dbecd', '#f5a623', '#7ed321', '#bd10e0']),
        category: cat,
        createdAtMs: t,
        updatedAtMs: t + rng.int(0, 300) * DAY,
        archivedAtMs: i === 4 ? now - rng.int(20, 120) * DAY : null,
        telehealth: tele,
      });
    });

    for (const p of people) {
      if (!p.onCliniko) continue;
      const patient = this.patientFromPerson(practice, p, rngFor(this.seed, 'cl-patient', index, p.idx));
      practice.patients.push(patient);
      practice.patientsById.set(patient.id, patient);
    }
    practice.patients.sort((a, b) => a.createdAtMs - b.createdAtMs);
    for (const patient of practice.patients) {
      const arng = rngFor(this.seed, 'cl-appts', index, patient.id);
      const n = Math.min(12, Math.floor(arng.exp(3.5)));
      for (let i = 0; i < n; i++) this.addGeneratedAppointment(practice, patient, arng);
    }
    practice.appointments.sort((a, b) => a.createdAtMs - b.createdAtMs);
    return practice;
  }

  private patientFromPerson(practice: ClPractice, p: Person, rng: Rng): ClPatient {
    const now = this.clock.nowMs;
    const phones: Array<{ number: string; phone_type: string }> = [];
    const cc = practice.profile.countryCode;
    if (p.mobile) phones.push({ phone_type: 'Mobile', number: clinikoPhoneText(p.mobile, cc, rng) });
    if (p.landline) phones.push({ phone_type: 'Home', number: clinikoPhoneText(p.landline, cc, rng) });
    if (rng.chance(0.06))
      phones.push({ phone_type: 'Work', number: clinikoPhoneText(randomPhone(rng, p.country, 'landline'), cc, rng) });
    const created = p.clinikoCreatedAtMs;
    const updated = rng.chance(0.3)
      ? Math.max(created, now - rng.int(1, 30 * 24) * HOUR)
      : Math.min(now - HOUR, created + rng.int(0, 200) * DAY);
    // A day after registration at the earliest, and never after now.
    const later = () => Math.max(updated, Math.min(created + DAY, now - MINUTE));
    const archived = rng.chance(0.06) ? later() : null;
    const deleted = archived === null && rng.chance(0.01) ? later() : null;
    return {
      id: p.clinikoId,
      createdAtMs: created,
      updatedAtMs: Math.max(updated, archived ?? 0, deleted ?? 0, created),
      archivedAtMs: archived,
      deletedAtMs: deleted,
      title: rng.chance(0.3) ? (p.sex === 'Female' ? rng.pick(['Ms', 'Mrs', 'Miss']) : 'Mr') : null,
      firstName: p.firstName,
      lastName: p.lastName,
      preferredFirstName: p.preferredName,
      email: p.emailAsTyped,
      dob: p.dob,
      sex: rng.chance(0.9) ? p.sex : null,
      genderIdentity: null,
      address1: p.address1,
      city: p.city,
      state: p.state,
      postCode: p.postCode,
      countryCode: p.country === 'UK' ? 'GB' : p.country,
      timeZone: rng.chance(0.5) ? practice.profile.timeZone : null,
      phones,
      notes: rng.chance(0.2)
        ? rng.pick(['Prefers afternoon appointments', 'Surfer, left shoulder history', 'Pays by card'])
        : '',
      appointmentNotes: '',
      occupation: p.occupation,
      emergencyContact: rng.chance(0.3) ? `Partner ${rng.pick(['Sam', 'Alex', 'Jo'])} ${p.lastName}` : '',
      medicare: p.country === 'AU' && rng.chance(0.4) ? rng.digits(10) : null,
      medicareReference: null,
      oldReferenceId: rng.chance(0.15) ? `LEGACY-${rng.digits(5)}` : null,
      reminderType: rng.pick(['SMS', 'Email', 'SMS & Email', 'None']),
      referralSource: rng.chance(0.4) ? rng.pick(['Google', 'Instagram', 'Friend', 'GP referral', 'Walk-in']) : null,
      acceptedPrivacyPolicy: rng.chance(0.8) ? true : null,
      acceptedEmailMarketing: rng.chance(0.4),
      acceptedSmsMarketing: rng.chance(0.5),
      personIdx: p.idx,
    };
  }

  private pickTypeAndPractitioner(practice: ClPractice, rng: Rng, activeOnly: boolean) {
    const types = practice.appointmentTypes.filter((t) => t.archivedAtMs === null || !activeOnly);
    const pracs = practice.practitioners.filter((p) => p.active || !activeOnly);
    return { type: rng.pick(types), prac: rng.pick(pracs) };
  }

  private addGeneratedAppointment(practice: ClPractice, patient: ClPatient, rng: Rng): void {
    const now = this.clock.nowMs;
    const { type, prac } = this.pickTypeAndPractitioner(practice, rng, false);
    const earliest = patient.createdAtMs + HOUR;
    const latest = now + 45 * DAY;
    if (earliest >= latest) return;
    let starts = earliest + Math.floor(rng.next() * (latest - earliest));
    starts = Math.floor(starts / (15 * MINUTE)) * 15 * MINUTE;
    const created = Math.max(patient.createdAtMs, starts - rng.int(1, 30) * DAY);
    if (created >= now) return;
    const ends = starts + type.durationMinutes * MINUTE;
    const past = ends < now;
    let updated = past ? Math.min(now - MINUTE, ends + rng.int(5, 600) * MINUTE) : created + rng.int(0, 3) * DAY;
    updated = Math.min(Math.max(updated, created), now - SECOND);
    const cancelled = rng.chance(0.1)
      ? Math.min(now - MINUTE, Math.max(created + HOUR, starts - rng.int(1, 72) * HOUR))
      : null;
    const dna = past && cancelled === null && rng.chance(0.06);
    const deleted = rng.chance(0.015) ? Math.min(now - MINUTE, updated + rng.int(1, 48) * HOUR) : null;
    const appt: ClAppointment = {
      id: clinikoStyleId(practice.usedIds, created, rng),
      createdAtMs: created,
      updatedAtMs: Math.max(updated, cancelled ?? 0, deleted ?? 0),
      startsAtMs: starts,
      endsAtMs: ends,
      archivedAtMs: null,
      cancelledAtMs: cancelled,
      deletedAtMs: deleted,
      cancellationNote: cancelled
        ? rng.pick(['', 'Called to cancel', 'Cancelled via SMS reply', 'Flight changed'])
        : null,
      cancellationReason: cancelled ? rng.pick([10, 20, 30, 31, 40, 50, 60]) : null,
      didNotArrive: dna,
      patientArrived: past && cancelled === null && !dna,
      patientId: patient.id,
      practitionerId: prac.id,
      appointmentTypeId: type.id,
      businessId: (practice.businesses[0] as ClBusiness).id,
      notes: rng.chance(0.15) ? rng.pick(['Bring MRI', 'First visit after surgery', 'Paid deposit']) : null,
      bookingIpAddress: rng.chance(0.4) ? `203.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}` : null,
      emailReminderSent: past && rng.chance(0.6),
      smsReminderSent: past && rng.chance(0.7),
      telehealthUrl: type.telehealth ? `https://telehealth.example/${rng.hex(12)}` : null,
      onlineBookingPolicyAccepted: rng.chance(0.4) ? true : null,
    };
    practice.appointments.push(appt);
    practice.appointmentsById.set(appt.id, appt);
  }

  // ------------------------------------------------------------------ mutation

  /** Counts calls of mutate(): the server's listings are cached per version (see server.ts `list`). */
  get dataVersion(): number {
    return this.version;
  }
  private version = 0;

  mutate(steps = 1): ClinikoMutationSummary {
    this.version += 1;
    const actions: ClinikoMutationAction[] = [];
    for (let s = 0; s < steps; s++) {
      this.stepNo += 1;
      const rng = rngFor(this.seed, 'cl-mutate', this.stepNo);
      this.clock.advance(rng.int(60, 600) * SECOND);
      for (const practice of this.practices) {
        // Several changes share one second: the page-boundary / same-second trap.
        const burstAt = this.clock.nowMs;
        const n = rng.int(1, 4) + Math.floor(Math.log10(Math.max(1, this.scale)));
        for (let i = 0; i < n; i++) {
          const t = rng.chance(0.5) ? burstAt : this.clock.advance(rng.int(1, 20) * SECOND);
          const a = this.mutateOnce(practice, rng, t);
          if (a) actions.push(a);
        }
      }
    }
    const counts: Record<string, number> = {};
    for (const a of actions) counts[a.type] = (counts[a.type] ?? 0) + 1;
    return { step: this.stepNo, at: new Date(this.clock.nowMs).toISOString(), actions, counts };
  }

  private mutateOnce(practice: ClPractice, rng: Rng, t: number): ClinikoMutationAction | null {
    const live = practice.patients.filter((p) => p.deletedAtMs === null);
    const kind = rng.weighted([
      ['new_patient', 10],
      ['update_patient', 20],
      ['archive', 4],
      ['unarchive', 1],
      ['delete_patient', 0.5],
      ['book', 20],
      ['reschedule', 8],
      ['cancel', 8],
      ['dna', 5],
      ['arrived', 8],
      ['delete_appt', 3],
    ] as const);
    const ui = practice.index;
    switch (kind) {
      case 'new_patient': {
        const prng = rngFor(this.seed, 'cl-new-patient', ui, this.stepNo, practice.patients.length);
        const country = prng.weighted(practice.profile.countryMix);
        const first = prng.pick(['Mia', 'Noah', 'Zoë', 'José', 'Aroha', 'Wayan', 'Siân', 'Luca']);
        const last = prng.pick(['Nguyễn', 'Smith', "O'Neill", 'Pratama', 'Müller', 'Taylor']);
        const mobile = randomPhone(prng, country, 'mobile');
        const p: ClPatient = {
          id: clinikoStyleId(practice.usedIds, t, prng),
          createdAtMs: t,
          updatedAtMs: t,
          archivedAtMs: null,
          deletedAtMs: null,
          title: null,
          firstName: first,
          lastName: last,
          preferredFirstName: null,
          email: prng.chance(0.7)
            ? `${first
                .toLowerCase()
                .normalize('NFD')
                .replace(/[^a-z]/g, '')}.${prng.int(10, 99)}@gmail.com`
            : null,
          dob: prng.chance(0.8) ? `19${prng.int(50, 99)}-0${prng.int(1, 9)}-1${prng.int(0, 9)}` : null,
          sex: null,
          genderIdentity: null,
          address1: '',
          city: practice.profile.city,
          state: practice.profile.state,
          postCode: practice.profile.postCode,
          countryCode: country === 'UK' ? 'GB' : country,
          timeZone: null,
          phones: [{ phone_type: 'Mobile', number: clinikoPhoneText(mobile, practice.profile.countryCode, prng) }],
          notes: '',
          appointmentNotes: '',
          occupation: '',
          emergencyContact: '',
          medicare: null,
          medicareReference: null,
          oldReferenceId: null,
          reminderType: 'SMS',
          referralSource: 'Instagram',
          acceptedPrivacyPolicy: true,
          acceptedEmailMarketing: false,
          acceptedSmsMarketing: true,
          personIdx: null,
        };
        practice.patients.push(p);
        practice.patientsById.set(p.id, p);
        return { type: 'patient_created', userIndex: ui, id: p.id };
      }
      case 'update_patient': {
        if (live.length === 0) return null;
        const p = rng.pick(live);
        const what = rng.pick(['phone', 'email', 'address', 'notes'] as const);
        if (what === 'phone') {
          const country = rng.weighted(practice.profile.countryMix);
          const num = clinikoPhoneText(randomPhone(rng, country, 'mobile'), practice.profile.countryCode, rng);
          const mobile = p.phones.find((x) => x.phone_type === 'Mobile');
          if (mobile) mobile.number = num;
          else p.phones.unshift({ phone_type: 'Mobile', number: num });
        } else if (what === 'email')
          p.email = `${p.firstName
            .toLowerCase()
            .normalize('NFD')
            .replace(/[^a-z]/g, '')}.${rng.int(100, 999)}@outlook.com`;
        else if (what === 'address')
          p.address1 = `${rng.int(1, 99)} ${rng.pick(['Jl. Raya Canggu', 'Bondi Rd', 'Karangahape Rd', 'Smith St'])}`;
        else p.notes = `${p.notes} Updated ${new Date(t).toISOString().slice(0, 10)}.`.trim();
        p.updatedAtMs = t;
        return { type: 'patient_updated', userIndex: ui, id: p.id, detail: what };
      }
      case 'archive': {
        const c = live.filter((p) => p.archivedAtMs === null);
        if (c.length === 0) return null;
        const p = rng.pick(c);
        p.archivedAtMs = t;
        p.updatedAtMs = t;
        return { type: 'patient_archived', userIndex: ui, id: p.id };
      }
      case 'unarchive': {
        const c = live.filter((p) => p.archivedAtMs !== null);
        if (c.length === 0) return null;
        const p = rng.pick(c);
        p.archivedAtMs = null;
        p.updatedAtMs = t;
        return { type: 'patient_unarchived', userIndex: ui, id: p.id };
      }
      case 'delete_patient': {
        if (live.length === 0) return null;
        const p = rng.pick(live);
        p.deletedAtMs = t;
        p.updatedAtMs = t;
        return { type: 'patient_deleted', userIndex: ui, id: p.id };
      }
      case 'book': {
        const c = live.filter((p) => p.archivedAtMs === null);
        if (c.length === 0) return null;
        const patient = rng.pick(c);
        const { type, prac } = this.pickTypeAndPractitioner(practice, rng, true);
        const starts = Math.floor((t + rng.int(1, 21) * DAY) / (15 * MINUTE)) * 15 * MINUTE;
        const a: ClAppointment = {
          id: clinikoStyleId(practice.usedIds, t, rng),
          createdAtMs: t,
          updatedAtMs: t,
          startsAtMs: starts,
          endsAtMs: starts + type.durationMinutes * MINUTE,
          archivedAtMs: null,
          cancelledAtMs: null,
          deletedAtMs: null,
          cancellationNote: null,
          cancellationReason: null,
          didNotArrive: false,
          patientArrived: false,
          patientId: patient.id,
          practitionerId: prac.id,
          appointmentTypeId: type.id,
          businessId: (practice.businesses[0] as ClBusiness).id,
          notes: null,
          bookingIpAddress: rng.chance(0.5) ? `203.0.113.${rng.int(1, 254)}` : null,
          emailReminderSent: false,
          smsReminderSent: false,
          telehealthUrl: type.telehealth ? `https://telehealth.example/${rng.hex(12)}` : null,
          onlineBookingPolicyAccepted: rng.chance(0.5) ? true : null,
        };
        practice.appointments.push(a);
        practice.appointmentsById.set(a.id, a);
        return { type: 'appointment_created', userIndex: ui, id: a.id };
      }
      case 'reschedule':
      case 'cancel': {
        const c = practice.appointments.filter(
          (a) => a.deletedAtMs === null && a.cancelledAtMs === null && a.startsAtMs > t,
        );
        if (c.length === 0) return null;
        const a = rng.pick(c);
        if (kind === 'cancel') {
          a.cancelledAtMs = t;
          a.cancellationReason = rng.pick([10, 20, 30, 40, 50, 60]);
          a.cancellationNote = rng.pick(['', 'Cancelled via SMS reply', 'Called the clinic']);
        } else {
          const dur = a.endsAtMs - a.startsAtMs;
          a.startsAtMs =
            Math.floor((a.startsAtMs + rng.int(-3, 7) * DAY + rng.int(1, 8) * HOUR) / (15 * MINUTE)) * 15 * MINUTE;
          if (a.startsAtMs < t) a.startsAtMs += 7 * DAY;
          a.endsAtMs = a.startsAtMs + dur;
        }
        a.updatedAtMs = t;
        return {
          type: kind === 'cancel' ? 'appointment_cancelled' : 'appointment_rescheduled',
          userIndex: ui,
          id: a.id,
        };
      }
      case 'dna':
      case 'arrived': {
        const c = practice.appointments.filter(
          (a) =>
            a.deletedAtMs === null &&
            a.cancelledAtMs === null &&
            a.endsAtMs < t &&
            !a.didNotArrive &&
            !a.patientArrived,
        );
        if (c.length === 0) return null;
        const a = rng.pick(c);
        if (kind === 'dna') a.didNotArrive = true;
        else a.patientArrived = true;
        a.updatedAtMs = t;
        return { type: kind === 'dna' ? 'appointment_did_not_arrive' : 'appointment_arrived', userIndex: ui, id: a.id };
      }
      case 'delete_appt': {
        const c = practice.appointments.filter((a) => a.deletedAtMs === null);
        if (c.length === 0) return null;
        const a = rng.pick(c);
        a.deletedAtMs = t;
        a.updatedAtMs = t;
        return { type: 'appointment_deleted', userIndex: ui, id: a.id };
      }
    }
  }
}
