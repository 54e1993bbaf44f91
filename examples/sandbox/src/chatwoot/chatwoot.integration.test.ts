import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignToWindow, portless } from '../test-utils.ts';
import { type ChatwootSim, startChatwoot } from './server.ts';

const NOW = '2025-11-24T00:00:00Z';
const ACCOUNTS = [
  { accountId: 3, token: 'tok-a-000000000000000000' },
  { accountId: 7, token: 'tok-b-000000000000000000' },
];

type Json = Record<string, any>;

let sim: ChatwootSim;
const get = async (path: string, headers: Record<string, string> = { api_access_token: ACCOUNTS[0]!.token }) => {
  const res = await fetch(`${sim.url}${path}`, { headers });
  const text = await res.text();
  let body: Json | undefined;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = undefined;
  }
  return { res, text, body: body as Json };
};

async function allConversations(query: string): Promise<Json[]> {
  const out: Json[] = [];
  for (let page = 1; page < 1000; page++) {
    const { body } = await get(`/api/v1/accounts/3/conversations?${query}&page=${page}`);
    const payload = body.data.payload as Json[];
    out.push(...payload);
    if (payload.length < 25) break;
  }
  return out;
}

beforeAll(async () => {
  sim = await startChatwoot({ seed: 11, now: NOW, accounts: ACCOUNTS });
});
afterAll(() => sim.close());

describe('chatwoot auth', () => {
  it('rejects a missing or unknown token with 401 {"error":"Invalid Access Token"}', async () => {
    for (const headers of [{}, { api_access_token: 'nope' }]) {
      const { res, body } = await get('/api/v1/accounts/3/conversations', headers);
      expect(res.status).toBe(401);
      expect(body).toEqual({ error: 'Invalid Access Token' });
    }
  });

  it('accepts the Api-Access-Token spelling (what survives nginx)', async () => {
    const { res } = await get('/api/v1/accounts/3/conversations', { 'Api-Access-Token': ACCOUNTS[0]!.token });
    expect(res.status).toBe(200);
  });

  it("refuses another account's data and 404s unknown accounts", async () => {
    const other = await get('/api/v1/accounts/7/conversations');
    expect(other.res.status).toBe(401);
    expect(other.body).toEqual({ error: 'You are not authorized to access this account' });
    const missing = await get('/api/v1/accounts/999/conversations');
    expect(missing.res.status).toBe(404);
    expect(missing.body).toEqual({ error: 'Resource could not be found' });
  });

  it('answers unknown routes like Rails: HTML, or JSON when asked for JSON', async () => {
    const h = await get('/api/v1/accounts/3/nothing-here');
    expect(h.res.status).toBe(404);
    expect(h.res.headers.get('content-type')).toContain('text/html');
    const j = await get('/api/v1/accounts/3/nothing-here', {
      api_access_token: ACCOUNTS[0]!.token,
      accept: 'application/json',
    });
    expect(j.body).toEqual({ status: 404, error: 'Not Found' });
  });
});

describe('chatwoot conversations', () => {
  it('defaults to status=open, 25 per page, no paging metadata', async () => {
    const snap = sim.snapshot({ messages: false });
    const account = snap.accounts[0]!;
    const openCount = account.conversations.filter((c) => c.status === 'open').length;
    const { body } = await get('/api/v1/accounts/3/conversations');
    expect(body.data.meta.all_count).toBe(openCount);
    expect(Object.keys(body.data.meta).sort()).toEqual([
      'all_count',
      'assigned_count',
      'mine_count',
      'unassigned_count',
    ]);
    for (const c of body.data.payload) expect(c.status).toBe('open');
    expect(account.conversations.length).toBeGreaterThan(openCount);
    const all = await get('/api/v1/accounts/3/conversations?status=all');
    expect(all.body.data.payload).toHaveLength(25);
    expect(all.body.data.meta.all_count).toBe(account.conversations.length);
  });

  it('pages status=all by last_activity_at desc and matches the snapshot exactly', async () => {
    const pages = await allConversations('status=all');
    const snap = sim.snapshot({ messages: false }).accounts[0]!;
    expect(pages.map((c) => c.id as number).sort((a, b) => a - b)).toEqual(
      snap.conversations.map((c) => c.id as number).sort((a, b) => a - b),
    );
    for (let i = 1; i < pages.length; i++)
      expect(pages[i - 1]!.last_activity_at).toBeGreaterThanOrEqual(pages[i]!.last_activity_at);
    const byId = new Map(snap.conversations.map((c) => [c.id, c]));
    for (const c of pages) expect(c).toEqual(byId.get(c.id));
    const beyond = await get('/api/v1/accounts/3/conversations?status=all&page=999');
    expect(beyond.body.data.payload).toEqual([]);
  });

  it('uses display ids, puts the contact in meta.sender and renders updated_at as a float', async () => {
    const pages = await allConversations('status=all');
    expect(pages.some((c) => !Number.isInteger(c.updated_at))).toBe(true);
    for (const c of pages) {
      expect(c).not.toHaveProperty('contact_id');
      expect(c.meta.sender).toHaveProperty('id');
      expect(Number.isInteger(c.created_at)).toBe(true);
    }
    const one = await get(`/api/v1/accounts/3/conversations/${pages[0]!.id}`);
    expect(one.body.id).toBe(pages[0]!.id);
  });

  it('returns everything at once with updated_within, still filtered by status', async () => {
    const { body } = await get('/api/v1/accounts/3/conversations?updated_within=31536000');
    expect(body.data.payload.length).toBe(body.data.meta.all_count);
    for (const c of body.data.payload) expect(c.status).toBe('open');
  });

  it('filters by day, strictly greater than (same-day rows are lost)', async () => {
    const res = await fetch(`${sim.url}/api/v1/accounts/3/conversations/filter`, {
      method: 'POST',
      headers: { api_access_token: ACCOUNTS[0]!.token, 'content-type': 'application/json' },
      body: JSON.stringify({
        payload: [{ attribute_key: 'last_activity_at', filter_operator: 'is_greater_than', values: ['2025-11-01'] }],
      }),
    });
    const body = (await res.json()) as Json;
    expect(res.status).toBe(200);
    for (const c of body.payload)
      expect(new Date(c.last_activity_at * 1000).toISOString().slice(0, 10) > '2025-11-01').toBe(true);
  });
});

describe('chatwoot messages', () => {
  it('latest 20 ascending, before= pages of 20, after= pages of 100, both = range', async () => {
    const snap = sim.snapshot().accounts[0]!;
    const [displayId, all] = Object.entries(snap.messages).sort((a, b) => b[1].length - a[1].length)[0]!;
    expect(all.length).toBeGreaterThan(120);
    const path = `/api/v1/accounts/3/conversations/${displayId}/messages`;
    const latest = (await get(path)).body.payload as Json[];
    expect(latest.map((m) => m.id)).toEqual(all.slice(-20).map((m) => m.id));
    const before = (await get(`${path}?before=${latest[0]!.id}`)).body.payload as Json[];
    expect(before.map((m) => m.id)).toEqual(all.slice(-40, -20).map((m) => m.id));
    const after = (await get(`${path}?after=${all[0]!.id}`)).body.payload as Json[];
    expect(after.map((m) => m.id)).toEqual(all.slice(1, 101).map((m) => m.id));
    const range = (await get(`${path}?after=${all[5]!.id}&before=${all[15]!.id}`)).body.payload as Json[];
    expect(range.map((m) => m.id)).toEqual(all.slice(5, 15).map((m) => m.id));

    // Walking back with before= rebuilds the whole history, private notes and activity included.
    const walked: Json[] = [...latest];
    for (;;) {
      const page = (await get(`${path}?before=${walked[0]!.id}`)).body.payload as Json[];
      if (page.length === 0) break;
      walked.unshift(...page);
    }
    expect(walked).toEqual(all);
  });

  it('uses integer message_type, unix created_at, and no updated_at / sender_type in REST', async () => {
    const snap = sim.snapshot().accounts[0]!;
    const msgs = Object.values(snap.messages).flat();
    const types = new Set(msgs.map((m) => m.message_type));
    expect([...types].sort()).toEqual([0, 1, 2, 3]);
    expect(msgs.some((m) => m.private === true)).toBe(true);
    expect(msgs.some((m) => Array.isArray(m.attachments))).toBe(true);
    const fileTypes = new Set(
      msgs.flatMap((m) => ((m.attachments as Json[] | undefined) ?? []).map((a) => a.file_type)),
    );
    expect(fileTypes.size).toBeGreaterThanOrEqual(3);
    for (const m of msgs.slice(0, 200)) {
      expect(Number.isInteger(m.created_at)).toBe(true);
      expect(m).not.toHaveProperty('updated_at');
      expect(m).not.toHaveProperty('sender_type');
    }
  });

  it('filter_internal_messages drops private notes and activity before the limit', async () => {
    const snap = sim.snapshot().accounts[0]!;
    const [displayId, all] = Object.entries(snap.messages).sort((a, b) => b[1].length - a[1].length)[0]!;
    const visible = all.filter((m) => !m.private && m.message_type !== 2);
    const { body } = await get(`/api/v1/accounts/3/conversations/${displayId}/messages?filter_internal_messages=1`);
    expect((body.payload as Json[]).map((m) => m.id)).toEqual(visible.slice(-20).map((m) => m.id));
  });

  it('serves attachment data_url through a redirect', async () => {
    const snap = sim.snapshot().accounts[0]!;
    const att = Object.values(snap.messages)
      .flat()
      .flatMap((m) => (m.attachments as Json[] | undefined) ?? [])
      .find((a) => a.file_type === 'image');
    const res = await fetch(att!.data_url as string, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const followed = await fetch(att!.data_url as string);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toMatch(/^image\//);
  });
});

describe('chatwoot contacts', () => {
  it('lists only contacts with an email, phone or identifier, 15 per page', async () => {
    const snap = sim.snapshot({ messages: false }).accounts[0]!;
    const visible = snap.contacts.filter((c) => !c._hidden);
    expect(snap.contacts.some((c) => c._hidden)).toBe(true);
    const seen: Json[] = [];
    for (let page = 1; ; page++) {
      const { body } = await get(`/api/v1/accounts/3/contacts?page=${page}`);
      expect(body.meta.count).toBe(visible.length);
      expect(body.meta.current_page).toBe(String(page));
      seen.push(...body.payload);
      if (body.payload.length < 15) break;
    }
    const strip = ({ _hidden, ...rest }: Json) => rest;
    expect(seen.sort((a, b) => a.id - b.id)).toEqual(visible.map(strip));
    const first = await get('/api/v1/accounts/3/contacts');
    expect(first.body.meta.current_page).toBe(1);
    for (const c of seen) expect(c).not.toHaveProperty('updated_at');
    expect(seen.some((c) => typeof c.custom_attributes.cliniko_patient_id === 'string')).toBe(true);
    for (const c of seen) if (c.phone_number) expect(c.phone_number).toMatch(/^\+[1-9]\d{1,14}$/);
  });

  it("requires q for search, and caps a contact's conversations at 20", async () => {
    const { res, body } = await get('/api/v1/accounts/3/contacts/search');
    expect(res.status).toBe(422);
    expect(body).toEqual({ error: 'Specify search string with parameter q' });
    const hidden = sim.snapshot({ messages: false }).accounts[0]!.contacts.find((c) => c._hidden)!;
    const one = await get(`/api/v1/accounts/3/contacts/${hidden.id}`);
    expect(one.res.status).toBe(200);
    expect(one.body.payload.id).toBe(hidden.id);
    const convs = await get(`/api/v1/accounts/3/contacts/${hidden.id}/conversations`);
    expect(convs.body.payload.length).toBeLessThanOrEqual(20);
  });
});

describe('chatwoot rate limits', () => {
  it('sends 429 text/plain "Retry later\\n" without Retry-After, per IP, then recovers', async () => {
    const windowMs = 1000;
    const s = await startChatwoot({
      seed: 2,
      now: NOW,
      accounts: ACCOUNTS,
      rateLimit: { perIp: { limit: 4, windowMs } },
    });
    try {
      await alignToWindow(windowMs);
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${s.url}/api/v1/accounts/3/conversations`, {
          headers: { api_access_token: ACCOUNTS[0]!.token },
        });
        statuses.push(r.status);
        if (r.status === 429) limited = r;
        else await r.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      expect(limited!.headers.get('content-type')).toBe('text/plain');
      expect(limited!.headers.get('retry-after')).toBeNull();
      expect(await limited!.text()).toBe('Retry later\n');
      expect(s.stats.rateLimited).toBe(2);
      await alignToWindow(windowMs);
      const again = await fetch(`${s.url}/api/v1/accounts/3/conversations`, {
        headers: { api_access_token: ACCOUNTS[0]!.token },
      });
      expect(again.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('limits /contacts/search per account, even before authentication', async () => {
    const windowMs = 1000;
    const s = await startChatwoot({
      seed: 2,
      now: NOW,
      accounts: ACCOUNTS,
      rateLimit: { contactSearch: { limit: 2, windowMs } },
    });
    try {
      await alignToWindow(windowMs);
      const st: number[] = [];
      for (let i = 0; i < 3; i++)
        st.push(
          (
            await fetch(`${s.url}/api/v1/accounts/3/contacts/search?q=a`, {
              headers: { api_access_token: ACCOUNTS[0]!.token },
            })
          ).status,
        );
      st.push(
        (await fetch(`${s.url}/api/v1/accounts/3/contacts`, { headers: { api_access_token: ACCOUNTS[0]!.token } }))
          .status,
      );
      expect(st).toEqual([200, 200, 429, 200]);
      expect(s.stats.byGroup['contacts/search']).toBe(3);
    } finally {
      await s.close();
    }
  });
});

describe('chatwoot mutate', () => {
  it('is deterministic: same seed and steps give the same snapshot', async () => {
    const a = await startChatwoot({ seed: 5, now: NOW, accounts: ACCOUNTS });
    const b = await startChatwoot({ seed: 5, now: NOW, accounts: ACCOUNTS });
    const c = await startChatwoot({ seed: 6, now: NOW, accounts: ACCOUNTS });
    try {
      const snap = (x: ChatwootSim) => portless(x.snapshot(), x.origin);
      expect(snap(a)).toEqual(snap(b));
      const sa = a.mutate(6);
      b.mutate(3);
      b.mutate(3);
      expect(sa.actions.length).toBeGreaterThan(5);
      expect(snap(a)).toEqual(snap(b));
      expect(snap(a)).not.toEqual(snap(c));
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('new messages are reachable with after=, and a new message alone does not always bump updated_at', async () => {
    const s = await startChatwoot({ seed: 9, now: NOW, accounts: [ACCOUNTS[0]!] });
    try {
      const h = { api_access_token: ACCOUNTS[0]!.token };
      const before = s.snapshot();
      let sum = s.mutate(1);
      for (
        let i = 0;
        i < 20 && !sum.actions.some((x) => x.type === 'message_incoming' || x.type === 'message_reply');
        i++
      )
        sum = s.mutate(1);
      const act = sum.actions.find((x) => x.type === 'message_incoming' || x.type === 'message_reply')!;
      const prev = before.accounts[0]!.messages[String(act.conversationId)] ?? [];
      const lastId = prev[prev.length - 1]!.id as number;
      const r = await fetch(`${s.url}/api/v1/accounts/3/conversations/${act.conversationId}/messages?after=${lastId}`, {
        headers: h,
      });
      const page = (await r.json()) as Json;
      expect((page.payload as Json[]).map((m) => m.id)).toContain(act.messageId);
      // Over many steps some conversations get messages while updated_at stays put: the documented trap.
      const snap0 = s.snapshot({ messages: false }).accounts[0]!;
      s.mutate(30);
      const snap1 = s.snapshot({ messages: false }).accounts[0]!;
      const old = new Map(snap0.conversations.map((c) => [c.id, c]));
      const movedOnlyActivity = snap1.conversations.filter((c) => {
        const o = old.get(c.id);
        return o && o.last_activity_at !== c.last_activity_at && o.updated_at === c.updated_at;
      });
      expect(movedOnlyActivity.length).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  it('touchConversationOnMessage: true models `touch: true` (every message bumps updated_at)', async () => {
    const s = await startChatwoot({ seed: 9, now: NOW, accounts: [ACCOUNTS[0]!], touchConversationOnMessage: true });
    try {
      const snap0 = s.snapshot({ messages: false }).accounts[0]!;
      s.mutate(30);
      const snap1 = s.snapshot({ messages: false }).accounts[0]!;
      const old = new Map(snap0.conversations.map((c) => [c.id, c]));
      const moved = snap1.conversations.filter(
        (c) => old.has(c.id) && old.get(c.id)!.last_activity_at !== c.last_activity_at,
      );
      expect(moved.length).toBeGreaterThan(0);
      for (const c of moved) expect(c.updated_at).not.toBe(old.get(c.id)!.updated_at);
    } finally {
      await s.close();
    }
  });

  it('is driveable over the /__sandbox/ control API', async () => {
    const snap = (await (await fetch(`${sim.url}/__sandbox/snapshot?messages=false`)).json()) as Json;
    expect(snap.platform).toBe('chatwoot');
    const stats = (await (await fetch(`${sim.url}/__sandbox/stats`)).json()) as Json;
    expect(stats.requests).toBeGreaterThan(0);
    expect(stats.byGroup.conversations).toBeGreaterThan(0);
  });
});
