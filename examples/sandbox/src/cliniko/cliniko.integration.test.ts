import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignToWindow, portless } from '../test-utils.ts';
import { type ClinikoSim, startCliniko } from './server.ts';

const NOW = '2025-11-24T00:00:00Z';
const KEY_A = 'MS0xMjM0NTY3ODkwLWFiY2RlZg-au1';
const KEY_B = 'MS0yMjIyMjIyMjIyLXh5enh5eg-au1';
const UA = 'Routiq sandbox tests (dev@routiq.example)';
type Json = Record<string, any>;

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
const headersFor = (key = KEY_A) => ({ authorization: basic(key), 'user-agent': UA, accept: 'application/json' });

let sim: ClinikoSim;
async function get(url: string, headers: Record<string, string> = headersFor()) {
  const res = await fetch(url.startsWith('http') ? url : `${sim.url}${url}`, { headers });
  const text = await res.text();
  let body: Json | undefined;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = undefined;
  }
  return { res, text, body: body as Json };
}

/** Follows links.next like a well-behaved client. */
async function walk(path: string, key: string): Promise<Json[]> {
  const rows: Json[] = [];
  let url: string | undefined = `${sim.url}${path}`;
  while (url) {
    const { body } = await get(url);
    rows.push(...(body[key] as Json[]));
    url = body.links.next;
  }
  return rows;
}

beforeAll(async () => {
  sim = await startCliniko({ seed: 3, now: NOW, scale: 3, users: [{ apiKey: KEY_A }, { apiKey: KEY_B }] });
});
afterAll(() => sim.close());

describe('cliniko auth', () => {
  it('refuses requests without a User-Agent carrying a contact email (403 JSON message)', async () => {
    for (const ua of [undefined, 'node', 'MyApp (no email)']) {
      const h: Record<string, string> = { authorization: basic(KEY_A), accept: 'application/json' };
      if (ua) h['user-agent'] = ua;
      const { res, body } = await get('/patients', h);
      expect(res.status).toBe(403);
      expect(body.message).toMatch(/User-Agent/);
    }
  });

  it('answers a missing or wrong key like Rails HTTP Basic (401 + WWW-Authenticate)', async () => {
    const none = await get('/patients', { 'user-agent': UA });
    expect(none.res.status).toBe(401);
    expect(none.res.headers.get('www-authenticate')).toBe('Basic realm="Application"');
    expect(none.text).toBe('HTTP Basic: Access denied.\n');
    expect((await get('/patients', headersFor('wrong-au1'))).res.status).toBe(401);
    // Right key, wrong shard suffix.
    expect((await get('/patients', headersFor(KEY_A.replace('-au1', '-uk2')))).res.status).toBe(401);
    // The key without its shard suffix still identifies the user.
    expect((await get('/patients', headersFor(KEY_A.replace('-au1', '')))).res.status).toBe(200);
  });

  it('404s unknown routes with an HTML page', async () => {
    const { res, text } = await get('/appointments_typo');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(text).toContain('<html>');
  });
});

describe('cliniko lists', () => {
  it('pages 50 by default, caps per_page at 100, and shows links.next only when needed', async () => {
    const first = await get('/patients');
    expect(first.body.patients.length).toBe(Math.min(50, first.body.total_entries));
    expect(first.body.total_entries).toBeGreaterThan(50);
    expect(first.body.links.self).toBe(`${sim.url}/patients?page=1`);
    expect(first.body.links.next).toBe(`${sim.url}/patients?page=2`);
    expect(first.body.links.previous).toBeUndefined();
    const tooMany = await get('/patients?per_page=101');
    expect(tooMany.res.status).toBe(400);
    const big = await get('/patients?per_page=100');
    expect(big.res.status).toBe(200);
    const last = Math.ceil(big.body.total_entries / 20);
    const lastPage = await get(`/patients?per_page=20&page=${last}`);
    expect(lastPage.body.patients.length).toBeGreaterThan(0);
    expect(lastPage.body.links.next).toBeUndefined();
    expect(lastPage.body.links.previous).toBeDefined();
  });

  it('hides archived and deleted patients unless q[]=archived_at:* and matches the snapshot', async () => {
    const snap = sim.snapshot().users[0]!;
    const live = snap.patients.filter((p) => p.archived_at === null && p.deleted_at === null);
    const archived = snap.patients.filter((p) => p.archived_at !== null && p.deleted_at === null);
    expect(archived.length).toBeGreaterThan(0);
    const walked = await walk('/patients?per_page=37', 'patients');
    expect(walked).toEqual(live);
    const withArchived = await walk('/patients?per_page=100&q[]=archived_at:*', 'patients');
    expect(withArchived.length).toBe(live.length + archived.length);
    expect(withArchived.some((p) => p.archived_at !== null)).toBe(true);
  });

  it('dates nothing after now (a record from the future would hide later changes from an updated_at cursor)', async () => {
    // Larger than the shared simulator: enough people first seen in the last days to register "after" now.
    const big = await startCliniko({ seed: 21, now: NOW, scale: 40, users: [{ apiKey: KEY_A }] });
    try {
      const now = new Date(NOW).toISOString();
      const { patients, appointment_types, practitioners } = big.snapshot().users[0]!;
      const stamps = [...patients, ...appointment_types, ...practitioners].flatMap((r) =>
        ['created_at', 'updated_at', 'archived_at', 'deleted_at'].map((k) => (r as Json)[k]).filter(Boolean),
      );
      expect(stamps.length).toBeGreaterThan(1000);
      expect(stamps.filter((t) => new Date(String(t)).toISOString() > now)).toEqual([]);
    } finally {
      await big.close();
    }
  });

  it('filters updated_at:> (UTC only) and sorts', async () => {
    const cut = '2025-11-01T00:00:00Z';
    const snap = sim.snapshot().users[0]!;
    const expected = snap.patients.filter(
      (p) => p.archived_at === null && p.deleted_at === null && String(p.updated_at) > cut,
    );
    const rows = await walk(`/patients?per_page=100&q[]=updated_at:>${cut}&sort=updated_at`, 'patients');
    expect(rows.map((p) => p.id).sort()).toEqual(expected.map((p) => p.id).sort());
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.updated_at <= rows[i]!.updated_at).toBe(true);
    const naive = await get('/patients?q[]=updated_at:>2025-11-01T00:00:00');
    expect(naive.res.status).toBe(400);
    const desc = await get('/patients?sort=created_at:desc&per_page=5');
    const c = (desc.body.patients as Json[]).map((p) => p.created_at);
    expect([...c].sort().reverse()).toEqual(c);
  });

  it('rejects non-searchable columns with 400 {"message":"This column is not searchable."}', async () => {
    const { res, body } = await get('/patients?q[]=phone:=0412');
    expect(res.status).toBe(400);
    expect(body).toEqual({ message: 'This column is not searchable.' });
  });

  it('uses 18-digit string ids and puts foreign keys only in links', async () => {
    const { body } = await get('/individual_appointments?per_page=5');
    for (const a of body.individual_appointments as Json[]) {
      expect(typeof a.id).toBe('string');
      expect(BigInt(a.id) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
      expect(a).not.toHaveProperty('patient_id');
      expect(a.patient.links.self).toMatch(new RegExp(`^${sim.url}/patients/\\d{18}$`));
      const patient = await get(a.patient.links.self as string);
      expect(patient.res.status).toBe(200);
    }
  });

  it('hides cancelled and deleted appointments unless asked, and /deleted returns only {id, deleted_at, links}', async () => {
    const snap = sim.snapshot().users[0]!;
    const appts = snap.individual_appointments;
    const visible = appts.filter((a) => a.cancelled_at === null && a.deleted_at === null && a.archived_at === null);
    const def = await get('/individual_appointments?per_page=1');
    expect(def.body.total_entries).toBe(visible.length);
    const withCancelled = await get('/individual_appointments?per_page=1&q[]=cancelled_at:*');
    expect(withCancelled.body.total_entries).toBe(
      appts.filter((a) => a.deleted_at === null && a.archived_at === null).length,
    );
    const deleted = await walk('/individual_appointments/deleted?per_page=100', 'individual_appointments');
    expect(deleted.length).toBe(appts.filter((a) => a.deleted_at !== null).length);
    for (const d of deleted) expect(Object.keys(d).sort()).toEqual(['deleted_at', 'id', 'links']);
    const bad = await get('/individual_appointments/deleted?q[]=updated_at:>2025-01-01T00:00:00Z');
    expect(bad.res.status).toBe(400);
    expect(bad.body).toEqual({ message: 'This column is not searchable.' });
  });

  it('lists inactive practitioners separately', async () => {
    const active = await get('/practitioners');
    const inactive = await get('/practitioners/inactive');
    expect(active.body.practitioners.every((p: Json) => p.active === true)).toBe(true);
    expect(inactive.body.practitioners.length).toBeGreaterThan(0);
    expect(inactive.body.practitioners.every((p: Json) => p.active === false)).toBe(true);
  });

  it("writes phones as free text with a phone_type, and keeps each user's practice separate", async () => {
    const a = sim.snapshot().users;
    const phones = a[0]!.patients.flatMap((p) => p.patient_phone_numbers as Json[]);
    expect(new Set(phones.map((p) => p.phone_type)).has('Mobile')).toBe(true);
    expect(phones.some((p) => !String(p.number).startsWith('+'))).toBe(true);
    const b = await get('/patients?per_page=1', headersFor(KEY_B));
    expect(b.body.patients[0].id).not.toBe((await get('/patients?per_page=1')).body.patients[0].id);
  });
});

describe('cliniko rate limit', () => {
  it('429 with X-RateLimit-Reset per user; another user keeps its own budget', async () => {
    const windowMs = 1000;
    const s = await startCliniko({
      seed: 3,
      now: NOW,
      users: [{ apiKey: KEY_A }, { apiKey: KEY_B }],
      rateLimit: { limit: 3, windowMs },
    });
    try {
      await alignToWindow(windowMs);
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${s.url}/user`, { headers: headersFor(KEY_A) });
        statuses.push(r.status);
        if (r.status === 429) limited = r;
        await r.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      const reset = Number(limited!.headers.get('x-ratelimit-reset'));
      expect(reset).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
      expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2);
      expect(limited!.headers.get('retry-after')).toBeNull();
      expect((await fetch(`${s.url}/user`, { headers: headersFor(KEY_B) })).status).toBe(200);
      // Both spellings of the same key share one user budget.
      expect((await fetch(`${s.url}/user`, { headers: headersFor(KEY_A.replace('-au1', '')) })).status).toBe(429);
    } finally {
      await s.close();
    }
  });
});

describe('cliniko mutate', () => {
  it('is deterministic and produces archives, cancellations and deletions visible through the filters', async () => {
    const a = await startCliniko({ seed: 8, now: NOW, users: [{ apiKey: KEY_A }] });
    const b = await startCliniko({ seed: 8, now: NOW, users: [{ apiKey: KEY_A }] });
    try {
      const snap = (x: ClinikoSim) => portless(x.snapshot(), x.origin);
      expect(snap(a)).toEqual(snap(b));
      const before = a.now();
      const sum = a.mutate(40);
      b.mutate(40);
      expect(snap(a)).toEqual(snap(b));
      for (const t of ['patient_updated', 'appointment_created', 'appointment_cancelled'])
        expect(sum.counts[t] ?? 0).toBeGreaterThan(0);
      const since = `${new Date(before).toISOString().slice(0, 19)}Z`;
      const h = headersFor();
      const changed = (await (
        await fetch(`${a.url}/patients?per_page=100&q[]=updated_at:>${since}&q[]=archived_at:*`, { headers: h })
      ).json()) as Json;
      const touched = new Set(
        sum.actions.filter((x) => x.type.startsWith('patient_') && x.type !== 'patient_deleted').map((x) => x.id),
      );
      expect(new Set((changed.patients as Json[]).map((p) => p.id))).toEqual(touched);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/** Listings are cached between pages (server.ts `list`): a change in between is seen like on the real API. */
describe('cliniko listing cache', () => {
  it('a page read after mutate() or a write request reflects the change; unchanged data pages as before', async () => {
    const s = await startCliniko({ seed: 5, now: NOW, scale: 2, users: [{ apiKey: KEY_A }] });
    try {
      const h = headersFor();
      const page = async (n: number) =>
        (await (
          await fetch(`${s.url}/patients?per_page=5&sort=updated_at:desc&page=${n}`, { headers: h })
        ).json()) as Json;
      const first = await page(1);
      expect(await page(1)).toEqual(first);
      const top = first.patients[0] as Json;
      // A write through the API: the archived patient leaves the default listing at once.
      const r = await fetch(`${s.url}/patients/${top.id}/archive`, { method: 'POST', headers: h });
      expect(r.status).toBe(204);
      const afterArchive = await page(1);
      expect((afterArchive.patients as Json[]).map((p) => p.id)).not.toContain(top.id);
      expect(afterArchive.total_entries).toBe(first.total_entries - 1);
      // A mutation step: patients it updated lead a listing sorted by updated_at desc.
      const sum = s.mutate(5);
      const updated = sum.actions.filter((a) => a.type === 'patient_updated').map((a) => a.id);
      expect(updated.length).toBeGreaterThan(0);
      const afterMutate = await page(1);
      expect(updated).toContain((afterMutate.patients as Json[])[0]?.id);
    } finally {
      await s.close();
    }
  });
});
