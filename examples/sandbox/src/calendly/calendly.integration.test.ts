import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CalendlySim, startCalendly } from './server.ts';

/** The documented behaviours README.md lists, as a client sees them over HTTP. */
const NOW = '2026-11-01T00:00:00Z';
const TOKEN = 'calendly-test-token';
type Json = Record<string, any>;

let sim: CalendlySim;
let org: string;
async function get(url: string, token: string | null = TOKEN) {
  const res = await fetch(url.startsWith('http') ? url : `${sim.url}${url}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { res, body: (await res.json()) as Json };
}
const q = (params: Record<string, string | number>) =>
  new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();

/** Follows pagination.next_page like a client. */
async function walk(path: string): Promise<Json[]> {
  const rows: Json[] = [];
  let url: string | null = `${sim.url}${path}`;
  while (url) {
    const { res, body } = await get(url);
    expect(res.status).toBe(200);
    rows.push(...(body.collection as Json[]));
    url = body.pagination.next_page;
  }
  return rows;
}

beforeAll(async () => {
  sim = await startCalendly({
    orgs: [{ token: TOKEN }],
    seed: 5,
    now: NOW,
    rateLimit: { limit: 40, windowMs: 60_000 },
  });
  org = sim.snapshot().orgs[0]!.organization;
});
afterAll(() => sim.close());

describe('calendly list endpoints', () => {
  it('pages /scheduled_events with count and next_page (full URL, same parameters) and returns every event once', async () => {
    const first = await get(`/scheduled_events?${q({ organization: org, count: 7 })}`);
    expect(first.body.collection).toHaveLength(7);
    const p = first.body.pagination;
    expect(p).toEqual({
      count: 7,
      next_page: expect.stringContaining(`${sim.url}/scheduled_events?`),
      previous_page: null,
      next_page_token: expect.any(String),
      previous_page_token: null,
    });
    const next = new URL(p.next_page);
    expect(next.searchParams.get('organization')).toBe(org);
    expect(next.searchParams.get('page_token')).toBe(p.next_page_token);
    sim.resetStats();
    const all = await walk(`/scheduled_events?${q({ organization: org, count: 7 })}`);
    const snap = sim.snapshot().orgs[0]!;
    expect(all.map((e) => e.uri)).toEqual(snap.scheduled_events.map((e) => e.uri));
    expect(new Set(all.map((e) => e.uri)).size).toBe(all.length);
    expect(sim.requests).toHaveLength(Math.ceil(all.length / 7));
    // start_time:asc by default; desc reverses
    const starts = all.map((e) => e.start_time as string);
    expect([...starts].sort()).toEqual(starts);
    const desc = await walk(`/scheduled_events?${q({ organization: org, count: 100, sort: 'start_time:desc' })}`);
    expect(desc.map((e) => e.start_time)).toEqual([...starts].reverse());
  });

  it('filters by status and start time (min inclusive, max exclusive); there is no filter on update time', async () => {
    const all = await walk(`/scheduled_events?${q({ organization: org, count: 100 })}`);
    const canceled = await walk(`/scheduled_events?${q({ organization: org, count: 100, status: 'canceled' })}`);
    expect(canceled.length).toBeGreaterThan(0);
    expect(canceled.every((e) => e.status === 'canceled' && e.cancellation)).toBe(true);
    expect(all.filter((e) => e.status === 'active').every((e) => e.cancellation === undefined)).toBe(true);
    const pivot = all[Math.floor(all.length / 2)]!.start_time as string;
    const from = await walk(`/scheduled_events?${q({ organization: org, count: 100, min_start_time: pivot })}`);
    const before = await walk(`/scheduled_events?${q({ organization: org, count: 100, max_start_time: pivot })}`);
    expect(from.length + before.length).toBe(all.length);
    expect(from.every((e) => e.start_time >= pivot) && before.every((e) => e.start_time < pivot)).toBe(true);
  });

  it('lists an event’s invitees (created_at ascending) with the documented fields', async () => {
    const snap = sim.snapshot().orgs[0]!;
    const group = snap.scheduled_events.find((e) => (e.invitees_counter as Json).limit > 1)!;
    const uuid = String(group.uri).split('/').pop();
    const { res, body } = await get(`/scheduled_events/${uuid}/invitees?count=100`);
    expect(res.status).toBe(200);
    expect(body.collection).toEqual(snap.invitees[String(group.uri)]);
    expect(body.collection.length).toBe((group.invitees_counter as Json).total);
    const created = body.collection.map((i: Json) => i.created_at);
    expect([...created].sort()).toEqual(created);
    expect(Object.keys(body.collection[0]!)).toEqual(
      expect.arrayContaining([
        'uri',
        'email',
        'name',
        'status',
        'event',
        'text_reminder_number',
        'no_show',
        'rescheduled',
      ]),
    );
    expect(String(body.collection[0]!.created_at)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });
});

describe('calendly errors and limits', () => {
  it('answers {title, message[, details]} errors', async () => {
    const noAuth = await get(`/scheduled_events?${q({ organization: org })}`, null);
    expect(noAuth.res.status).toBe(401);
    expect(noAuth.body).toEqual({ title: 'Unauthenticated', message: 'The access token is invalid' });
    const badCount = await get(`/scheduled_events?${q({ organization: org, count: 101 })}`);
    expect(badCount.res.status).toBe(400);
    expect(badCount.body).toMatchObject({ title: 'Invalid Argument', details: [{ parameter: 'count' }] });
    const noScope = await get('/scheduled_events');
    expect(noScope.res.status).toBe(400);
    const other = await get(`/scheduled_events?${q({ organization: `${sim.url}/organizations/someone-else` })}`);
    expect(other.res.status).toBe(403);
    expect(other.body.title).toBe('Permission Denied');
    const missing = await get('/scheduled_events/00000000-0000-4000-8000-000000000000/invitees');
    expect(missing.res.status).toBe(404);
    expect(missing.body).toEqual({ title: 'Resource Not Found', message: expect.any(String) });
  });

  it('sends X-RateLimit-* on every response (Reset in seconds) and 429s past the per-user limit', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 100 && last?.status !== 429; i++) last = (await get('/users/me')).res;
    expect(last!.status).toBe(429);
    expect(last!.headers.get('x-ratelimit-limit')).toBe('40');
    expect(last!.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(last!.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(60);
    expect(sim.stats.rateLimited).toBeGreaterThan(0);
  });
});

describe('calendly mutations', () => {
  it('a reschedule cancels the old invitee and links both; a no-show touches the invitee, not the event', async () => {
    const before = sim.snapshot().orgs[0]!;
    const m = sim.mutate(40);
    expect(m.counts.rescheduled).toBeGreaterThan(0);
    expect(m.counts.no_show).toBeGreaterThan(0);
    const after = sim.snapshot().orgs[0]!;
    const invitees = Object.values(after.invitees).flat();
    const moved = invitees.find((i) => i.rescheduled === true)!;
    expect(moved.status).toBe('canceled');
    const successor = invitees.find((i) => i.uri === moved.new_invitee)!;
    expect(successor.old_invitee).toBe(moved.uri);
    expect(String(successor.email).toLowerCase()).toBe(String(moved.email).toLowerCase());
    const ns = m.changes.find((c) => c.action === 'no_show')!;
    const uri = `${sim.url}/scheduled_events/${ns.event}`;
    const evBefore = before.scheduled_events.find((e) => e.uri === uri);
    const evAfter = after.scheduled_events.find((e) => e.uri === uri);
    if (evBefore) expect(evAfter!.updated_at).toBe(evBefore.updated_at);
    expect(after.invitees[uri]![0]!.no_show).toEqual({ uri: expect.any(String), created_at: expect.any(String) });
  });
});
