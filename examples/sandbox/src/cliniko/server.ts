import { FaultController } from '../common/faults.ts';
import { FixedWindowLimiter } from '../common/ratelimit.ts';
import { track } from '../common/registry.ts';
import {
  html,
  json,
  NGINX_502,
  NGINX_503,
  readJson,
  SimHost,
  type SimRequest,
  type SimResponse,
  text,
} from '../common/server.ts';
import { isoSeconds, MINUTE, resolveNow } from '../common/time.ts';
import type { BaseSim, RateLimitOptions, SimOptions } from '../types.ts';
import {
  CANCELLATION_REASONS,
  type ClAppointment,
  type ClAppointmentType,
  type ClBusiness,
  ClinikoModel,
  type ClinikoMutationSummary,
  type ClinikoUserConfig,
  type ClPatient,
  type ClPractice,
  type ClPractitioner,
  keyCore,
  keyShard,
} from './model.ts';
import { type ListSpec, pageLinks, pageOf, QueryError, type Schema, selectRows } from './query.ts';

export interface ClinikoOptions extends SimOptions {
  users: ClinikoUserConfig[];
  /** 200 requests per minute per user. */
  rateLimit?: RateLimitOptions;
  /** Shard this sim plays (keys with another suffix are refused). Default `au1`. */
  shard?: string;
}

export interface ClinikoSnapshot {
  platform: 'cliniko';
  now: string;
  users: Array<{
    index: number;
    name: string;
    user: Record<string, unknown>;
    businesses: Record<string, unknown>[];
    /** Active and inactive. */
    practitioners: Record<string, unknown>[];
    /** Including archived. */
    appointment_types: Record<string, unknown>[];
    /** Including archived and deleted (full shape, deleted_at set). */
    patients: Record<string, unknown>[];
    /** Including cancelled and deleted. */
    individual_appointments: Record<string, unknown>[];
  }>;
}

export interface ClinikoSim extends BaseSim<ClinikoSnapshot, ClinikoMutationSummary> {
  readonly model: ClinikoModel;
}

const UA_EMAIL = /[^\s@()<>]+@[^\s@()<>]+\.[a-z]{2,}/i;

export const CLINIKO_404_HTML = `<!DOCTYPE html>
<html>
<head>
  <title>The page you were looking for doesn't exist (404)</title>
  <meta name="viewport" content="width=device-width,initial-scale=1">
</head>
<body>
  <div class="dialog">
    <h1>The page you were looking for doesn't exist.</h1>
    <p>You may have mistyped the address or the page may have moved.</p>
  </div>
</body>
</html>
`;

const RAILS_500_HTML = `<!DOCTYPE html>
<html>
<head><title>We're sorry, but something went wrong (500)</title></head>
<body><div class="dialog"><h1>We're sorry, but something went wrong.</h1></div></body>
</html>
`;

const ts = (ms: number | null) => (ms === null ? null : isoSeconds(ms));

export async function startCliniko(opts: ClinikoOptions): Promise<ClinikoSim> {
  if (!opts.users || opts.users.length === 0) throw new Error('startCliniko needs at least one user');
  const shard = (opts.shard ?? 'au1').toLowerCase();
  const model = new ClinikoModel({
    seed: opts.seed ?? 1,
    scale: opts.scale ?? 1,
    nowMs: resolveNow(opts.now),
    users: opts.users,
  });
  const limiter = new FixedWindowLimiter(
    opts.rateLimit?.limit ?? 200,
    opts.rateLimit?.windowMs ?? MINUTE,
    opts.rateLimit?.enabled ?? true,
  );
  let base = '';
  const link = (path: string) => ({ links: { self: `${base}${path}` } });

  // ---------------------------------------------------------------- shapes

  const patientJson = (p: ClPatient): Record<string, unknown> => ({
    id: p.id,
    accepted_email_marketing: p.acceptedEmailMarketing,
    accepted_privacy_policy: p.acceptedPrivacyPolicy,
    accepted_sms_marketing: p.acceptedSmsMarketing,
    address_1: p.address1,
    address_2: '',
    address_3: '',
    appointment_notes: p.appointmentNotes,
    archived_at: ts(p.archivedAtMs),
    city: p.city,
    country: p.countryCode,
    country_code: p.countryCode,
    created_at: ts(p.createdAtMs),
    custom_fields: null,
    date_of_birth: p.dob,
    deleted_at: ts(p.deletedAtMs),
    dva_card_number: null,
    email: p.email,
    emergency_contact: p.emergencyContact,
    first_name: p.firstName,
    gender: p.sex,
    gender_identity: p.genderIdentity,
    invoice_default_to: null,
    invoice_email: null,
    invoice_extra_information: null,
    label: `${p.firstName} ${p.lastName}`,
    last_name: p.lastName,
    medicare: p.medicare,
    medicare_reference_number: p.medicareReference,
    notes: p.notes,
    occupation: p.occupation,
    old_reference_id: p.oldReferenceId,
    patient_phone_numbers: p.phones.map((ph) => ({ number: ph.number, phone_type: ph.phone_type })),
    post_code: p.postCode,
    preferred_first_name: p.preferredFirstName,
    pronouns: null,
    receives_confirmation_emails: p.reminderType !== 'None',
    referral_source: p.referralSource,
    reminder_type: p.reminderType,
    sex: p.sex,
    state: p.state,
    time_zone: p.timeZone,
    title: p.title,
    updated_at: ts(p.updatedAtMs),
    appointments: link(`/patients/${p.id}/appointments`),
    invoices: link(`/patients/${p.id}/invoices`),
    medical_alerts: link(`/patients/${p.id}/medical_alerts`),
    links: { self: `${base}/patients/${p.id}` },
  });

  const appointmentJson = (practice: ClPractice, a: ClAppointment): Record<string, unknown> => {
    const patient = practice.patientsById.get(a.patientId);
    return {
      id: a.id,
      archived_at: ts(a.archivedAtMs),
      booking_ip_address: a.bookingIpAddress,
      cancellation_note: a.cancellationNote,
      cancellation_reason: a.cancellationReason,
      cancellation_reason_description:
        a.cancellationReason === null ? '' : (CANCELLATION_REASONS[a.cancellationReason] ?? ''),
      cancelled_at: ts(a.cancelledAtMs),
      created_at: ts(a.createdAtMs),
      deleted_at: ts(a.deletedAtMs),
      did_not_arrive: a.didNotArrive,
      email_reminder_sent: a.emailReminderSent,
      ends_at: ts(a.endsAtMs),
      has_patient_appointment_notes: false,
      invoice_status: null,
      notes: a.notes,
      online_booking_policy_accepted: a.onlineBookingPolicyAccepted,
      patient_arrived: a.patientArrived,
      patient_name: patient ? `${patient.firstName} ${patient.lastName}` : '',
      repeat_rule: null,
      sms_reminder_sent: a.smsReminderSent,
      starts_at: ts(a.startsAtMs),
      telehealth_url: a.telehealthUrl,
      treatment_note_status: null,
      updated_at: ts(a.updatedAtMs),
      appointment_type: link(`/appointment_types/${a.appointmentTypeId}`),
      business: link(`/businesses/${a.businessId}`),
      conflicts: link(`/individual_appointments/${a.id}/conflicts`),
      patient: link(`/patients/${a.patientId}`),
      practitioner: link(`/practitioners/${a.practitionerId}`),
      repeated_from: null,
      links: { self: `${base}/individual_appointments/${a.id}` },
    };
  };

  const practitionerJson = (p: ClPractitioner): Record<string, unknown> => ({
    id: p.id,
    active: p.active,
    created_at: ts(p.createdAtMs),
    description: p.description,
    designation: p.designation,
    display_name: `${p.title ? `${p.title} ` : ''}${p.firstName} ${p.lastName}`,
    first_name: p.firstName,
    label: `${p.title ? `${p.title} ` : ''}${p.firstName} ${p.lastName}`,
    last_name: p.lastName,
    show_in_online_bookings: p.showInOnlineBookings,
    title: p.title,
    updated_at: ts(p.updatedAtMs),
    appointment_types: link(`/practitioners/${p.id}/appointment_types`),
    default_appointment_type: null,
    practitioner_reference_numbers: link(`/practitioners/${p.id}/practitioner_reference_numbers`),
    user: link(`/users/${p.id}`),
    links: { self: `${base}/practitioners/${p.id}` },
  });

  const typeJson = (t: ClAppointmentType): Record<string, unknown> => ({
    id: t.id,
    archived_at: ts(t.archivedAtMs),
    category: t.category,
    color: t.color,
    created_at: ts(t.createdAtMs),
    description: t.description,
    duration_in_minutes: t.durationMinutes,
    max_attendees: 1,
    name: t.name,
    show_in_online_bookings: t.archivedAtMs === null,
    telehealth_enabled: t.telehealth,
    updated_at: ts(t.updatedAtMs),
    practitioners: link(`/appointment_types/${t.id}/practitioners`),
    links: { self: `${base}/appointment_types/${t.id}` },
  });

  const businessJson = (b: ClBusiness): Record<string, unknown> => ({
    id: b.id,
    address_1: b.address1,
    address_2: '',
    archived_at: ts(b.archivedAtMs),
    business_name: b.name,
    city: b.city,
    contact_information: '',
    country: b.country,
    country_code: b.countryCode,
    created_at: ts(b.createdAtMs),
    label: b.name,
    post_code: b.postCode,
    show_in_online_bookings: true,
    state: b.state,
    time_zone: b.timeZone,
    time_zone_identifier: b.timeZoneIdentifier,
    updated_at: ts(b.updatedAtMs),
    appointment_types: link(`/businesses/${b.id}/appointment_types`),
    practitioners: link(`/businesses/${b.id}/practitioners`),
    links: { self: `${base}/businesses/${b.id}` },
  });

  const userJson = (pr: ClPractice): Record<string, unknown> => ({
    id: pr.user.id,
    active: true,
    created_at: ts(pr.user.createdAtMs),
    email: pr.user.email,
    first_name: pr.user.firstName,
    last_name: pr.user.lastName,
    role: 'administrator',
    time_zone: pr.profile.timeZoneLabel,
    title: null,
    updated_at: ts(pr.user.createdAtMs),
    links: { self: `${base}/user` },
  });

  // ---------------------------------------------------------------- list specs

  const dt = <T>(get: (r: T) => number | null) => ({ type: 'datetime' as const, get });
  const num = <T>(get: (r: T) => string | null) => ({
    type: 'numeric' as const,
    get: (r: T) => (get(r) === null ? null : BigInt(get(r) as string)),
  });
  const str = <T>(get: (r: T) => string | null) => ({ type: 'string' as const, get });

  const patientSchema: Schema<ClPatient> = {
    id: num((p) => p.id),
    created_at: dt((p) => p.createdAtMs),
    updated_at: dt((p) => p.updatedAtMs),
    archived_at: dt((p) => p.archivedAtMs),
    deleted_at: dt((p) => p.deletedAtMs),
    date_of_birth: { type: 'date', get: (p) => p.dob },
    email: str((p) => p.email),
    first_name: str((p) => p.firstName),
    last_name: str((p) => p.lastName),
    old_reference_id: str((p) => p.oldReferenceId),
  };
  const apptSchema: Schema<ClAppointment> = {
    id: num((a) => a.id),
    appointment_type_id: num((a) => a.appointmentTypeId),
    archived_at: dt((a) => a.archivedAtMs),
    business_id: num((a) => a.businessId),
    cancelled_at: dt((a) => a.cancelledAtMs),
    created_at: dt((a) => a.createdAtMs),
    deleted_at: dt((a) => a.deletedAtMs),
    did_not_arrive: { type: 'boolean', get: (a) => a.didNotArrive },
    ends_at: dt((a) => a.endsAtMs),
    patient_id: num((a) => a.patientId),
    practitioner_id: num((a) => a.practitionerId),
    repeated_from_id: num(() => null),
    starts_at: dt((a) => a.startsAtMs),
    updated_at: dt((a) => a.updatedAtMs),
  };
  const pracSchema: Schema<ClPractitioner> = {
    id: num((p) => p.id),
    created_at: dt((p) => p.createdAtMs),
    updated_at: dt((p) => p.updatedAtMs),
  };
  const typeSchema: Schema<ClAppointmentType> = {
    id: num((t) => t.id),
    created_at: dt((t) => t.createdAtMs),
    updated_at: dt((t) => t.updatedAtMs),
    archived_at: dt((t) => t.archivedAtMs),
    name: str((t) => t.name),
  };
  const businessSchema: Schema<ClBusiness> = {
    id: num((b) => b.id),
    created_at: dt((b) => b.createdAtMs),
    updated_at: dt((b) => b.updatedAtMs),
    archived_at: dt((b) => b.archivedAtMs),
  };
  const deletedSchema = <T extends { id: string; deletedAtMs: number | null }>(): Schema<T> => ({
    id: num((r) => r.id),
    deleted_at: dt((r) => r.deletedAtMs),
  });

  const idOf = (r: { id: string }) => BigInt(r.id);
  const specs = {
    patients: {
      schema: patientSchema,
      hiddenUnlessFiltered: ['archived_at', 'deleted_at'],
      defaultSort: 'created_at',
      idOf,
    } as ListSpec<ClPatient>,
    appts: {
      schema: apptSchema,
      hiddenUnlessFiltered: ['archived_at', 'cancelled_at', 'deleted_at'],
      defaultSort: 'created_at',
      idOf,
    } as ListSpec<ClAppointment>,
    pracs: {
      schema: pracSchema,
      hiddenUnlessFiltered: [],
      defaultSort: 'created_at',
      idOf,
    } as ListSpec<ClPractitioner>,
    types: {
      schema: typeSchema,
      hiddenUnlessFiltered: ['archived_at'],
      defaultSort: 'created_at',
      idOf,
    } as ListSpec<ClAppointmentType>,
    businesses: {
      schema: businessSchema,
      hiddenUnlessFiltered: ['archived_at'],
      defaultSort: 'created_at',
      idOf,
    } as ListSpec<ClBusiness>,
  };

  // A listing's filtered, sorted rows, kept until the data changes (mutate() or any non-GET request): the next
  // page of the same listing is a slice of them rather than a filter and sort of every row again (a full sync's
  // pages would cost the square of the practice's size). Pages are rendered from the rows as they are now.
  // Direct edits of `model` rows (none today) would have to go through mutate() or a request to be seen.
  const listings = new Map<string, { version: string; rows: readonly unknown[] }>();
  let writes = 0;
  function list<T>(
    req: SimRequest,
    path: string,
    key: string,
    rows: readonly T[],
    spec: ListSpec<T>,
    render: (r: T) => Record<string, unknown>,
    pr: ClPractice,
  ): SimResponse {
    const q = new URLSearchParams(req.query);
    q.delete('page');
    const id = `${pr.keyCore}|${path}|${q.toString()}`;
    const version = `${model.dataVersion}:${writes}`;
    let hit = listings.get(id);
    if (hit?.version !== version) {
      hit = { version, rows: selectRows(rows, spec, req.query) };
      listings.delete(id);
      listings.set(id, hit);
      // A bounded number of listings (the oldest goes first).
      if (listings.size > 64) listings.delete(listings.keys().next().value as string);
    }
    const res = pageOf(hit.rows as T[], req.query);
    return json(200, {
      [key]: res.rows.map(render),
      total_entries: res.total,
      links: pageLinks(base, path, req.query, res.page, res.perPage, res.total),
    });
  }

  const notFound = () => html(404, CLINIKO_404_HTML);
  const deletedRow = (path: string) => (r: { id: string; deletedAtMs: number | null }) => ({
    id: r.id,
    deleted_at: ts(r.deletedAtMs),
    links: { self: `${base}${path}/${r.id}` },
  });

  function route(req: SimRequest, pr: ClPractice, rest: string): SimResponse | null {
    const get = req.method === 'GET';
    const now = model.clock.nowMs;
    if (rest === '/user' && get) return json(200, userJson(pr));
    if (rest === '/patients' && get) return list(req, rest, 'patients', pr.patients, specs.patients, patientJson, pr);
    if (rest === '/patients/archived' && get)
      return list(
        req,
        rest,
        'patients',
        pr.patients.filter((p) => p.archivedAtMs !== null && p.deletedAtMs === null),
        { ...specs.patients, hiddenUnlessFiltered: ['deleted_at'] },
        patientJson,
        pr,
      );
    if (rest === '/patients/deleted' && get)
      return list(
        req,
        rest,
        'patients',
        pr.patients.filter((p) => p.deletedAtMs !== null),
        { schema: deletedSchema<ClPatient>(), hiddenUnlessFiltered: [], defaultSort: 'deleted_at', idOf },
        deletedRow('/patients'),
        pr,
      );
    let m = /^\/patients\/(\d+)$/.exec(rest);
    if (m && get) {
      const p = pr.patientsById.get(m[1] as string);
      return p && p.deletedAtMs === null ? json(200, patientJson(p)) : notFound();
    }
    m = /^\/patients\/(\d+)\/(archive|unarchive)$/.exec(rest);
    if (m && req.method === 'POST') {
      const p = pr.patientsById.get(m[1] as string);
      if (!p || p.deletedAtMs !== null) return notFound();
      p.archivedAtMs = m[2] === 'archive' ? now : null;
      p.updatedAtMs = now;
      return { status: 204, body: '' };
    }
    if (rest === '/individual_appointments' && get)
      return list(
        req,
        rest,
        'individual_appointments',
        pr.appointments,
        specs.appts,
        (a) => appointmentJson(pr, a),
        pr,
      );
    if (rest === '/individual_appointments/cancelled' && get)
      return list(
        req,
        rest,
        'individual_appointments',
        pr.appointments.filter((a) => a.cancelledAtMs !== null && a.deletedAtMs === null),
        { ...specs.appts, hiddenUnlessFiltered: ['archived_at', 'deleted_at'] },
        (a) => appointmentJson(pr, a),
        pr,
      );
    if (rest === '/individual_appointments/deleted' && get)
      return list(
        req,
        rest,
        'individual_appointments',
        pr.appointments.filter((a) => a.deletedAtMs !== null),
        { schema: deletedSchema<ClAppointment>(), hiddenUnlessFiltered: [], defaultSort: 'deleted_at', idOf },
        deletedRow('/individual_appointments'),
        pr,
      );
    m = /^\/individual_appointments\/(\d+)$/.exec(rest);
    if (m && get) {
      const a = pr.appointmentsById.get(m[1] as string);
      return a && a.deletedAtMs === null ? json(200, appointmentJson(pr, a)) : notFound();
    }
    m = /^\/individual_appointments\/(\d+)\/cancel$/.exec(rest);
    if (m && req.method === 'PATCH') {
      const a = pr.appointmentsById.get(m[1] as string);
      if (!a || a.deletedAtMs !== null) return notFound();
      let body: Record<string, unknown>;
      try {
        body = readJson(req);
      } catch {
        return json(400, { message: 'Invalid JSON.' });
      }
      const reason = Number(body.cancellation_reason);
      if (!(reason in CANCELLATION_REASONS))
        return json(422, {
          message: 'Cancellation reason is not included in the list',
          errors: { cancellation_reason: ['is not included in the list'] },
        });
      a.cancelledAtMs = now;
      a.cancellationReason = reason;
      a.cancellationNote = typeof body.cancellation_note === 'string' ? body.cancellation_note : '';
      a.updatedAtMs = now;
      return { status: 204, body: '' };
    }
    if (rest === '/practitioners' && get)
      return list(
        req,
        rest,
        'practitioners',
        pr.practitioners.filter((p) => p.active),
        specs.pracs,
        practitionerJson,
        pr,
      );
    if (rest === '/practitioners/inactive' && get)
      return list(
        req,
        rest,
        'practitioners',
        pr.practitioners.filter((p) => !p.active),
        specs.pracs,
        practitionerJson,
        pr,
      );
    m = /^\/practitioners\/(\d+)$/.exec(rest);
    if (m && get) {
      const p = pr.practitioners.find((x) => x.id === m?.[1]);
      return p ? json(200, practitionerJson(p)) : notFound();
    }
    if (rest === '/appointment_types' && get)
      return list(req, rest, 'appointment_types', pr.appointmentTypes, specs.types, typeJson, pr);
    m = /^\/appointment_types\/(\d+)$/.exec(rest);
    if (m && get) {
      const t = pr.appointmentTypes.find((x) => x.id === m?.[1]);
      return t ? json(200, typeJson(t)) : notFound();
    }
    if (rest === '/businesses' && get)
      return list(req, rest, 'businesses', pr.businesses, specs.businesses, businessJson, pr);
    m = /^\/businesses\/(\d+)$/.exec(rest);
    if (m && get) {
      const b = pr.businesses.find((x) => x.id === m?.[1]);
      return b ? json(200, businessJson(b)) : notFound();
    }
    return null;
  }

  const KNOWN_ROUTE =
    /^\/(user|patients(\/archived|\/deleted|\/\d+(\/(archive|unarchive))?)?|individual_appointments(\/cancelled|\/deleted|\/\d+(\/cancel)?)?|practitioners(\/inactive|\/\d+)?|appointment_types(\/\d+)?|businesses(\/\d+)?)$/;

  const throttledFor = (resetAtMs: number): SimResponse =>
    text(429, 'Retry later\n', 'text/plain', { 'x-ratelimit-reset': String(Math.ceil(resetAtMs / 1000)) });

  function auth(req: SimRequest): ClPractice | SimResponse {
    const denied = text(401, 'HTTP Basic: Access denied.\n', 'text/html; charset=utf-8', {
      'www-authenticate': 'Basic realm="Application"',
    });
    const h = req.headers.authorization;
    if (!h || !/^basic /i.test(h)) return denied;
    const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = colon >= 0 ? decoded.slice(0, colon) : decoded;
    if (!key) return denied;
    const sh = keyShard(key);
    if (sh !== null && sh !== shard) return denied;
    const pr = model.practices.find((p) => p.keyCore === keyCore(key));
    return pr ?? denied;
  }

  function handle(req: SimRequest): SimResponse {
    const ua = String(req.headers['user-agent'] ?? '');
    if (!UA_EMAIL.test(ua))
      return json(403, {
        message:
          'Forbidden. Requests must include a User-Agent header with your application name and a contact email, e.g. "Really helpful app (devs@helpfulapp.com)".',
      });
    if (!req.path.startsWith('/v1/') && req.path !== '/v1') return notFound();
    const rest = req.path.slice(3).replace(/\/$/, '') || '/';
    if (!KNOWN_ROUTE.test(rest)) return notFound();
    const accept = String(req.headers.accept ?? '');
    if (accept && !/json|\*\/\*/.test(accept)) return text(406, '', 'text/plain');
    const who = auth(req);
    if (!('keyCore' in who)) return who;
    const lim = limiter.hit(`user:${who.index}`);
    if (!lim.allowed) return throttledFor(lim.resetAtMs);
    if (req.method !== 'GET') writes += 1;
    try {
      return route(req, who, rest) ?? notFound();
    } catch (err) {
      if (err instanceof QueryError) return json(err.status, { message: err.message });
      throw err;
    }
  }

  function group(req: SimRequest): string {
    const rest = req.path.replace(/^\/v1/, '');
    const m = /^\/([a-z_]+)(\/(archived|deleted|cancelled|inactive))?/.exec(rest);
    if (!m) return 'other';
    const isOne = /^\/[a-z_]+\/\d+/.test(rest);
    return `${m[1]}${m[3] ? `/${m[3]}` : isOne ? '/:id' : ''}`;
  }

  function snapshot(): ClinikoSnapshot {
    return {
      platform: 'cliniko',
      now: isoSeconds(model.clock.nowMs),
      users: model.practices.map((pr) => ({
        index: pr.index,
        name: pr.name,
        user: userJson(pr),
        businesses: pr.businesses.map(businessJson),
        practitioners: pr.practitioners.map(practitionerJson),
        appointment_types: pr.appointmentTypes.map(typeJson),
        patients: [...pr.patients]
          .sort((a, b) => a.createdAtMs - b.createdAtMs || (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
          .map(patientJson),
        individual_appointments: [...pr.appointments]
          .sort((a, b) => a.createdAtMs - b.createdAtMs || (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
          .map((a) => appointmentJson(pr, a)),
      })),
    };
  }

  const faults = new FaultController(opts.faults);
  const host = new SimHost(
    {
      handle,
      group,
      fault5xx: (v) => (v === 0 ? html(500, RAILS_500_HTML) : v === 1 ? html(502, NGINX_502) : html(503, NGINX_503)),
      fault429: () => throttledFor(Math.ceil(Date.now() / MINUTE) * MINUTE),
      snapshot: () => snapshot(),
      mutate: (steps) => model.mutate(steps),
    },
    faults,
  );
  const origin = await host.listen(opts.port ?? 0);
  base = `${origin}/v1`;

  return track<ClinikoSim>({
    url: base,
    origin,
    model,
    close: () => host.close(),
    get stats() {
      return host.stats;
    },
    resetStats: () => host.resetStats(),
    faults,
    mutate: (steps = 1) => model.mutate(steps),
    snapshot,
    now: () => model.clock.nowMs,
  });
}
