import { type ChatwootSim, signChatwootWebhook, startChatwoot, type WebhookDelivery } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR, connectorRunner, iso } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService } from './serve-harness.ts';

/**
 * Issue #18, "Must show": Chatwoot webhooks through `routiq serve` over a real port. Refusals (bad signature, stale
 * timestamp, another organization's path, malformed JSON, oversized, unknown path) answer 4xx and write nothing;
 * valid deliveries are stored and processed once; a replayed delivery id is answered as a duplicate; deliveries
 * out of order (an edit or a deletion before its create) end in the newer state; redelivering everything in reverse
 * changes no row; and the rows equal what a sync of the same account into a fresh database produces.
 *
 * The bodies are the simulator's own deliveries (its webhook points at a closed port and keeps each exact body),
 * taken one mutation at a time so their order is known; each is signed again with a timestamp that follows that
 * order, as Chatwoot's own clock would.
 */
const A = { org: 'org_serve_a', account: 11, token: 'tok-serve-a', secret: 'whsec-serve-a' };
const B = { org: 'org_serve_b', account: 12, token: 'tok-serve-b', secret: 'whsec-serve-b' };
const env = { CW_TOKEN_A: A.token, CW_SECRET_A: A.secret, CW_TOKEN_B: B.token, CW_SECRET_B: B.secret };
const DELETED = 'This message was deleted';
const BODY_LIMIT = 64 * 1024;
const kinds = await backends();

interface Event {
  seq: number;
  event: string;
  messageId: number;
  content: string | null;
  deleted: boolean;
  delivery: WebhookDelivery;
}

function connection(sim: ChatwootSim, x: typeof A, suffix: 'A' | 'B') {
  return {
    connector: 'chatwoot',
    config: { base_url: sim.url, account_id: x.account },
    secrets: { api_token: `\${CW_TOKEN_${suffix}}`, webhook_secret: `\${CW_SECRET_${suffix}}` },
  };
}

/**
 * Mutate one step at a time (so the order of deliveries is the order of events) until some message was created
 * and then deleted, another created and then edited, and a few more arrived.
 */
async function collectEvents(sim: ChatwootSim): Promise<{
  events: Event[];
  deleted: { create: Event; update: Event };
  edited: { create: Event; update: Event };
}> {
  const events: Event[] = [];
  for (let step = 0; step < 400; step++) {
    const before = sim.webhooks.deliveries.length;
    sim.mutate(1);
    await sim.webhooks.idle();
    const fresh = sim.webhooks.deliveries.slice(before);
    const ids = fresh.map((d) => (JSON.parse(d.body) as { id: number }).id);
    // Deliveries of one step finish in any order: one step must not touch a message twice.
    expect(new Set(ids).size, `step ${step} delivered one message twice`).toBe(ids.length);
    for (const d of fresh) {
      const p = JSON.parse(d.body) as {
        id: number;
        content: string | null;
        content_attributes?: { deleted?: boolean };
      };
      events.push({
        seq: events.length,
        event: d.event,
        messageId: p.id,
        content: p.content,
        deleted: p.content_attributes?.deleted === true,
        delivery: d,
      });
    }
    const created = new Map(events.filter((e) => e.event === 'message_created').map((e) => [e.messageId, e]));
    const later = (e: Event) => events.filter((x) => x.messageId === e.messageId && x.seq > e.seq);
    const del = events.find((e) => e.event === 'message_updated' && e.deleted && created.has(e.messageId));
    const edit = events.find(
      (e) =>
        e.event === 'message_updated' &&
        !e.deleted &&
        created.has(e.messageId) &&
        e.content !== created.get(e.messageId)?.content &&
        later(e).length === 0,
    );
    if (del && edit && events.length >= 12)
      return {
        events,
        deleted: { create: created.get(del.messageId)!, update: del },
        edited: { create: created.get(edit.messageId)!, update: edit },
      };
  }
  throw new Error('the simulator produced no created-then-deleted and created-then-edited message');
}

describe.each(kinds)('routiq serve: Chatwoot webhooks over HTTP (%s)', (kind) => {
  let sim: ChatwootSim;
  let svc: RunningService;
  let polled: TestDb | undefined;
  beforeAll(async () => {
    sim = await startChatwoot({
      accounts: [
        { accountId: A.account, token: A.token, webhookSecret: A.secret },
        { accountId: B.account, token: B.token, webhookSecret: B.secret },
      ],
      seed: 31,
      scale: 1,
    });
    sim.webhooks.subscribe(A.account, {
      url: 'http://127.0.0.1:9/closed',
      subscriptions: ['message_created', 'message_updated'],
      secret: A.secret,
    });
    const config = testConfig(
      CONNECTORS_DIR,
      [org(A.org, [connection(sim, A, 'A')]), org(B.org, [connection(sim, B, 'B')])],
      { deadlineSeconds: 300 },
    );
    svc = await startService(kind, config, env, { bodyLimitBytes: BODY_LIMIT });
  });
  afterAll(async () => {
    await svc?.close();
    await polled?.drop();
    await sim?.close();
  });

  const hook = (orgId: string, conn = 'chatwoot') => `${svc.url}/webhooks/${orgId}/${conn}`;
  const signed = (body: string, o: { secret?: string; ts: number; delivery?: string }) => ({
    'x-chatwoot-timestamp': String(o.ts),
    'x-chatwoot-signature': signChatwootWebhook(o.secret ?? A.secret, o.ts, body),
    ...(o.delivery ? { 'x-chatwoot-delivery': o.delivery } : {}),
  });
  const inbox = (orgId: string) =>
    svc.db.query<{
      id: string;
      status: string;
      reason: string | null;
      body: string | null;
      headers: unknown;
      attempts: number;
      delivery_id: string | null;
      result: unknown;
    }>(
      'select id::text as id, status, reason, body, headers, attempts, delivery_id, result from webhook_inbox where organization_id = ? order by webhook_inbox.id',
      [orgId],
    );
  const count = async (table: string, orgId: string) =>
    Number(
      (
        await svc.db.query<{ n: string }>(`select count(*)::text as n from ${table} where organization_id = ?`, [orgId])
      )[0]?.n,
    );
  const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, unknown>;
  let collected: Awaited<ReturnType<typeof collectEvents>>;
  let now = 0;
  // One second apart so their order is known, and centred on the suite's start: the 300 s window must still hold
  // them minutes later on a loaded machine (the third test redelivers them with these same timestamps).
  const tsOf = (e: Event) => now - 60 + e.seq;

  it('refuses bad signatures, stale timestamps, other organizations, malformed and oversized bodies, unknown paths', async () => {
    collected = await collectEvents(sim);
    expect(collected.events.length).toBeLessThan(300);
    now = Math.floor(Date.now() / 1000);
    const body = collected.events[0]!.delivery.body;

    const bad = await post(hook(A.org), body, signed(body, { secret: 'not-the-secret', ts: now, delivery: 'd-bad' }));
    expect(bad).toEqual({ status: 401, body: { error: 'webhook rejected: bad signature' } });
    const stale = await post(hook(A.org), body, signed(body, { ts: now - 400, delivery: 'd-stale' }));
    expect(stale.status).toBe(401);
    expect(String(stale.body.error)).toMatch(/timestamp outside the allowed window/);
    // Signed with organization A's secret, posted to organization B's path.
    const crossed = await post(hook(B.org), body, signed(body, { ts: now, delivery: 'd-crossed' }));
    expect(crossed).toEqual({ status: 401, body: { error: 'webhook rejected: bad signature' } });
    const malformed = '{"event": "message_created", "id": ';
    const broken = await post(hook(A.org), malformed, signed(malformed, { ts: now, delivery: 'd-malformed' }));
    expect(broken.status).toBe(400);
    expect(String(broken.body.error)).toMatch(/^webhook body is not JSON/);
    const padded = JSON.stringify({ ...JSON.parse(body), padding: 'x'.repeat(BODY_LIMIT) });
    const big = await post(hook(A.org), padded, signed(padded, { ts: now, delivery: 'd-big' }));
    expect(big).toMatchObject({ status: 413, body: { error: expect.stringMatching(/too large/i) } });
    expect((await post(hook('org_nobody'), body, signed(body, { ts: now }))).status).toBe(404);
    expect((await post(hook(A.org, 'cliniko'), body, signed(body, { ts: now }))).status).toBe(404);
    await svc.service.idle();

    // Each refusal that reached the service is recorded with its reason, never with its body or signature.
    const rowsA = await inbox(A.org);
    expect(rowsA.map((r) => [r.status, r.delivery_id, r.body, r.attempts])).toEqual([
      ['rejected', null, null, 0],
      ['rejected', null, null, 0],
      ['rejected', null, null, 0],
      ['rejected', null, null, 0],
    ]);
    // The oversized one is refused before its handler runs, and recorded all the same.
    expect(rowsA.map((r) => r.reason)).toEqual([
      'webhook rejected: bad signature',
      expect.stringMatching(/^webhook rejected: timestamp outside the allowed window/),
      expect.stringMatching(/^webhook body is not JSON/),
      expect.stringMatching(/^HTTP 413: .*too large/i),
    ]);
    for (const r of rowsA) {
      const h = json(r.headers);
      expect(h['x-chatwoot-delivery']).toMatch(/^d-(bad|stale|malformed|big)$/);
      expect(h['x-chatwoot-signature']).toBeUndefined();
    }
    expect((await inbox(B.org)).map((r) => [r.status, r.reason, r.body])).toEqual([
      ['rejected', 'webhook rejected: bad signature', null],
    ]);
    for (const o of [A.org, B.org]) for (const t of ['messages', 'conversations']) expect(await count(t, o)).toBe(0);
  });

  it('processes valid deliveries once, answers a replayed delivery id as a duplicate, keeps the newer of out-of-order deliveries', async () => {
    const { events, deleted, edited } = collected;
    // Arrival order: the deletion before its create, the edit before its create, the rest in event order.
    const early = [deleted.update, deleted.create, edited.update, edited.create];
    const rest = events.filter((e) => !early.includes(e));
    const deliver = (e: Event, delivery = e.delivery.deliveryId) =>
      post(hook(A.org), e.delivery.body, signed(e.delivery.body, { ts: tsOf(e), delivery }));
    const row = async (id: number) =>
      (
        await svc.db.query<Record<string, unknown>>(
          "select content, deleted_at from messages where organization_id = ? and source = 'chatwoot' and external_id = ?",
          [A.org, String(id)],
        )
      )[0];

    for (const e of early) {
      const r = await deliver(e);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expect(r.body).toMatchObject({ status: 'accepted', id: expect.any(String) });
      await svc.service.idle();
    }
    expect(await row(deleted.create.messageId)).toMatchObject({ content: DELETED, deleted_at: expect.anything() });
    expect(edited.update.content).not.toBe(edited.create.content);
    expect(await row(edited.create.messageId)).toMatchObject({ content: edited.update.content, deleted_at: null });

    // The rest arrive back to back; processing runs concurrently behind the 202 answers.
    const answers = await Promise.all(rest.map((e) => deliver(e)));
    expect(answers.map((a) => a.status)).toEqual(rest.map(() => 202));
    await svc.service.idle();

    // Chatwoot's retry of a delivery (same X-Chatwoot-Delivery): a 200 duplicate, stored without a body, not processed.
    const replay = await deliver(deleted.create);
    expect(replay).toEqual({ status: 200, body: { status: 'duplicate', id: expect.any(String) } });
    // The same event under a new delivery id is processed and changes nothing.
    const again = await deliver(edited.create, 'another-delivery-id');
    expect(again.status).toBe(202);
    await svc.service.idle();
    expect(await row(deleted.create.messageId)).toMatchObject({ content: DELETED, deleted_at: expect.anything() });
    expect(await row(edited.create.messageId)).toMatchObject({ content: edited.update.content, deleted_at: null });

    const rows = (await inbox(A.org)).filter((r) => r.status !== 'rejected');
    const byDelivery = new Map<string, typeof rows>();
    for (const r of rows) byDelivery.set(String(r.delivery_id), [...(byDelivery.get(String(r.delivery_id)) ?? []), r]);
    expect(rows.filter((r) => r.status === 'processed').length).toBe(events.length + 1);
    expect(rows.filter((r) => r.status !== 'processed')).toEqual([
      expect.objectContaining({
        status: 'duplicate',
        delivery_id: deleted.create.delivery.deliveryId,
        body: null,
        attempts: 0,
        result: null,
      }),
    ]);
    // Every stored delivery was processed exactly once.
    for (const r of rows.filter((x) => x.status === 'processed')) {
      expect(r.attempts).toBe(1);
      expect(r.body).not.toBeNull();
      expect(json(r.result)).toMatchObject({ status: 'accepted', events: ['message'], deadLetters: 0 });
    }
    expect(json(byDelivery.get('another-delivery-id')?.[0]?.result)).toMatchObject({ written: 0 });
    expect(json(byDelivery.get(deleted.create.delivery.deliveryId)?.[0]?.result)).toMatchObject({ written: 0 });
    expect(json(byDelivery.get(edited.create.delivery.deliveryId)?.[0]?.result)).toMatchObject({ written: 0 });
    const letters = await svc.db.query('select error_code, message from sync_errors where organization_id = ?', [
      A.org,
    ]);
    expect(letters).toEqual([]);
  });

  const MESSAGE_COLUMNS =
    'external_id, conversation_external_id, direction, sender_type, sender_external_id, content, content_type, is_private, sent_at, deleted_at';
  const messages = async (db: TestDb['db']) =>
    (
      await db.query<Record<string, unknown> & { external_id: string; conversation_external_id: string }>(
        `select ${MESSAGE_COLUMNS} from messages where organization_id = ? and source = 'chatwoot' order by external_id`,
        [A.org],
      )
    ).map((m) => ({ ...m, sent_at: iso(m.sent_at), deleted_at: iso(m.deleted_at) }));

  it('redelivering everything in reverse changes nothing; the rows equal what polling the same account produces', async () => {
    const snapshot = () =>
      Promise.all(
        ['messages', 'conversations', 'attachments', 'patient_identities', 'patients'].map((table) =>
          svc.db.query(`select * from ${table} where organization_id = ? order by id`, [A.org]),
        ),
      );
    const before = await snapshot();
    const reversed = [...collected.events].reverse();
    for (const [i, e] of reversed.entries()) {
      const r = await post(
        hook(A.org),
        e.delivery.body,
        signed(e.delivery.body, { ts: tsOf(e), delivery: `redelivery-${i}` }),
      );
      expect(r.status).toBe(202);
    }
    await svc.service.idle();
    expect(await snapshot()).toEqual(before);
    const redelivered = (await inbox(A.org)).filter((r) => r.delivery_id?.startsWith('redelivery-'));
    expect(redelivered.map((r) => [r.status, r.attempts, json(r.result).written])).toEqual(
      reversed.map(() => ['processed', 1, 0]),
    );

    // No natural key twice (the unique constraints say so too): one row per message the deliveries named.
    const pushed = await messages(svc.db);
    expect(new Set(pushed.map((m) => m.external_id)).size).toBe(pushed.length);
    expect(new Set(pushed.map((m) => m.external_id))).toEqual(
      new Set(collected.events.map((e) => String(e.messageId))),
    );

    // The same account polled into a fresh database: every message the webhooks wrote has the polled row's values
    // (messages of conversations deleted since have no REST listing and no webhook, and are left out).
    polled = await openTestDb(kind);
    const r = connectorRunner(polled.db, A.org, connection(sim, A, 'A'), env);
    const sync = await r.sync();
    expect(sync.status, JSON.stringify(sync.streams)).toBe('succeeded');
    const fromRest = new Map((await messages(polled.db)).map((m) => [m.external_id, m]));
    const goneConversations = new Set(sim.snapshot().accounts[0]!.deleted.conversations.map(String));
    let compared = 0;
    for (const m of pushed) {
      const rest = fromRest.get(m.external_id);
      if (!rest) {
        expect(goneConversations.has(String(m.conversation_external_id)), `message ${String(m.external_id)}`).toBe(
          true,
        );
        continue;
      }
      expect(m, `message ${String(m.external_id)}`).toEqual(rest);
      compared++;
    }
    expect(compared).toBeGreaterThan(pushed.length / 2);
    expect(fromRest.get(String(collected.deleted.create.messageId))).toMatchObject({ content: DELETED });
    expect(fromRest.get(String(collected.edited.create.messageId))).toMatchObject({
      content: collected.edited.update.content,
    });

    // Their conversations and attachments as polling has them, and every message linked to its conversation.
    const convs = (db: TestDb['db']) =>
      db.query<Record<string, unknown>>(
        "select external_id, patient_external_id, channel, inbox, started_at from conversations where organization_id = ? and source = 'chatwoot' order by external_id",
        [A.org],
      );
    const restConvs = new Map((await convs(polled.db)).map((c) => [c.external_id, c]));
    for (const c of await convs(svc.db)) {
      const rest = restConvs.get(c.external_id);
      if (rest) expect({ ...c, started_at: iso(c.started_at) }).toEqual({ ...rest, started_at: iso(rest.started_at) });
    }
    const atts = (db: TestDb['db']) =>
      db.query<Record<string, unknown>>(
        "select external_id, message_external_id, file_type, url, content_type, size from attachments where organization_id = ? and source = 'chatwoot' order by external_id",
        [A.org],
      );
    const restAtts = new Map((await atts(polled.db)).map((a) => [a.external_id, a]));
    for (const a of await atts(svc.db)) if (restAtts.has(a.external_id)) expect(a).toEqual(restAtts.get(a.external_id));
    const unlinked = await svc.db.query(
      'select external_id from messages where organization_id = ? and conversation_id is null',
      [A.org],
    );
    expect(unlinked).toEqual([]);
  });
});
