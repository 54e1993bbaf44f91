import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';
import '@routiq/sdk';
import type { RoutiqConfig } from '../config/types.ts';
import { syncConnection } from '../engine/sync.ts';
import { ingestWebhook } from '../engine/webhooks.ts';
import {
  countDeadLetters,
  getDeadLetter,
  getStatus,
  listDeadLetters,
  replayDeadLetters,
  resolveDeadLetters,
} from './index.ts';

const kinds = await backends();

const HEADER = `# yaml-language-server: $schema=../../schemas/connector.schema.json
spec_version: 1
connection:
  properties:
    base_url: { type: string, format: uri }
  required: [base_url]
base_url: "{{ $config.base_url }}"
auth: { type: none }
`;

const ITEMS = `  - name: items
    request: { path: /items/page }
    records: data
    pagination: { type: page_number, size_param: per_page, size: 10 }
`;

/** Item 7's status is its (invalid) name: one validation dead letter; pushed items keep their bogus status. */
const STRICT_BROKEN = `${HEADER}name: strict
version: 1.0.0
streams:
${ITEMS}    map:
      - target: appointments
        expression: |
          { "external_id": id, "status": $contains(name, "Item 7 ") ? name : "booked", "notes": name }
webhooks:
  verify: { type: none }
  events:
    - name: item_pushed
      when: "event = 'item'"
      records: item
      map:
        - target: appointments
          expression: |
            { "external_id": id, "status": status, "notes": name }
`;

/** The fix: a valid status for every record (and a new version, so the file also differs in length). */
const STRICT_FIXED = `${HEADER}name: strict
version: 1.0.1
streams:
${ITEMS}    map:
      - target: appointments
        expression: |
          { "external_id": id, "status": "booked", "notes": name }
webhooks:
  verify: { type: none }
  events:
    - name: item_pushed
      when: "event = 'item'"
      records: item
      map:
        - target: appointments
          expression: |
            {
              "external_id": id,
              "status": status in ["booked", "cancelled", "did_not_arrive", "arrived"] ? status : "booked",
              "notes": name
            }
`;

/** Item 3 throws in its mapping: one mapping dead letter. */
const LENIENT = `${HEADER}name: lenient
version: 2.0.0
streams:
${ITEMS}    map:
      - target: practitioners
        expression: |
          $contains(name, "Item 3 ") ? $error("no practitioner for item 3") : { "external_id": id, "display_name": name }
`;

function threads(brokenParent: string | undefined): string {
  const path = brokenParent
    ? `"/items/{{ $parent.id }}/{{ $parent.id = '${brokenParent}' ? 'gone' : 'notes' }}"`
    : `"/items/{{ $parent.id }}/notes"`;
  return `${HEADER}name: threads
version: 1.0.0
streams:
${ITEMS}    map:
      - target: conversations
        expression: |
          { "external_id": id, "status": "open", "last_activity_at": updated_at }
  - name: notes
    parent: { stream: items, key: id }
    request: { path: ${path} }
    records: payload
    pagination: { type: id_window, before_page_size: 4, after_page_size: 10 }
    incremental: { cursor_field: id, type: integer, order: none }
    map:
      - target: messages
        expression: |
          {
            "external_id": $string(id),
            "conversation_external_id": item_id,
            "direction": "inbound",
            "sender_type": "patient",
            "content": body,
            "sent_at": $fromMillis(created_at * 1000)
          }
`;
}

describe.each(kinds)('dead letters on %s', (kind) => {
  let t: TestDb;
  let api: TinyApi;
  let threadsApi: TinyApi;
  let dir: string;
  let config: RoutiqConfig;
  const orgA = () => config.organizations[0]!;
  const orgB = () => config.organizations[1]!;
  const orgC = () => config.organizations[2]!;
  const opts = { logger: silentLogger, actor: 'test:replayer', env: {} };
  const sync = (o: RoutiqConfig['organizations'][number]) =>
    syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
  const push = (item: Record<string, unknown>) =>
    ingestWebhook({
      db: t.db,
      config,
      org: orgA(),
      conn: orgA().connections[0]!,
      headers: {},
      rawBody: JSON.stringify({ event: 'item', item }),
      logger: silentLogger,
    });
  const snapshot = (table: string, orgId: string) =>
    t.db.query<{ external_id: string; updated_at: string; spec_version: string }>(
      `select external_id, updated_at::text as updated_at, spec_version from ${table} where organization_id = ? order by external_id`,
      [orgId],
    );

  beforeAll(async () => {
    t = await openTestDb(kind);
    api = await startTinyApi({ items: 25 });
    threadsApi = await startTinyApi({ items: 4, notesPerItem: 3 });
    dir = connectorsDir({
      strict: STRICT_BROKEN,
      lenient: LENIENT,
      threads: threads(threadsApi.items[1]!.id),
    });
    config = testConfig(dir, [
      org('org_dlq_a', [{ connector: 'strict', config: { base_url: api.url } }]),
      org('org_dlq_b', [{ connector: 'lenient', config: { base_url: api.url } }]),
      org('org_dlq_c', [{ connector: 'threads', config: { base_url: threadsApi.url } }]),
    ]);
  });
  afterAll(async () => {
    await api?.close();
    await threadsApi?.close();
    await t?.drop();
  });

  it('(a) a record failing validation, a mapping error, a rejected webhook and a 404 child become dead letters', async () => {
    const a = await sync(orgA());
    expect(a.status).toBe('succeeded');
    expect(a.streams[0]).toMatchObject({ records: 25, inserted: 24, deadLetters: 1 });
    const b = await sync(orgB());
    expect(b.streams[0]).toMatchObject({ records: 25, inserted: 24, deadLetters: 1 });
    // The same pushed record twice, both rejected: two letters of one record (the newer one wins on replay).
    expect((await push({ id: 'w1', name: 'first push', status: 'bogus' })).deadLetters).toBe(1);
    expect((await push({ id: 'w1', name: 'second push', status: 'bogus' })).deadLetters).toBe(1);
    const c = await sync(orgC());
    expect(c.streams.find((s) => s.stream === 'notes')).toMatchObject({ deadLetters: 1, partitions: 3 });
    const state = await t.db.query<{ status: string }>(
      'select status from sync_state where organization_id = ? and stream = ? and partition = ?',
      ['org_dlq_c', 'notes', threadsApi.items[1]!.id],
    );
    expect(state[0]?.status).toBe('error');

    const open = await listDeadLetters(t.db, { resolved: false });
    expect(open).toHaveLength(5);
    const [v] = await listDeadLetters(t.db, { org: 'org_dlq_a', stream: 'items' });
    expect(v).toMatchObject({
      organizationId: 'org_dlq_a',
      connector: 'strict',
      errorClass: 'validation',
      errorCode: 'RQ5002',
      recordKey: api.items[7]!.id,
      specVersion: '1.0.0',
      retryCount: 0,
      resolved: false,
      resolvedAt: null,
    });
    expect(v!.payload).toMatchObject({ id: api.items[7]!.id });
    expect(await getDeadLetter(t.db, v!.id)).toEqual({ ...v, ageSeconds: expect.any(Number) });
  });

  it('(e) list filters: organization, connector, class and groups, age, resolved, limit', async () => {
    const ids = async (f: Parameters<typeof listDeadLetters>[1]) => (await listDeadLetters(t.db, f)).length;
    expect(await ids({ org: 'org_dlq_a' })).toBe(3);
    expect(await ids({ org: 'org_dlq_a', stream: 'webhook:item_pushed' })).toBe(2);
    expect(await ids({ connector: 'lenient' })).toBe(1);
    expect(await ids({ connection: 'threads' })).toBe(1);
    expect(await ids({ class: 'validation' })).toBe(3);
    expect(await ids({ class: 'mapping' })).toBe(1);
    expect(await ids({ class: ['mapping', 'validation'] })).toBe(4);
    expect(await ids({ class: 'record' })).toBe(4);
    expect(await ids({ class: 'request' })).toBe(1);
    expect(await ids({ class: 'permanent', org: 'org_dlq_c' })).toBe(1);
    expect(await ids({ code: 'rq5001' })).toBe(1);
    expect(await ids({ newerThan: '1h' })).toBe(5);
    expect(await ids({ olderThan: '1h' })).toBe(0);
    expect(await ids({ olderThan: 'PT1H' })).toBe(0);
    expect(await ids({ newerThan: '7d', olderThan: '0s' })).toBe(5);
    expect(await ids({ resolved: true })).toBe(0);
    expect(await ids({ limit: 2 })).toBe(2);
    expect(await countDeadLetters(t.db, { limit: 2 })).toBe(5);
    const newestFirst = await listDeadLetters(t.db, {});
    expect(newestFirst[0]!.createdAt >= newestFirst[4]!.createdAt).toBe(true);
    await expect(listDeadLetters(t.db, { class: 'bogus' })).rejects.toMatchObject({ code: 'RQ6001' });
    await expect(listDeadLetters(t.db, { olderThan: '2 fortnights' })).rejects.toMatchObject({ code: 'RQ6001' });
    await expect(getDeadLetter(t.db, 'nope')).rejects.toMatchObject({ code: 'RQ6001' });
    expect(await getDeadLetter(t.db, '00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  it('a replay with the still-broken spec fails again: retry_count + 1, still open; a dry run writes nothing', async () => {
    const dry = await replayDeadLetters(t.db, config, { org: 'org_dlq_a', stream: 'items' }, { ...opts, dryRun: true });
    expect(dry).toEqual([expect.objectContaining({ status: 'failed', dryRun: true, code: 'RQ5002' })]);
    const [before] = await listDeadLetters(t.db, { org: 'org_dlq_a', stream: 'items' });
    expect(before!.retryCount).toBe(0);

    const out = await replayDeadLetters(t.db, config, { org: 'org_dlq_a', stream: 'items' }, opts);
    expect(out).toEqual([expect.objectContaining({ id: before!.id, status: 'failed', code: 'RQ5002', retryCount: 1 })]);
    const after = await getDeadLetter(t.db, before!.id);
    expect(after).toMatchObject({ resolved: false, retryCount: 1, errorClass: 'validation' });
    expect(after!.details.first_error).toMatchObject({ error_code: 'RQ5002', spec_version: '1.0.0' });
  });

  it('(b) after the spec is fixed on disk, replay lands the records in the unified table and resolves them', async () => {
    writeFileSync(path.join(dir, 'strict', 'connector.yaml'), STRICT_FIXED);
    const [letter] = await listDeadLetters(t.db, { org: 'org_dlq_a', stream: 'items' });
    const before = await snapshot('appointments', 'org_dlq_a');
    expect(before).toHaveLength(24);

    const dry = await replayDeadLetters(t.db, config, { org: 'org_dlq_a' }, { ...opts, dryRun: true });
    expect(dry.map((o) => o.status).sort()).toEqual(['replayed', 'replayed', 'superseded']);
    expect(await snapshot('appointments', 'org_dlq_a')).toEqual(before);

    const out = await replayDeadLetters(t.db, config, { org: 'org_dlq_a' }, opts);
    const item = out.find((o) => o.id === letter!.id);
    expect(item).toMatchObject({ status: 'replayed', rows: 1, written: { inserted: 1, updated: 0, unchanged: 0 } });
    const pushed = out.filter((o) => o.stream === 'webhook:item_pushed');
    // Oldest first: the first push is superseded by the second, whose payload is written.
    expect(pushed.map((o) => o.status)).toEqual(['superseded', 'replayed']);

    const rows = await t.db.query<{ external_id: string; status: string; notes: string; spec_version: string }>(
      'select external_id, status, notes, spec_version from appointments where organization_id = ? and external_id in (?, ?) order by external_id',
      ['org_dlq_a', api.items[7]!.id, 'w1'],
    );
    expect(rows).toEqual([
      { external_id: api.items[7]!.id, status: 'booked', notes: api.items[7]!.name, spec_version: '1.0.1' },
      { external_id: 'w1', status: 'booked', notes: 'second push', spec_version: '1.0.1' },
    ]);
    const resolved = await getDeadLetter(t.db, letter!.id);
    expect(resolved).toMatchObject({ resolved: true, resolution: 'replayed', retryCount: 1 });
    expect(resolved!.resolvedAt).not.toBeNull();
    const audit = await t.db.query<{ actor: string; action: string; resource_type: string; n: number }>(
      `select actor, action, resource_type, count(*)::int as n from audit_log where resource_id = ? group by 1, 2, 3 order by 2`,
      [letter!.id],
    );
    // one for the failed attempt, one for the replay
    expect(audit).toEqual([{ actor: 'test:replayer', action: 'dlq.replay', resource_type: 'sync_error', n: 2 }]);
    expect(await countDeadLetters(t.db, { org: 'org_dlq_a', resolved: false })).toBe(0);
  });

  it('(c) replaying again changes nothing', async () => {
    const rows = await snapshot('appointments', 'org_dlq_a');
    expect(rows).toHaveLength(26);
    const letters = await listDeadLetters(t.db, { org: 'org_dlq_a' });
    const auditBefore = await t.db.query<{ n: number }>('select count(*)::int as n from audit_log');

    expect(await replayDeadLetters(t.db, config, { org: 'org_dlq_a' }, opts)).toEqual([]);
    const byId = await replayDeadLetters(
      t.db,
      config,
      letters.map((l) => l.id),
      opts,
    );
    expect(byId.map((o) => o.status)).toEqual(['skipped', 'skipped', 'skipped']);

    expect(await snapshot('appointments', 'org_dlq_a')).toEqual(rows);
    expect(await listDeadLetters(t.db, { org: 'org_dlq_a' })).toEqual(
      letters.map((l) => ({ ...l, ageSeconds: expect.any(Number) })),
    );
    expect(await t.db.query('select count(*)::int as n from audit_log')).toEqual(auditBefore);
  });

  it('a request-level letter re-queues its partition; the next sync fetches it', async () => {
    writeFileSync(path.join(dir, 'threads', 'connector.yaml'), threads(undefined));
    const parent = threadsApi.items[1]!.id;
    const out = await replayDeadLetters(t.db, config, { class: 'permanent' }, opts);
    expect(out).toEqual([
      expect.objectContaining({ organizationId: 'org_dlq_c', stream: 'notes', status: 'requeued' }),
    ]);
    const state = await t.db.query<{ status: string }>(
      'select status from sync_state where organization_id = ? and stream = ? and partition = ?',
      ['org_dlq_c', 'notes', parent],
    );
    expect(state[0]?.status).toBe('pending');
    expect(await getDeadLetter(t.db, out[0]!.id)).toMatchObject({ resolved: true, resolution: 'requeued' });

    const again = await sync(orgC());
    expect(again.streams.find((s) => s.stream === 'notes')).toMatchObject({ partitions: 1, inserted: 3 });
    const n = await t.db.query<{ n: number }>('select count(*)::int as n from messages where organization_id = ?', [
      'org_dlq_c',
    ]);
    expect(n[0]?.n).toBe(threadsApi.notes.length);
    expect(await replayDeadLetters(t.db, config, { class: 'permanent' }, opts)).toEqual([]);
  });

  it('(d) resolve with a reason closes the letter and writes audit_log', async () => {
    const [letter] = await listDeadLetters(t.db, { org: 'org_dlq_b', resolved: false });
    expect(letter).toMatchObject({ errorClass: 'mapping', errorCode: 'RQ5001' });
    const res = await resolveDeadLetters(t.db, [letter!.id, '00000000-0000-4000-8000-000000000000'], {
      resolution: 'item 3 is a test record at the source',
      actor: 'test:alice',
    });
    expect(res).toEqual({
      resolved: [letter!.id],
      skipped: [{ id: '00000000-0000-4000-8000-000000000000', reason: 'not found' }],
    });
    expect(await getDeadLetter(t.db, letter!.id)).toMatchObject({
      resolved: true,
      resolution: 'item 3 is a test record at the source',
    });
    const audit = await t.db.query<Record<string, unknown>>(
      'select organization_id, actor, action, resource_type, resource_id, details from audit_log where resource_id = ?',
      [letter!.id],
    );
    expect(audit).toHaveLength(1);
    const details = typeof audit[0]!.details === 'string' ? JSON.parse(audit[0]!.details) : audit[0]!.details;
    expect({ ...audit[0], details }).toMatchObject({
      organization_id: 'org_dlq_b',
      actor: 'test:alice',
      action: 'dlq.resolve',
      resource_type: 'sync_error',
      resource_id: letter!.id,
      details: { resolution: 'item 3 is a test record at the source', error_code: 'RQ5001', connector: 'lenient' },
    });
    // Resolving again: skipped, no second audit row; a resolved letter is not replayed either.
    const again = await resolveDeadLetters(t.db, [letter!.id], { resolution: 'again', actor: 'test:alice' });
    expect(again).toEqual({ resolved: [], skipped: [{ id: letter!.id, reason: 'already resolved' }] });
    expect(await replayDeadLetters(t.db, config, { org: 'org_dlq_b' }, opts)).toEqual([]);
    expect(await resolveDeadLetters(t.db, { org: 'org_dlq_b' }, { resolution: 'x', actor: 'y' })).toEqual({
      resolved: [],
      skipped: [],
    });
    await expect(resolveDeadLetters(t.db, [letter!.id], { resolution: ' ', actor: 'y' })).rejects.toMatchObject({
      code: 'RQ6001',
    });
  });

  it('status reports runs, checkpoints and open dead letters per organization and connection', async () => {
    const report = await getStatus(t.db, { config });
    expect(report.organizations.map((o) => o.id)).toEqual(['org_dlq_a', 'org_dlq_b', 'org_dlq_c']);
    const a = report.organizations[0]!.connections[0]!;
    expect(a).toMatchObject({ connection: 'strict', connector: 'strict', configured: true, openDeadLetters: 0 });
    expect(a.lastRun).toMatchObject({ status: 'succeeded', records: 25, written: 24, deadLetters: 1 });
    expect(a.lastRun!.correlationId).toMatch(/^sync-/);
    expect(a.running).toEqual([]);
    expect(a.health).toMatchObject({ status: 'ok', paused: false, consecutiveFailures: 0 });
    expect(a.streams).toEqual([
      expect.objectContaining({ stream: 'items', status: 'idle', partitions: 0, pendingPartitions: 0 }),
    ]);
    expect(a.streams[0]!.lastSuccessfulSync).not.toBeNull();
    const c = report.organizations[2]!.connections[0]!;
    expect(c.streams.find((s) => s.stream === 'notes')).toMatchObject({
      partitions: 4,
      pendingPartitions: 0,
      errorPartitions: 0,
    });
    const only = await getStatus(t.db, { org: 'org_dlq_b' });
    expect(only.organizations).toHaveLength(1);
    expect(only.organizations[0]!.connections[0]).toMatchObject({ connection: 'lenient', configured: false });
  });
});
