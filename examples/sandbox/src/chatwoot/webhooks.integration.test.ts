import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver } from '../test-utils.ts';
import { startChatwoot } from './server.ts';
import { ALLOWED_WEBHOOK_EVENTS, signChatwootWebhook } from './webhooks.ts';

const NOW = '2025-11-24T00:00:00Z';
const TOKEN = 'tok-webhooks-00000000000';
type Json = Record<string, any>;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(opts: { timeoutMs?: number; respond?: Parameters<typeof startReceiver>[0] } = {}) {
  const receiver = await startReceiver(opts.respond);
  const sim = await startChatwoot({
    seed: 4,
    now: NOW,
    accounts: [{ accountId: 3, token: TOKEN, name: 'Surf Rehab' }],
    ...(opts.timeoutMs ? { webhookTimeoutMs: opts.timeoutMs } : {}),
  });
  cleanups.push(
    () => sim.close(),
    () => receiver.close(),
  );
  return { receiver, sim };
}

describe('chatwoot webhooks', () => {
  it('creates a webhook through the real route and returns its secret', async () => {
    const { sim, receiver } = await setup();
    const res = await fetch(`${sim.url}/api/v1/accounts/3/webhooks`, {
      method: 'POST',
      headers: { api_access_token: TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${receiver.url}/hook`, subscriptions: ['message_created', 'contact_updated'] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.payload.webhook).toMatchObject({
      url: `${receiver.url}/hook`,
      account_id: 3,
      subscriptions: ['message_created', 'contact_updated'],
    });
    expect(body.payload.webhook.secret).toMatch(/^[1-9A-Za-z]{24}$/);
    const list = (await (
      await fetch(`${sim.url}/api/v1/accounts/3/webhooks`, { headers: { api_access_token: TOKEN } })
    ).json()) as Json;
    expect(list.payload.webhooks).toHaveLength(1);

    const dup = await fetch(`${sim.url}/api/v1/accounts/3/webhooks`, {
      method: 'POST',
      headers: { api_access_token: TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ webhook: { url: `${receiver.url}/hook`, subscriptions: ['message_created'] } }),
    });
    expect(dup.status).toBe(422);
    expect(await dup.json()).toEqual({ message: 'Url has already been taken', attributes: ['url'] });
    const bad = await fetch(`${sim.url}/api/v1/accounts/3/webhooks`, {
      method: 'POST',
      headers: { api_access_token: TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${receiver.url}/other`, subscriptions: ['message_deleted'] }),
    });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as Json).attributes).toEqual(['subscriptions']);
  });

  it('signs every delivery: sha256=HMAC(secret, "<ts>.<body>"), with timestamp and delivery id', async () => {
    const { sim, receiver } = await setup();
    const hook = sim.webhooks.subscribe(3, {
      url: `${receiver.url}/hook`,
      subscriptions: [...ALLOWED_WEBHOOK_EVENTS],
      secret: 'shh-secret',
    });
    sim.mutate(8);
    await sim.webhooks.idle();
    expect(receiver.received.length).toBeGreaterThan(5);
    const deliveryIds = new Set<string>();
    for (const r of receiver.received) {
      const ts = r.headers['x-chatwoot-timestamp'] as string;
      const expected = `sha256=${createHmac('sha256', hook.secret).update(`${ts}.${r.body}`).digest('hex')}`;
      expect(r.headers['x-chatwoot-signature']).toBe(expected);
      expect(signChatwootWebhook('shh-secret', ts, r.body)).toBe(expected);
      expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(30);
      expect(r.headers['content-type']).toBe('application/json');
      deliveryIds.add(r.headers['x-chatwoot-delivery'] as string);
    }
    expect(deliveryIds.size).toBe(receiver.received.length);
  });

  it('sends message events with STRING message_type and ISO created_at, never activity, private notes included', async () => {
    const { sim, receiver } = await setup();
    sim.webhooks.subscribe(3, { url: `${receiver.url}/hook`, subscriptions: ['message_created', 'message_updated'] });
    sim.mutate(40);
    await sim.webhooks.idle();
    const events = receiver.received.map((r) => JSON.parse(r.body) as Json);
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) {
      expect(['message_created', 'message_updated']).toContain(e.event);
      expect(['incoming', 'outgoing', 'template']).toContain(e.message_type);
      expect(e.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(e.account).toEqual({ id: 3, name: 'Surf Rehab' });
      expect(typeof e.conversation.updated_at).toBe('number');
    }
    const incoming = events.find((e) => e.message_type === 'incoming')!;
    expect(incoming.sender).not.toHaveProperty('type');
    expect(incoming.sender.account).toEqual({ id: 3, name: 'Surf Rehab' });
    const fromAgent = events.find((e) => e.sender?.type === 'user');
    expect(fromAgent).toBeDefined();
    const updated = events.filter((e) => e.event === 'message_updated');
    expect(updated.length).toBeGreaterThan(0);
    const deleted = updated.find((e) => e.content_attributes?.deleted === true);
    if (deleted) expect(deleted.content).toBe('This message was deleted');
    expect(events.some((e) => e.private === true)).toBe(true);
  });

  it('sends contact and conversation events in their own shapes', async () => {
    const { sim, receiver } = await setup();
    sim.webhooks.subscribe(3, {
      url: `${receiver.url}/hook`,
      subscriptions: [
        'contact_created',
        'contact_updated',
        'conversation_created',
        'conversation_status_changed',
        'conversation_updated',
      ],
    });
    sim.mutate(40);
    await sim.webhooks.idle();
    const events = receiver.received.map((r) => JSON.parse(r.body) as Json);
    const contact = events.find((e) => e.event === 'contact_updated')!;
    expect(contact).not.toHaveProperty('type');
    expect(Array.isArray(contact.changed_attributes)).toBe(true);
    const status = events.find((e) => e.event === 'conversation_status_changed')!;
    expect(status.changed_attributes.some((c: Json) => 'status' in c)).toBe(true);
    expect(status.meta.sender.type).toBe('contact');
    expect(Number.isInteger(status.created_at)).toBe(true);
    expect(events.some((e) => e.event === 'conversation_created')).toBe(true);
  });

  it('delivers once, with no retry on 500 and a timeout', async () => {
    const { sim, receiver } = await setup({
      timeoutMs: 200,
      respond: (_r, n) => (n % 2 === 0 ? { status: 500 } : { delayMs: 600 }),
    });
    sim.webhooks.subscribe(3, { url: `${receiver.url}/hook`, subscriptions: ['message_created'] });
    sim.mutate(10);
    await sim.webhooks.idle();
    const d = sim.webhooks.deliveries;
    expect(d.length).toBeGreaterThan(1);
    // Each delivery reached the receiver at most once (no retry). Not every one need arrive whole: on a busy
    // machine the sim's 200 ms timeout can end a request before its body is read.
    const got = receiver.received.map((r) => r.headers['x-chatwoot-delivery'] as string);
    expect(new Set(got).size).toBe(got.length);
    expect(got.every((id) => d.some((x) => x.deliveryId === id))).toBe(true);
    expect(got.length).toBeGreaterThan(0);
    expect(d.some((x) => x.error === 'timeout')).toBe(true);
    expect(d.some((x) => x.status === 500)).toBe(true);
    expect(new Set(d.map((x) => x.deliveryId)).size).toBe(d.length);
  });

  it('uses the account webhookSecret for webhooks created without one', async () => {
    const receiver = await startReceiver();
    const sim = await startChatwoot({
      seed: 4,
      now: NOW,
      accounts: [{ accountId: 3, token: TOKEN, webhookSecret: 'acct-secret' }],
    });
    cleanups.push(
      () => sim.close(),
      () => receiver.close(),
    );
    const hook = sim.webhooks.subscribe(3, { url: `${receiver.url}/h`, subscriptions: ['message_created'] });
    expect(hook.secret).toBe('acct-secret');
  });
});
