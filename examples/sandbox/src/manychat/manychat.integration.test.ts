import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alignToWindow, startReceiver } from '../test-utils.ts';
import { type ManyChatSim, startManyChat } from './server.ts';

const NOW = '2025-11-24T00:00:00Z';
const PAGE = '104729384756123';
const TOKEN = `${PAGE}:0123456789abcdef0123456789abcdef`;
type Json = Record<string, any>;

let sim: ManyChatSim;
const auth = { authorization: `Bearer ${TOKEN}` };
async function call(path: string, init: { method?: string; body?: unknown; token?: string | null } = {}) {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${sim.url}${path}`, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return { res, body: (await res.json()) as Json };
}

const cleanups: Array<() => Promise<void>> = [];
beforeAll(async () => {
  sim = await startManyChat({
    seed: 2,
    now: NOW,
    scale: 2,
    pages: [{ pageId: PAGE, token: TOKEN, name: 'Surf Rehab' }],
  });
});
afterAll(() => sim.close());
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

describe('manychat auth and envelope', () => {
  it('401 "Wrong token" for a missing or wrong bearer token', async () => {
    for (const token of [null, `${PAGE}:ffffffffffffffffffffffffffffffff`]) {
      const { res, body } = await call('/fb/page/getInfo', { token });
      expect(res.status).toBe(401);
      expect(body).toMatchObject({ status: 'error', message: 'Wrong token' });
    }
  });

  it('wraps success as {status:"success", data} and errors as HTTP 400 {status:"error", message, details}', async () => {
    const info = await call('/fb/page/getInfo');
    expect(info.res.status).toBe(200);
    expect(info.body.status).toBe('success');
    expect(info.body.data).toMatchObject({ id: Number(PAGE), name: 'Surf Rehab', is_pro: true });
    const missing = await call('/fb/subscriber/getInfo?subscriber_id=1');
    expect(missing.res.status).toBe(400);
    expect(missing.body).toEqual({
      status: 'error',
      message: 'Subscriber does not exist',
      details: { messages: [{ message: 'Subscriber does not exist' }] },
    });
    const blank = await call('/fb/subscriber/getInfo');
    expect(blank.res.status).toBe(400);
    expect(blank.body.status).toBe('error');
  });

  it('getInfo returns custom_fields as an array of {id,name,type,description,value} and local-offset times', async () => {
    const sub = sim.snapshot().pages[0]!.subscribers[0]!;
    const { body } = await call(`/fb/subscriber/getInfo?subscriber_id=${sub.id}`);
    expect(body.data).toEqual(sub);
    expect(Array.isArray(body.data.custom_fields)).toBe(true);
    for (const f of body.data.custom_fields as Json[])
      expect(Object.keys(f).sort()).toEqual(['description', 'id', 'name', 'type', 'value']);
    expect(body.data.subscribed).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    expect(typeof body.data.id).toBe('string');
  });

  it('has no list endpoint', async () => {
    const { res, body } = await call('/fb/subscriber/getSubscribers');
    expect(res.status).toBe(404);
    expect(body.status).toBe('error');
  });
});

describe('manychat lookups', () => {
  it('findBySystemField takes exactly one of email / phone and returns a single subscriber', async () => {
    const subs = sim.snapshot().pages[0]!.subscribers;
    const withPhone = subs.find((s) => s.phone)!;
    const one = await call(`/fb/subscriber/findBySystemField?phone=${encodeURIComponent(withPhone.phone as string)}`);
    expect(one.body.data.id).toBe(withPhone.id);
    expect(Array.isArray(one.body.data)).toBe(false);
    const both = await call(`/fb/subscriber/findBySystemField?phone=%2B1&email=a@b.c`);
    expect(both.res.status).toBe(400);
    const waOnly = subs.find((s) => s.whatsapp_phone && !s.phone);
    if (waOnly) {
      const miss = await call(
        `/fb/subscriber/findBySystemField?phone=${encodeURIComponent(waOnly.whatsapp_phone as string)}`,
      );
      expect(miss.res.status).toBe(400);
    }
  });

  it('findByCustomField works on text/number fields only and caps at 100', async () => {
    const fields = (await call('/fb/page/getCustomFields')).body.data as Json[];
    const date = fields.find((f) => f.type === 'date')!;
    expect((await call(`/fb/subscriber/findByCustomField?field_id=${date.id}&field_value=2000-01-01`)).res.status).toBe(
      400,
    );
    const clinic = fields.find((f) => f.name === 'Preferred clinic')!;
    const found = await call(`/fb/subscriber/findByCustomField?field_id=${clinic.id}&field_value=Canggu`);
    expect(found.body.status).toBe('success');
    expect(found.body.data.length).toBeGreaterThan(0);
    expect(found.body.data.length).toBeLessThanOrEqual(100);
  });

  it('validates custom field writes by type', async () => {
    const sub = sim.snapshot().pages[0]!.subscribers[1]!;
    const fields = (await call('/fb/page/getCustomFields')).body.data as Json[];
    const visits = fields.find((f) => f.name === 'Visits')!;
    const bad = await call('/fb/subscriber/setCustomField', {
      body: { subscriber_id: sub.id, field_id: visits.id, field_value: 'many' },
    });
    expect(bad.res.status).toBe(400);
    const ok = await call('/fb/subscriber/setCustomField', {
      body: { subscriber_id: sub.id, field_id: visits.id, field_value: 7 },
    });
    expect(ok.body).toEqual({ status: 'success' });
    const info = await call(`/fb/subscriber/getInfo?subscriber_id=${sub.id}`);
    expect((info.body.data.custom_fields as Json[]).find((f) => f.id === visits.id)!.value).toBe(7);
  });

  it('sendContent outside the 24 h window fails with code 3011 unless a message tag is given', async () => {
    const subs = sim.snapshot().pages[0]!.subscribers;
    const stale = subs.find(
      (s) => s.last_interaction && Date.parse(s.last_interaction as string) < Date.parse(NOW) - 2 * 86_400_000,
    )!;
    const content = { version: 'v2', content: { messages: [{ type: 'text', text: 'hi' }] } };
    const res = await call('/fb/sending/sendContent', { body: { subscriber_id: stale.id, data: content } });
    expect(res.res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 'error', code: 3011 });
    const tagged = await call('/fb/sending/sendContent', {
      body: { subscriber_id: stale.id, data: content, message_tag: 'ACCOUNT_UPDATE' },
    });
    expect(tagged.body).toEqual({ status: 'success' });
  });
});

describe('manychat rate limits', () => {
  it('limits each operation separately per page key, without Retry-After', async () => {
    const s = await startManyChat({
      seed: 2,
      now: NOW,
      pages: [{ pageId: PAGE, token: TOKEN }],
      rateLimit: { windowMs: 1000, limits: { '/fb/subscriber/getInfo': 3 } },
    });
    try {
      const subId = s.snapshot().pages[0]!.subscribers[0]!.id;
      await alignToWindow(1000);
      const st: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${s.url}/fb/subscriber/getInfo?subscriber_id=${subId}`, { headers: auth });
        st.push(r.status);
        if (r.status === 429) limited = r;
        else await r.arrayBuffer();
      }
      expect(st).toEqual([200, 200, 200, 429]);
      expect(limited!.headers.get('retry-after')).toBeNull();
      expect(((await limited!.json()) as Json).status).toBe('error');
      expect((await fetch(`${s.url}/fb/page/getCustomFields`, { headers: auth })).status).toBe(200);
      expect(s.stats.rateLimited).toBe(1);
    } finally {
      await s.close();
    }
  });
});

describe('manychat External Requests', () => {
  it('full_contact sends Full Contact Data with custom_fields keyed by name and local offsets', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const sub = sim.snapshot().pages[0]!.subscribers[2]!;
    const r = await sim.externalRequest({
      pageId: PAGE,
      subscriberId: sub.id as string,
      url: `${receiver.url}/mc`,
      headers: { 'x-shared-secret': 's3' },
    });
    expect(r.status).toBe(200);
    const got = receiver.received[0]!;
    expect(got.headers['x-shared-secret']).toBe('s3');
    expect(got.headers).not.toHaveProperty('x-hub-signature');
    const body = JSON.parse(got.body) as Json;
    expect(body.key).toBe(`user:${sub.id}`);
    expect(Array.isArray(body.custom_fields)).toBe(false);
    expect(Object.keys(body.custom_fields)).toContain('cliniko_patient_id');
    expect(body.subscribed).toMatch(/\+08:00$/);
  });

  it('custom templates may embed {{user}} as a quoted JSON string; simulateInbound sets last_input_text', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const sub = sim.snapshot().pages[0]!.subscribers[3]!;
    const text = 'Can I book "Thursday" 3pm? 🏄';
    await sim.simulateInbound({
      pageId: PAGE,
      subscriberId: sub.id as string,
      text,
      url: `${receiver.url}/mc`,
      template: 'custom',
    });
    const body = JSON.parse(receiver.received[0]!.body) as Json;
    expect(body.text).toBe(text);
    expect(typeof body.data).toBe('string');
    expect((JSON.parse(body.data as string) as Json).id).toBe(sub.id);
    const info = await call(`/fb/subscriber/getInfo?subscriber_id=${sub.id}`);
    expect(info.body.data.last_input_text).toBe(text);
  });

  it('mutate() fires the configured automation once per inbound message, deterministically', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const a = await startManyChat({ seed: 9, now: NOW, pages: [{ pageId: PAGE, token: TOKEN }] });
    const b = await startManyChat({ seed: 9, now: NOW, pages: [{ pageId: PAGE, token: TOKEN }] });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    a.setAutomation(PAGE, { url: `${receiver.url}/auto` });
    const sum = a.mutate(10);
    b.mutate(10);
    await a.idle();
    const inbound = sum.actions.filter((x) => x.type === 'inbound_message' || x.type === 'subscriber_created').length;
    expect(inbound).toBeGreaterThan(0);
    expect(receiver.received.length).toBe(inbound);
    expect(a.snapshot()).toEqual(b.snapshot());
  });
});
