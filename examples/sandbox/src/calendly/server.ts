/**
 * Calendly API v2 simulator (https://api.calendly.com): the read endpoints a sync of a practice's bookings needs,
 * with the documented pagination, filters, errors and rate-limit headers. Sources and the points that are inferred
 * rather than documented: README.md beside this file.
 */
import { FaultController } from '../common/faults.ts';
import { FixedWindowLimiter } from '../common/ratelimit.ts';
import { track } from '../common/registry.ts';
import { html, json, NGINX_502, NGINX_503, SimHost, type SimRequest, type SimResponse } from '../common/server.ts';
import { MINUTE, resolveNow } from '../common/time.ts';
import type { BaseSim, RateLimitOptions, SimOptions } from '../types.ts';
import {
  type CaCancellation,
  type CaEvent,
  type CaEventType,
  type CaInvitee,
  CalendlyModel,
  type CalendlyMutationSummary,
  type CalendlyOrg,
  type CalendlyOrgConfig,
  type CaUser,
} from './model.ts';

export interface CalendlyOptions extends SimOptions {
  orgs: CalendlyOrgConfig[];
  /** Paid plans: 500 requests per user per minute (free plan: 50). */
  rateLimit?: RateLimitOptions;
}

export interface CalendlySnapshot {
  platform: 'calendly';
  now: string;
  orgs: Array<{
    index: number;
    /** The organization's URI (what `organization=` takes). */
    organization: string;
    user: Record<string, unknown>;
    users: Record<string, unknown>[];
    event_types: Record<string, unknown>[];
    /** Every event (active and canceled), by start_time. */
    scheduled_events: Record<string, unknown>[];
    /** Event URI → its invitees (active and canceled), by created_at. */
    invitees: Record<string, Record<string, unknown>[]>;
  }>;
}

export interface CalendlySim extends BaseSim<CalendlySnapshot, CalendlyMutationSummary> {
  readonly model: CalendlyModel;
  /** Platform requests as `METHOD path?query`, in arrival order (the control API is not logged). */
  readonly requests: string[];
}

/** Calendly's timestamps carry microseconds: `2026-10-12T03:15:22.123000Z`. */
const ts = (ms: number | null): string | null =>
  ms === null ? null : `${new Date(Math.floor(ms)).toISOString().slice(0, 23)}000Z`;

/** Error bodies are `{title, message[, details]}` (docs: every endpoint's 4xx/5xx schema). */
const problem = (status: number, title: string, message: string, details?: unknown[]): SimResponse =>
  json(status, details ? { title, message, details } : { title, message });

const NOT_FOUND = () => problem(404, 'Resource Not Found', 'The server could not find the requested resource.');
const INVALID = (details: unknown[]) =>
  problem(400, 'Invalid Argument', 'The supplied parameters are invalid.', details);

export async function startCalendly(opts: CalendlyOptions): Promise<CalendlySim> {
  if (!opts.orgs || opts.orgs.length === 0) throw new Error('startCalendly needs at least one organization');
  const model = new CalendlyModel({
    seed: opts.seed ?? 1,
    scale: opts.scale ?? 1,
    nowMs: resolveNow(opts.now),
    orgs: opts.orgs,
  });
  const limiter = new FixedWindowLimiter(
    opts.rateLimit?.limit ?? 500,
    opts.rateLimit?.windowMs ?? MINUTE,
    opts.rateLimit?.enabled ?? true,
  );
  const requests: string[] = [];
  let base = '';

  // ---------------------------------------------------------------- shapes

  const userUri = (u: CaUser) => `${base}/users/${u.uuid}`;
  const orgUri = (o: CalendlyOrg) => `${base}/organizations/${o.uuid}`;
  const eventUri = (e: CaEvent) => `${base}/scheduled_events/${e.uuid}`;
  const typeUri = (t: CaEventType) => `${base}/event_types/${t.uuid}`;

  const userJson = (o: CalendlyOrg, u: CaUser): Record<string, unknown> => ({
    uri: userUri(u),
    name: u.name,
    slug: u.slug,
    email: u.email,
    scheduling_url: `https://calendly.com/${u.slug}`,
    timezone: u.timezone,
    time_notation: '24h',
    avatar_url: null,
    created_at: ts(u.createdAtMs),
    updated_at: ts(u.updatedAtMs),
    current_organization: orgUri(o),
    resource_type: 'User',
    locale: 'en',
  });

  const typeJson = (o: CalendlyOrg, t: CaEventType): Record<string, unknown> => {
    const owner = o.users[t.ownerIndex]!;
    return {
      uri: typeUri(t),
      name: t.name,
      active: t.active,
      booking_method: 'instant',
      slug: t.slug,
      scheduling_url: `https://calendly.com/${owner.slug}/${t.slug}`,
      duration: t.duration,
      duration_options: null,
      kind: t.kind,
      pooling_type: null,
      type: 'StandardEventType',
      color: t.color,
      created_at: ts(t.createdAtMs),
      updated_at: ts(t.updatedAtMs),
      internal_note: null,
      description_plain: null,
      description_html: null,
      profile: { type: 'User', name: owner.name, owner: userUri(owner) },
      secret: false,
      deleted_at: null,
      admin_managed: false,
      locations: null,
      position: o.eventTypes.indexOf(t),
      custom_questions: [],
    };
  };

  const cancellationJson = (c: CaCancellation | null) =>
    c === null
      ? undefined
      : { canceled_by: c.canceledBy, reason: c.reason, canceler_type: c.cancelerType, created_at: ts(c.createdAtMs) };

  const eventJson = (o: CalendlyOrg, e: CaEvent): Record<string, unknown> => {
    const host = o.users[e.hostIndex]!;
    const type = o.eventTypes[e.typeIndex]!;
    const out: Record<string, unknown> = {
      uri: eventUri(e),
      name: type.name,
      meeting_notes_plain: e.notes,
      meeting_notes_html: e.notes === null ? null : `<p>${e.notes}</p>`,
      status: e.status,
      start_time: ts(e.startMs),
      end_time: ts(e.endMs),
      event_type: typeUri(type),
      location: e.location,
      invitees_counter: {
        total: e.invitees.length,
        active: e.invitees.filter((i) => i.status === 'active').length,
        limit: type.limit,
      },
      created_at: ts(e.createdAtMs),
      updated_at: ts(e.updatedAtMs),
      event_memberships: [{ user: userUri(host), user_email: host.email, user_name: host.name }],
      event_guests: [],
    };
    // `cancellation` is present only on canceled events.
    const c = cancellationJson(e.cancellation);
    if (c) out.cancellation = c;
    return out;
  };

  const inviteeJson = (e: CaEvent, i: CaInvitee): Record<string, unknown> => {
    const uri = `${eventUri(e)}/invitees/${i.uuid}`;
    const out: Record<string, unknown> = {
      uri,
      email: i.email,
      first_name: i.firstName,
      last_name: i.lastName,
      name: i.name,
      status: i.status,
      questions_and_answers: i.answers,
      timezone: i.timezone,
      event: eventUri(e),
      created_at: ts(i.createdAtMs),
      updated_at: ts(i.updatedAtMs),
      tracking: {
        utm_campaign: null,
        utm_source: null,
        utm_medium: null,
        utm_content: null,
        utm_term: null,
        salesforce_uuid: null,
      },
      text_reminder_number: i.textReminderNumber,
      rescheduled: i.rescheduled,
      old_invitee: i.oldInvitee
        ? `${base}/scheduled_events/${i.oldInvitee.eventUuid}/invitees/${i.oldInvitee.uuid}`
        : null,
      new_invitee: i.newInvitee
        ? `${base}/scheduled_events/${i.newInvitee.eventUuid}/invitees/${i.newInvitee.uuid}`
        : null,
      cancel_url: `https://calendly.com/cancellations/${i.uuid}`,
      reschedule_url: `https://calendly.com/reschedulings/${i.uuid}`,
      routing_form_submission: null,
      payment: null,
      no_show: i.noShow
        ? { uri: `${base}/invitee_no_shows/${i.noShow.uuid}`, created_at: ts(i.noShow.createdAtMs) }
        : null,
      reconfirmation: null,
      scheduling_method: null,
      invitee_scheduled_by: null,
    };
    const c = cancellationJson(i.cancellation);
    if (c) out.cancellation = c;
    return out;
  };

  // ---------------------------------------------------------------- pagination

  /** Opaque page tokens; this one encodes the offset into the filtered, sorted list. */
  const encodeToken = (offset: number) => Buffer.from(`o:${offset}`).toString('base64url');
  const decodeToken = (t: string): number | undefined => {
    const m = /^o:(\d+)$/.exec(Buffer.from(t, 'base64url').toString('utf8'));
    return m ? Number(m[1]) : undefined;
  };

  /**
   * `{collection, pagination: {count, next_page, previous_page, next_page_token, previous_page_token}}`;
   * next_page is the full URL of the next page (same parameters, the next page_token).
   */
  function page(req: SimRequest, items: Record<string, unknown>[]): SimResponse {
    const countRaw = req.query.get('count');
    const count = countRaw === null ? 20 : Number(countRaw);
    if (!Number.isInteger(count) || count < 1 || count > 100)
      return INVALID([{ parameter: 'count', message: 'must be an integer between 1 and 100' }]);
    const token = req.query.get('page_token');
    const offset = token === null ? 0 : decodeToken(token);
    if (offset === undefined) return INVALID([{ parameter: 'page_token', message: 'is invalid' }]);
    const slice = items.slice(offset, offset + count);
    const link = (o: number) => {
      const q = new URLSearchParams(req.query);
      q.set('page_token', encodeToken(o));
      q.set('count', String(count));
      return `${base}${req.path}?${q.toString()}`;
    };
    const hasNext = offset + count < items.length;
    const hasPrev = offset > 0;
    return json(200, {
      collection: slice,
      pagination: {
        count: slice.length,
        next_page: hasNext ? link(offset + count) : null,
        previous_page: hasPrev ? link(Math.max(0, offset - count)) : null,
        next_page_token: hasNext ? encodeToken(offset + count) : null,
        previous_page_token: hasPrev ? encodeToken(Math.max(0, offset - count)) : null,
      },
    });
  }

  const sortBy = <T>(
    items: T[],
    spec: string | null,
    allowed: Record<string, (x: T) => number | string>,
    dflt: string,
  ) => {
    const [field, dir] = (spec ?? dflt).split(':');
    const key = allowed[field ?? ''];
    if (!key || (dir !== 'asc' && dir !== 'desc')) return undefined;
    const sign = dir === 'asc' ? 1 : -1;
    return [...items].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      return ka < kb ? -sign : ka > kb ? sign : 0;
    });
  };

  const time = (v: string | null): number | undefined | null => {
    if (v === null) return null;
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  };

  // ---------------------------------------------------------------- routes

  /** The organization a request's `organization`/`user` scope names (owner token: its own organization only). */
  function scope(req: SimRequest, o: CalendlyOrg): { users: Set<number> } | SimResponse {
    const orgParam = req.query.get('organization');
    const userParam = req.query.get('user');
    if (orgParam === null && userParam === null)
      return INVALID([{ parameter: 'organization', message: 'one of organization, user or group is required' }]);
    if (orgParam !== null && orgParam !== orgUri(o))
      return problem(403, 'Permission Denied', 'You do not have permission to access this resource.');
    if (userParam !== null) {
      const idx = o.users.findIndex((u) => userUri(u) === userParam);
      if (idx < 0) return problem(403, 'Permission Denied', 'You do not have permission to access this resource.');
      return { users: new Set([idx]) };
    }
    return { users: new Set(o.users.map((_, i) => i)) };
  }

  function handleApi(req: SimRequest, o: CalendlyOrg): SimResponse {
    if (req.method !== 'GET') return NOT_FOUND();
    const path = req.path;
    if (path === '/users/me') return json(200, { resource: userJson(o, o.users[0]!) });
    if (path === '/event_types') {
      const s = scope(req, o);
      if ('status' in s) return s;
      const active = req.query.get('active');
      let list = o.eventTypes.filter((t) => s.users.has(t.ownerIndex) || req.query.get('user') === null);
      if (active !== null) list = list.filter((t) => String(t.active) === active);
      const sorted = sortBy(
        list,
        req.query.get('sort'),
        {
          name: (t) => t.name,
          position: (t) => o.eventTypes.indexOf(t),
          created_at: (t) => t.createdAtMs,
          updated_at: (t) => t.updatedAtMs,
        },
        'name:asc',
      );
      if (!sorted) return INVALID([{ parameter: 'sort', message: 'is invalid' }]);
      return page(
        req,
        sorted.map((t) => typeJson(o, t)),
      );
    }
    if (path === '/scheduled_events') {
      const s = scope(req, o);
      if ('status' in s) return s;
      const status = req.query.get('status');
      if (status !== null && status !== 'active' && status !== 'canceled')
        return INVALID([{ parameter: 'status', message: 'must be one of active, canceled' }]);
      const min = time(req.query.get('min_start_time'));
      const max = time(req.query.get('max_start_time'));
      if (min === undefined) return INVALID([{ parameter: 'min_start_time', message: 'is not a valid time' }]);
      if (max === undefined) return INVALID([{ parameter: 'max_start_time', message: 'is not a valid time' }]);
      const email = req.query.get('invitee_email')?.toLowerCase();
      const list = o.events.filter(
        (e) =>
          s.users.has(e.hostIndex) &&
          (status === null || e.status === status) &&
          (min === null || e.startMs >= min) &&
          (max === null || e.startMs < max) &&
          (email === undefined || e.invitees.some((i) => i.email.toLowerCase() === email)),
      );
      const sorted = sortBy(list, req.query.get('sort'), { start_time: (e) => e.startMs }, 'start_time:asc');
      if (!sorted) return INVALID([{ parameter: 'sort', message: 'is invalid' }]);
      return page(
        req,
        sorted.map((e) => eventJson(o, e)),
      );
    }
    const one = /^\/scheduled_events\/([0-9a-f-]+)(\/invitees)?$/.exec(path);
    if (one) {
      const ev = o.events.find((e) => e.uuid === one[1]);
      if (!ev) return NOT_FOUND();
      if (!one[2]) return json(200, { resource: eventJson(o, ev) });
      const status = req.query.get('status');
      if (status !== null && status !== 'active' && status !== 'canceled')
        return INVALID([{ parameter: 'status', message: 'must be one of active, canceled' }]);
      const email = req.query.get('email')?.toLowerCase();
      const list = ev.invitees.filter(
        (i) => (status === null || i.status === status) && (email === undefined || i.email.toLowerCase() === email),
      );
      const sorted = sortBy(list, req.query.get('sort'), { created_at: (i) => i.createdAtMs }, 'created_at:asc');
      if (!sorted) return INVALID([{ parameter: 'sort', message: 'is invalid' }]);
      return page(
        req,
        sorted.map((i) => inviteeJson(ev, i)),
      );
    }
    return NOT_FOUND();
  }

  const rateHeaders = (count: number, resetAtMs: number): Record<string, string> => ({
    'x-ratelimit-limit': String(limiter.limit),
    'x-ratelimit-remaining': String(Math.max(0, limiter.limit - count)),
    // Seconds until the window resets (docs: "Number of seconds until the limit resets").
    'x-ratelimit-reset': String(Math.max(1, Math.ceil((resetAtMs - Date.now()) / 1000))),
  });

  // The docs show the 429's headers, not its body; the body follows the API's {title, message} error shape.
  const throttled = () =>
    problem(429, 'Too Many Requests', 'You have exceeded the rate limit. Please try again later.');

  function handle(req: SimRequest): SimResponse {
    requests.push(`${req.method} ${req.path}${req.rawQuery ? `?${req.rawQuery}` : ''}`);
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    const o = token === undefined ? undefined : model.orgs.find((x) => x.token === token);
    if (!o) return problem(401, 'Unauthenticated', 'The access token is invalid');
    // Limits are per user; an owner token is one user.
    const hit = limiter.hit(o.token);
    const headers = rateHeaders(hit.count, hit.resetAtMs);
    const out = hit.allowed ? handleApi(req, o) : throttled();
    return { ...out, headers: { ...out.headers, ...headers } };
  }

  function group(req: SimRequest): string {
    if (/^\/scheduled_events\/[^/]+\/invitees$/.test(req.path)) return 'invitees';
    if (/^\/scheduled_events\/[^/]+$/.test(req.path)) return 'scheduled_events/:uuid';
    return req.path.slice(1) || 'other';
  }

  function snapshot(): CalendlySnapshot {
    return {
      platform: 'calendly',
      now: ts(model.clock.nowMs)!,
      orgs: model.orgs.map((o) => {
        const events = [...o.events].sort((a, b) => a.startMs - b.startMs);
        return {
          index: o.index,
          organization: orgUri(o),
          user: userJson(o, o.users[0]!),
          users: o.users.map((u) => userJson(o, u)),
          event_types: o.eventTypes.map((t) => typeJson(o, t)),
          scheduled_events: events.map((e) => eventJson(o, e)),
          invitees: Object.fromEntries(
            events.map((e) => [
              eventUri(e),
              [...e.invitees].sort((a, b) => a.createdAtMs - b.createdAtMs).map((i) => inviteeJson(e, i)),
            ]),
          ),
        };
      }),
    };
  }

  const faults = new FaultController(opts.faults);
  const host = new SimHost(
    {
      handle,
      group,
      fault5xx: (v) =>
        v === 0
          ? problem(
              500,
              'Internal Server Error',
              'The server encountered an unexpected condition that prevented it from fulfilling the request.',
            )
          : v === 1
            ? html(502, NGINX_502)
            : html(503, NGINX_503),
      fault429: () => {
        const out = throttled();
        return {
          ...out,
          headers: { ...out.headers, ...rateHeaders(limiter.limit + 1, Math.ceil(Date.now() / MINUTE) * MINUTE) },
        };
      },
      snapshot: () => snapshot(),
      mutate: (steps) => model.mutate(steps),
    },
    faults,
  );
  const origin = await host.listen(opts.port ?? 0);
  base = origin;

  return track<CalendlySim>({
    url: base,
    origin,
    model,
    requests,
    close: () => host.close(),
    get stats() {
      return host.stats;
    },
    resetStats: () => {
      host.resetStats();
      requests.length = 0;
    },
    faults,
    mutate: (steps = 1) => model.mutate(steps),
    snapshot,
    now: () => model.clock.nowMs,
  });
}
