import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import type { RoutiqConfig } from '../config/types.ts';
import { ensureOrganization, openSession, type Session } from './session.ts';
import { type AuthenticatedDelivery, processWebhook, processWebhooks, type WebhookResult } from './webhooks.ts';

/**
 * Issue #18: `routiq serve` processes the deliveries queued for a connection as one batch. The batch must leave
 * exactly the rows, dead letters and per-delivery results that processing the same deliveries one after another
 * leaves: one organization gets them one at a time, another as one batch, and both are compared.
 */
const SPEC = `${itemsSpec('batched', {
  target: 'appointments',
  mapping: '{ "external_id": id, "status": "booked", "notes": name }',
})}webhooks:
  verify: { type: none }
  events:
    - name: items
      when: "event = 'items'"
      records: '$exists(items) ? items : $error("no items in this delivery")'
      map:
        - target: appointments
          version: "$number($headers.'x-ts')"
          expression: '{ "external_id": id, "status": "booked", "notes": name, "deleted_at": deleted ? "2026-01-01T00:00:00Z" : null }'
`;
const SEQ = 'org_batch_seq';
const BATCH = 'org_batch_all';
const T = 1_800_000_000;

const delivery = (ts: number, payload: unknown): AuthenticatedDelivery => ({
  payload,
  headers: { 'content-type': 'application/json', 'x-ts': String(ts) },
});

/** In arrival order: same rows in several deliveries, out of order, a duplicate, a tie, one unextractable, one refused. */
const DELIVERIES: AuthenticatedDelivery[] = [
  delivery(T + 10, {
    event: 'items',
    items: [
      { id: 'a', name: 'a v2' },
      { id: 'b', name: 'b v1' },
    ],
  }),
  // Older than the one before: must not roll a back.
  delivery(T, { event: 'items', items: [{ id: 'a', name: 'a v1' }] }),
  delivery(T + 20, {
    event: 'items',
    items: [
      { id: 'c', name: 'c v1' },
      // Without a name: refused in the smaller batch of the rows that set no notes, the larger one is not split.
      { id: 'bad' },
    ],
  }),
  // Its records cannot be extracted: a dead letter of its own.
  delivery(T + 5, { event: 'items', item: { id: 'x', name: 'x' } }),
  // A duplicate of part of an earlier delivery.
  delivery(T + 20, { event: 'items', items: [{ id: 'c', name: 'c v1' }] }),
  // No name: its row leaves notes alone (a statement shared with rows that set notes must not null it).
  delivery(T + 30, { event: 'items', items: [{ id: 'b' }] }),
  // One version, deleted then a live copy: the deletion is the later event whatever the order.
  delivery(T + 40, { event: 'items', items: [{ id: 'd', name: 'd gone', deleted: true }] }),
  delivery(T + 40, { event: 'items', items: [{ id: 'd', name: 'd live' }] }),
  // An update whose create arrives after it.
  delivery(T + 50, { event: 'items', items: [{ id: 'e', name: 'e v2' }] }),
  delivery(T + 45, {
    event: 'items',
    items: [
      { id: 'e', name: 'e v1' },
      { id: 'f', name: 'f v1' },
    ],
  }),
  // Not an event of the spec: ignored.
  delivery(T + 60, { event: 'other' }),
];

describe.each(await backends())('a batch of webhook deliveries equals processing them one at a time (%s)', (kind) => {
  let t: TestDb;
  let config: RoutiqConfig;
  const session = (id: string): Promise<Session> => {
    const o = config.organizations.find((x) => x.id === id)!;
    return openSession({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger, env: {} });
  };

  beforeAll(async () => {
    t = await openTestDb(kind);
    const conn = { connector: 'batched', config: { base_url: 'http://127.0.0.1:9' } };
    config = testConfig(connectorsDir({ batched: SPEC }), [org(SEQ, [conn]), org(BATCH, [conn])]);
    for (const o of config.organizations) await ensureOrganization(t.db, o);
    // A data error (SQLSTATE class 22) for one record: the database refuses it, in any batch it is part of.
    await t.db.query(`create function refuse_bad() returns trigger language plpgsql as $$
      begin raise exception 'bad is refused' using errcode = '22023'; end $$`);
    await t.db.query(`create trigger refuse_bad before insert or update on appointments for each row
      when (new.external_id = 'bad') execute function refuse_bad()`);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const rows = (orgId: string) =>
    t.db.query<Record<string, unknown>>(
      `select external_id, status, notes, deleted_at is not null as deleted, extract(epoch from source_version)::bigint::text as version
       from appointments where organization_id = ? order by external_id`,
      [orgId],
    );
  const letters = (orgId: string) =>
    t.db.query<Record<string, unknown>>(
      'select stream, error_class, error_code, record_key from sync_errors where organization_id = ? order by error_code, record_key',
      [orgId],
    );
  const withoutWritten = (r: WebhookResult) => ({ ...r, written: undefined });

  it('rows, dead letters and results equal those of the deliveries one after another', async () => {
    const one: WebhookResult[] = [];
    const seq = await session(SEQ);
    for (const d of DELIVERIES) one.push(await processWebhook(seq, d));
    const all = await processWebhooks(await session(BATCH), DELIVERIES);

    const expected = await rows(SEQ);
    expect(expected).toEqual([
      { external_id: 'a', status: 'booked', notes: 'a v2', deleted: false, version: String(T + 10) },
      { external_id: 'b', status: 'booked', notes: 'b v1', deleted: false, version: String(T + 10) },
      { external_id: 'c', status: 'booked', notes: 'c v1', deleted: false, version: String(T + 20) },
      { external_id: 'd', status: 'booked', notes: 'd gone', deleted: true, version: String(T + 40) },
      { external_id: 'e', status: 'booked', notes: 'e v2', deleted: false, version: String(T + 50) },
      { external_id: 'f', status: 'booked', notes: 'f v1', deleted: false, version: String(T + 45) },
    ]);
    expect(await rows(BATCH)).toEqual(expected);

    const expectedLetters = await letters(SEQ);
    expect(expectedLetters).toEqual([
      { stream: 'webhook:items', error_class: 'mapping', error_code: 'RQ5001', record_key: null },
      { stream: 'webhook:items', error_class: 'write', error_code: 'RQ5004', record_key: 'bad' },
    ]);
    expect(await letters(BATCH)).toEqual(expectedLetters);

    // Per delivery: the same status, events, records and dead letters (the refused record its delivery's alone).
    expect(all.map(withoutWritten)).toEqual(one.map(withoutWritten));
    expect(all.map((r) => r.deadLetters)).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    // A row several deliveries carry is written once: the totals agree, and the deliveries that changed nothing
    // one at a time (the older a, the deleted d's live copy) changed nothing in the batch either.
    const total = (rs: WebhookResult[]) => rs.reduce((n, r) => n + r.written, 0);
    expect(total(all)).toBe(total(one));
    expect([all[1]?.written, all[7]?.written]).toEqual([0, 0]);
  });
});
