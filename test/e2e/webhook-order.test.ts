import { ingestWebhook, RoutiqError, type WebhookResult } from '@routiq/runner';
import { type ChatwootSim, signChatwootWebhook, startChatwoot, type WebhookDelivery } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { silentLogger } from '../helpers/engine.ts';

/**
 * Issue #17, "Must show": replayed and out-of-order Chatwoot deliveries, through the real connector and
 * ingestWebhook with properly signed bodies. Each write carries the delivery's signed time (X-Chatwoot-Timestamp):
 * a replay of an older delivery inside the 300 s window never rolls a row back, an update that arrives before its
 * create wins, and a duplicate delivery writes nothing. The bodies are the simulator's own deliveries (its
 * webhooks point at a closed port: each attempt fails, and the exact body sent is kept).
 */
const ACCOUNT = 11;
const TOKEN = 'tok-order';
const SECRET = 'whsec-order';
const DELETED = 'This message was deleted';
const kinds = await backends();

interface Event {
  event: string;
  id: number;
  content: string | null;
  deleted: boolean;
  body: string;
}

function parse(d: WebhookDelivery): Event {
  const p = JSON.parse(d.body) as { id: number; content: string | null; content_attributes?: { deleted?: boolean } };
  return {
    event: d.event,
    id: p.id,
    content: p.content,
    deleted: p.content_attributes?.deleted === true,
    body: d.body,
  };
}

/** Mutate the account until some message was created and then deleted, and another created and then edited. */
async function createdThenChanged(sim: ChatwootSim): Promise<{
  deleted: { create: Event; update: Event };
  edited: { create: Event; update: Event };
  other: Event;
}> {
  for (let step = 0; step < 400; step += 10) {
    sim.mutate(10);
    await sim.webhooks.idle();
    const events = sim.webhooks.deliveries.map(parse);
    const created = new Map(events.filter((e) => e.event === 'message_created').map((e) => [e.id, e]));
    const updates = events.filter((e) => e.event === 'message_updated' && created.has(e.id));
    const del = updates.find((e) => e.deleted);
    const edit = updates.find(
      (e) => !e.deleted && e.content !== created.get(e.id)?.content && events.filter((x) => x.id === e.id).length === 2,
    );
    const other = [...created.values()].find((e) => !events.some((x) => x.id === e.id && x !== e));
    if (del && edit && other)
      return {
        deleted: { create: created.get(del.id)!, update: del },
        edited: { create: created.get(edit.id)!, update: edit },
        other,
      };
  }
  throw new Error('the simulator produced no created-then-deleted and created-then-edited message');
}

describe.each(kinds)('Chatwoot webhook order, replays and duplicates (%s)', (kind) => {
  let t: TestDb;
  let sim: ChatwootSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    sim = await startChatwoot({
      accounts: [{ accountId: ACCOUNT, token: TOKEN, webhookSecret: SECRET }],
      seed: 23,
      scale: 1,
    });
    sim.webhooks.subscribe(ACCOUNT, {
      url: 'http://127.0.0.1:9/closed',
      subscriptions: ['message_created', 'message_updated'],
      secret: SECRET,
    });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('never rolls a message back: replays, late creates and duplicates', async () => {
    const { deleted, edited, other } = await createdThenChanged(sim);
    const env = { CW_TOKEN: TOKEN, CW_SECRET: SECRET };
    const r = connectorRunner(
      t.db,
      'org_webhook_order',
      {
        connector: 'chatwoot',
        config: { base_url: sim.url, account_id: ACCOUNT },
        secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
      },
      env,
    );
    const now = Date.now();
    const at = (secondsAgo: number) => Math.floor(now / 1000) - secondsAgo;
    const deliver = (body: string, ts: number): Promise<WebhookResult> =>
      ingestWebhook({
        db: t.db,
        config: r.config,
        org: r.org,
        conn: r.org.connections[0]!,
        headers: {
          'content-type': 'application/json',
          'x-chatwoot-timestamp': String(ts),
          'x-chatwoot-signature': signChatwootWebhook(SECRET, ts, body),
        },
        rawBody: body,
        logger: silentLogger,
        env,
        now,
      });
    const row = async (id: number) =>
      (
        await t.db.query<Record<string, unknown>>(
          "select * from messages where organization_id = ? and source = 'chatwoot' and external_id = ?",
          [r.org.id, String(id)],
        )
      )[0];

    // 1. Created, deleted through message_updated, then the create replayed (older, still inside the window).
    expect((await deliver(deleted.create.body, at(200))).written).toBeGreaterThan(0);
    expect(await row(deleted.create.id)).toMatchObject({ content: deleted.create.content, deleted_at: null });
    expect((await deliver(deleted.update.body, at(100))).written).toBeGreaterThan(0);
    const gone = await row(deleted.create.id);
    expect(gone).toMatchObject({ content: DELETED });
    expect(gone?.deleted_at).not.toBeNull();
    const replay = await deliver(deleted.create.body, at(200));
    expect(replay).toMatchObject({ status: 'accepted', written: 0, deadLetters: 0 });
    expect(await row(deleted.create.id)).toEqual(gone);
    // The create signed in the same second as its deletion (Chatwoot sends both at once; they arrive in any order)
    // does not undo it either: at one version, the deletion is the later event.
    expect(await deliver(deleted.create.body, at(100))).toMatchObject({ status: 'accepted', written: 0 });
    expect(await row(deleted.create.id)).toEqual(gone);
    // The same replay signed outside the window is refused before anything is read.
    await expect(deliver(deleted.create.body, at(400))).rejects.toSatisfy(
      (e) => e instanceof RoutiqError && e.code === 'RQ5005' && /window/.test(e.message),
    );
    expect(await row(deleted.create.id)).toEqual(gone);

    // 2. An edit delivered before its create: the edit's content stays.
    expect(edited.update.content).not.toBe(edited.create.content);
    await deliver(edited.update.body, at(50));
    expect(await row(edited.update.id)).toMatchObject({ content: edited.update.content });
    const late = await deliver(edited.create.body, at(150));
    expect(late).toMatchObject({ status: 'accepted', written: 0 });
    expect(await row(edited.update.id)).toMatchObject({ content: edited.update.content, deleted_at: null });

    // 3. A delivery received twice writes once; every column of every row it touched is unchanged.
    const snapshot = async () =>
      Promise.all(
        ['messages', 'conversations', 'patient_identities', 'patients'].map((table) =>
          t.db.query(`select * from ${table} where organization_id = ? order by id`, [r.org.id]),
        ),
      );
    const firstTime = await deliver(other.body, at(20));
    expect(firstTime.written).toBeGreaterThan(0);
    const before = await snapshot();
    expect(await deliver(other.body, at(20))).toMatchObject({ status: 'accepted', written: 0, deadLetters: 0 });
    expect(await snapshot()).toEqual(before);
    expect(await row(other.id)).toMatchObject({ content: other.content });

    // 4. A poll and an event in the same second. Polled rows carry their exact fetch time; the header has whole
    // seconds. A deletion signed in the second of a poll that still read the message live must win: REST never
    // re-reads an old message, so a dropped deletion would stay lost (seen as a flaky chatwoot e2e).
    const polledLive = Date.now();
    const sameSecond = Math.floor(polledLive / 1000);
    const live = other;
    await t.db.query(
      "update messages set deleted_at = null, source_version = to_timestamp(?::double precision / 1000) where organization_id = ? and source = 'chatwoot' and external_id = ?",
      [polledLive, r.org.id, String(live.id)],
    );
    const deletion = JSON.stringify({
      ...(JSON.parse(other.body) as Record<string, unknown>),
      event: 'message_updated',
      content: DELETED,
      content_attributes: { deleted: true },
    });
    const dropped = await deliver(deletion, sameSecond);
    expect(dropped.written).toBeGreaterThan(0);
    expect(await row(live.id)).toMatchObject({ content: DELETED });
    expect((await row(live.id))?.deleted_at).not.toBeNull();

    const letters = await t.db.query('select error_code from sync_errors where organization_id = ?', [r.org.id]);
    expect(letters).toEqual([]);
  });
});
