import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec as simpleItemsSpec, threadsSpec } from '../../../test/helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';
import '@routiq/sdk';
import { syncConnection } from './sync.ts';

const kinds = await backends();

const HEADER = `# yaml-language-server: $schema=../../schemas/connector.schema.json
spec_version: 1
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
    secret: { type: string, secret: true }
  required: [base_url]
base_url: "{{ $config.base_url }}"
`;

const ITEM_MAP = `    incremental:
      cursor_field: updated_at
      type: datetime
      order: asc
      send:
        params:
          updated_since: "{{ $cursor }}"
    map:
      - target: practitioners
        expression: |
          { "external_id": id, "display_name": name, "metadata": { "updated_at": updated_at } }
`;

const PAGINATIONS: Record<string, string> = {
  page_number: `    request: { path: /items/page }
    records: data
    pagination: { type: page_number, size_param: per_page, size: 10 }
`,
  offset: `    request: { path: /items/offset }
    records: items
    pagination: { type: offset, limit: 10 }
`,
  cursor: `    request: { path: /items/cursor }
    records: results
    pagination: { type: cursor, token: meta.next, param: cursor }
`,
  next_link_body: `    request: { path: /items/link }
    records: items
    pagination: { type: next_link, path: links.next }
`,
  next_link_header: `    request: { path: /items/header }
    pagination: { type: next_link, from: header }
`,
};

const AUTHS: Record<string, string> = {
  api_key: 'auth: { type: api_key, name: X-Api-Key, value: "{{ $secrets.secret }}" }',
  query: 'auth: { type: api_key, in: query, name: api_key, value: "{{ $secrets.secret }}" }',
  bearer: 'auth: { type: bearer, token: "{{ $secrets.secret }}" }',
  basic: 'auth: { type: basic, username: "{{ $secrets.secret }}" }',
  oauth2:
    'auth: { type: oauth2_client_credentials, token_url: "{{ $config.base_url }}/oauth/token", client_id: routiq, client_secret: "{{ $secrets.secret }}" }',
};

function itemsSpec(name: string, pagination: string, auth = 'auth: { type: none }'): string {
  return `${HEADER}name: ${name}\n${auth}\nstreams:\n  - name: items\n${pagination}${ITEM_MAP}`;
}

describe.each(kinds)('engine on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  describe.each(Object.entries(PAGINATIONS))('pagination %s', (style, pag) => {
    let api: TinyApi;
    beforeAll(async () => {
      api = await startTinyApi({ items: 57 });
    });
    afterAll(() => api.close());

    it('syncs every record exactly, then an unchanged source costs one request and writes nothing', async () => {
      const name = `tiny_${style}`;
      const dir = connectorsDir({ [name]: itemsSpec(name, pag) });
      const o = org(`org_${style}`, [{ connector: name, config: { base_url: api.url } }]);
      const config = testConfig(dir, [o]);
      const first = await syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
      expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
      expect(first.streams[0]).toMatchObject({ records: 57, inserted: 57, deadLetters: 0 });
      const rows = await t.db.query<{ external_id: string; display_name: string }>(
        'select external_id, display_name from practitioners where organization_id = ? order by external_id',
        [o.id],
      );
      expect(rows.map((r) => r.external_id)).toEqual(api.items.map((i) => i.id).sort());
      expect(rows.map((r) => r.display_name)).toEqual(
        [...api.items].sort((a, b) => a.id.localeCompare(b.id)).map((i) => i.name),
      );

      const before = api.total();
      const second = await syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
      expect(second.status).toBe('succeeded');
      expect(api.total() - before).toBe(1);
      expect(second.streams[0]).toMatchObject({ inserted: 0, updated: 0 });

      api.touch([api.items[3]!.id, api.items[40]!.id]);
      api.items[3]!.name = 'renamed';
      const third = await syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
      expect(third.streams[0]).toMatchObject({ records: 2, inserted: 0 });
      const renamed = await t.db.query<{ display_name: string }>(
        'select display_name from practitioners where organization_id = ? and external_id = ?',
        [o.id, api.items[3]!.id],
      );
      expect(renamed[0]?.display_name).toBe('renamed');
      const count = await t.db.query<{ n: string }>(
        'select count(*)::text as n from practitioners where organization_id = ?',
        [o.id],
      );
      expect(count[0]?.n).toBe('57');
    });
  });

  describe.each(Object.entries(AUTHS))('auth %s', (style, auth) => {
    let api: TinyApi;
    beforeAll(async () => {
      api = await startTinyApi({ items: 12, auth: style as 'api_key', secret: 'right-secret' });
    });
    afterAll(() => api.close());

    it('authenticates with the secret from the environment and fails cleanly with a wrong one', async () => {
      const name = `auth_${style}`;
      const dir = connectorsDir({ [name]: itemsSpec(name, PAGINATIONS.page_number!, auth) });
      const o = org(`org_auth_${style}`, [
        { connector: name, config: { base_url: api.url }, secrets: { secret: '${TINY_SECRET}' } },
      ]);
      const config = testConfig(dir, [o]);
      const bad = await syncConnection({
        db: t.db,
        config,
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
        env: { TINY_SECRET: 'wrong' },
      });
      expect(bad.status).toBe('failed');
      expect(bad.errorCode).toMatch(/RQ3003|RQ3004/);
      const good = await syncConnection({
        db: t.db,
        config,
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
        env: { TINY_SECRET: 'right-secret' },
      });
      expect(good.status).toBe('succeeded');
      expect(good.streams[0]?.records).toBe(12);
    });
  });

  describe('parent → child with id windows', () => {
    let api: TinyApi;
    beforeAll(async () => {
      api = await startTinyApi({ items: 6, notesPerItem: 9 });
    });
    afterAll(() => api.close());

    const spec = threadsSpec();
    it('backfills full history, then fetches children only for changed parents, forwards from their cursor', async () => {
      const dir = connectorsDir({ threads: spec });
      const o = org('org_threads', [{ connector: 'threads', config: { base_url: api.url } }]);
      const config = testConfig(dir, [o]);
      const run = () => syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
      const first = await run();
      expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
      const msgs = await t.db.query<{ n: string; linked: string }>(
        'select count(*)::text as n, count(conversation_id)::text as linked from messages where organization_id = ?',
        [o.id],
      );
      expect(msgs[0]).toEqual({ n: '54', linked: '54' });

      const before = api.total();
      const second = await run();
      expect(api.total() - before).toBe(1);
      expect(second.streams.find((s) => s.stream === 'notes')).toMatchObject({ partitions: 0, inserted: 0 });

      const item = api.items[2]!;
      api.addNotes(item.id, 13);
      api.touch([item.id]);
      const reqBefore = api.requests.get(`/items/${item.id}/notes`) ?? 0;
      const third = await run();
      expect(third.streams.find((s) => s.stream === 'notes')).toMatchObject({ partitions: 1, inserted: 13 });
      // after=<cursor>: a full page of 10, then a short page of 3
      expect((api.requests.get(`/items/${item.id}/notes`) ?? 0) - reqBefore).toBe(2);
      const total = await t.db.query<{ n: string }>(
        'select count(*)::text as n from messages where organization_id = ?',
        [o.id],
      );
      expect(total[0]?.n).toBe(String(api.notes.length));
    });
  });

  describe('bad records and throttling', () => {
    let api: TinyApi;
    beforeAll(async () => {
      api = await startTinyApi({ items: 25 });
    });
    afterAll(() => api.close());

    it('a record failing validation goes to the dead-letter store and the run continues', async () => {
      const spec = simpleItemsSpec('strict', {
        target: 'appointments',
        mapping: '{ "external_id": id, "status": $contains(name, "Item 7 ") ? name : "booked", "notes": name }',
      });
      const dir = connectorsDir({ strict: spec });
      const o = org('org_strict', [{ connector: 'strict', config: { base_url: api.url } }]);
      const r = await syncConnection({
        db: t.db,
        config: testConfig(dir, [o]),
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
      });
      expect(r.status).toBe('succeeded');
      expect(r.streams[0]).toMatchObject({ records: 25, inserted: 24, deadLetters: 1 });
      const dl = await t.db.query<{
        error_class: string;
        error_code: string;
        record_key: string;
        payload: unknown;
        spec_version: string;
      }>(
        'select error_class, error_code, record_key, payload, spec_version from sync_errors where organization_id = ?',
        [o.id],
      );
      expect(dl).toHaveLength(1);
      expect(dl[0]).toMatchObject({
        error_class: 'validation',
        error_code: 'RQ5002',
        record_key: api.items[7]!.id,
        spec_version: '1.0.0',
      });
      const payload = typeof dl[0]!.payload === 'string' ? JSON.parse(dl[0]!.payload as string) : dl[0]!.payload;
      expect(payload).toMatchObject({ id: api.items[7]!.id });
    });

    it('429 and 5xx are retried: pagination never ends early and nothing is lost', async () => {
      const name = 'flaky';
      const dir = connectorsDir({ [name]: itemsSpec(name, PAGINATIONS.page_number!) });
      const o = org('org_flaky', [{ connector: name, config: { base_url: api.url } }]);
      api.throttleNext(3);
      const r1 = syncConnection({
        db: t.db,
        config: testConfig(dir, [o]),
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
      });
      const r = await r1;
      expect(r.status).toBe('succeeded');
      expect(r.rateLimited).toBe(3);
      expect(r.streams[0]?.records).toBe(25);
      api.failNext(2, 502);
      const again = await syncConnection({
        db: t.db,
        config: testConfig(dir, [o]),
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
        fullRefresh: true,
      });
      expect(again.status).toBe('succeeded');
      expect(again.streams[0]?.records).toBe(25);
      const n = await t.db.query<{ n: string }>(
        'select count(*)::text as n from practitioners where organization_id = ?',
        [o.id],
      );
      expect(n[0]?.n).toBe('25');
    });
  });
});
