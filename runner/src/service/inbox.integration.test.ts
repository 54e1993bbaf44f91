import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { org, testConfig } from '../../../test/helpers/engine.ts';
import { crossOrganization, forOrganization, transaction } from '../db/tx.ts';
import { ensureOrganization } from '../engine/session.ts';
import { InboxWriter, storeDeliveries, storeDelivery, type ToStore } from './inbox.ts';

const A = 'org_inbox_a';
const B = 'org_inbox_b';
const d = (organizationId: string, deliveryId: string | null, body = '{}'): ToStore => ({
  organizationId,
  connection: 'chatwoot',
  deliveryId,
  headers: { 'content-type': 'application/json' },
  body,
});

describe.each(await backends())('the webhook inbox stores concurrent deliveries in one commit (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    const config = testConfig('/nonexistent', [org(A, []), org(B, [])]);
    for (const o of config.organizations) await ensureOrganization(t.db, o);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const rows = () =>
    t.db.query<{ organization_id: string; delivery_id: string | null; status: string; body: string | null }>(
      'select organization_id, delivery_id, status, body from webhook_inbox order by id',
    );

  it('answers in order; a delivery id seen before or earlier in the batch is a duplicate, per organization', async () => {
    const known = await storeDelivery(forOrganization(t.db, A), d(A, 'y'));
    const out = await storeDeliveries(crossOrganization(t.db, 'test'), [
      d(A, 'x', '{"n":1}'),
      d(A, 'x', '{"n":2}'),
      d(B, 'x', '{"n":3}'),
      d(A, null, '{"n":4}'),
      d(A, 'y', '{"n":5}'),
      d(A, null, '{"n":6}'),
    ]);
    expect(out.map((r) => r.duplicate)).toEqual([false, true, false, false, true, false]);
    expect(new Set([known.id, ...out.map((r) => r.id)]).size).toBe(7);
    expect(await rows()).toEqual([
      { organization_id: A, delivery_id: 'y', status: 'received', body: '{}' },
      { organization_id: A, delivery_id: 'x', status: 'received', body: '{"n":1}' },
      { organization_id: B, delivery_id: 'x', status: 'received', body: '{"n":3}' },
      { organization_id: A, delivery_id: null, status: 'received', body: '{"n":4}' },
      { organization_id: A, delivery_id: null, status: 'received', body: '{"n":6}' },
      { organization_id: A, delivery_id: 'x', status: 'duplicate', body: null },
      { organization_id: A, delivery_id: 'y', status: 'duplicate', body: null },
    ]);
  });

  it('InboxWriter: concurrent stores settle each with its own row once committed', async () => {
    const w = new InboxWriter(t.db);
    const stored = await Promise.all([w.store(d(B, 'w1')), w.store(d(A, 'w1')), w.store(d(B, 'w1'))]);
    expect(stored.map((s) => s.duplicate)).toEqual([false, false, true]);
    const ids = stored.map((s) => s.id);
    const found = await t.db.query<{ id: string; organization_id: string; status: string }>(
      `select id::text as id, organization_id, status from webhook_inbox where id::text in (?, ?, ?) order by id`,
      ids,
    );
    expect(found.map((r) => [r.id, r.organization_id, r.status])).toEqual([
      [ids[0], B, 'received'],
      [ids[1], A, 'received'],
      [ids[2], B, 'duplicate'],
    ]);
  });

  it('InboxWriter commits on a connection of its own: a store completes while every shared connection is held', async () => {
    if (kind === 'embedded') {
      // One connection in all: the inbox shares it (docs/service.md says what that means under load).
      expect(await t.db.reserved?.()).toBe(t.db);
      return;
    }
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const holders: Array<Promise<void>> = [];
    const started: Array<Promise<void>> = [];
    // The shared pool's 10 connections, each in a transaction until released (as processing batches hold them).
    for (let i = 0; i < 10; i++) {
      let began!: () => void;
      started.push(new Promise((r) => (began = r)));
      holders.push(
        transaction(t.db, async (q) => {
          await q('select 1');
          began();
          await released;
        }),
      );
    }
    await Promise.all(started);
    try {
      const w = new InboxWriter(t.db);
      const stored = await w.store(d(A, 'held-pool'));
      expect(stored.duplicate).toBe(false);
      const reserved = await (t.db.reserved as () => Promise<typeof t.db>)();
      expect(reserved.orm).not.toBe(t.db.orm);
      expect(
        await reserved.query<{ status: string }>('select status from webhook_inbox where id = ?::bigint', [stored.id]),
      ).toEqual([{ status: 'received' }]);
    } finally {
      release();
      await Promise.all(holders);
    }
  });

  it('stores bodies byte for byte (quotes, backslashes, dollar signs, placeholders, any script); a body PostgreSQL cannot hold fails alone', async () => {
    const odd = [
      `{"q":"it's \\"quoted\\" \\\\ back"}`,
      '{"d":"$q0123456789abcdef$ $$ $tag$ ? ?? :x"}',
      '{"u":"Zoë — 患者 🦷 \\u0041"}',
      `{"big":"${'x'.repeat(200_000)}"}`,
    ];
    const out = await storeDeliveries(
      crossOrganization(t.db, 'test'),
      odd.map((body, i) => d(A, `odd-${i}`, body)),
    );
    const back = await t.db.query<{ id: string; body: string }>(
      `select id::text as id, body from webhook_inbox where id::text in (${out.map(() => '?').join(', ')}) order by id`,
      out.map((r) => r.id),
    );
    expect(back.map((r) => r.body)).toEqual(odd);
    const w = new InboxWriter(t.db);
    const settled = await Promise.allSettled([
      w.store(d(B, 'nul-ok-1')),
      w.store(d(B, 'nul', '{"a":"\u0000 a raw NUL"}')),
      w.store(d(B, 'nul-ok-2')),
    ]);
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
