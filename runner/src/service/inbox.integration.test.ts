import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { org, testConfig } from '../../../test/helpers/engine.ts';
import { crossOrganization, forOrganization } from '../db/tx.ts';
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
});
