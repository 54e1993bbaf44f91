import { registerHook } from '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';
import { hashRecord } from './record-hash.ts';
import { syncConnection } from './sync.ts';

/** Hooks named by a spec are called where it names them, with a typed context and read-only database access. */
const seen: { orgs: string[]; counts: number[]; stored: number[]; writeRejected: boolean } = {
  orgs: [],
  counts: [],
  stored: [],
  writeRejected: false,
};

registerHook(
  'test.sign_request',
  'before_request',
  (req, ctx) => {
    seen.orgs.push(ctx.organizationId);
    return { ...req, headers: { ...req.headers, 'X-Api-Key': `key-for-${ctx.organizationId}` } };
  },
  'test',
);
registerHook(
  'test.drop_odd',
  'after_fetch',
  async (records, ctx) => {
    const rows = await ctx.db.query<{ n: string }>(
      'select count(*)::text as n from practitioners where organization_id = ?',
      [ctx.organizationId],
    );
    seen.stored.push(Number(rows[0]?.n));
    seen.counts.push(records.length);
    try {
      await ctx.db.query('delete from practitioners');
    } catch {
      seen.writeRejected = true;
    }
    const kept = records.filter((r) => Number(String((r as { id: string }).id).slice(-1)) % 2 === 0);
    // Changed in place: the record's source hash is of what the hook left (record-hash.ts forgets the earlier one).
    for (const r of kept) (r as { hooked?: boolean }).hooked = true;
    return kept;
  },
  'test',
);
registerHook(
  'test.shout',
  'after_map',
  (rows) => rows.map((r) => ({ ...r, row: { ...r.row, display_name: String(r.row.display_name).toUpperCase() } })),
  'test',
);

describe('spec hooks', () => {
  let t: TestDb;
  let api: TinyApi;
  beforeAll(async () => {
    t = await openTestDb('embedded');
    api = await startTinyApi({ items: 20, auth: 'api_key', secret: 'key-for-org_hooks' });
  });
  afterAll(async () => {
    await api?.close();
    await t?.drop();
  });

  it('before_request, after_fetch and after_map run with the organization context', async () => {
    const spec = itemsSpec('hooked', {
      streamExtra:
        '    hooks:\n      before_request: test.sign_request\n      after_fetch: test.drop_odd\n      after_map: test.shout\n',
    });
    const o = org('org_hooks', [{ connector: 'hooked', config: { base_url: api.url } }]);
    const r = await syncConnection({
      db: t.db,
      config: testConfig(connectorsDir({ hooked: spec }), [o]),
      org: o,
      conn: o.connections[0]!,
      logger: silentLogger,
    });
    expect(r.status, JSON.stringify(r.streams)).toBe('succeeded');
    expect(seen.orgs.every((x) => x === 'org_hooks')).toBe(true);
    expect(seen.orgs.length).toBe(r.requests);
    expect(seen.counts).toEqual([10, 10, 0]);
    // the hook reads what earlier pages wrote (5 even ids per page of 10)
    expect(seen.stored).toEqual([0, 5, 10]);
    expect(seen.writeRejected).toBe(true);
    const rows = await t.db.query<{ external_id: string; display_name: string; source_hash: string }>(
      'select external_id, display_name, source_hash from practitioners where organization_id = ? order by external_id',
      ['org_hooks'],
    );
    const even = api.items.filter((i) => Number(i.id.slice(-1)) % 2 === 0);
    expect(rows.map((x) => x.external_id)).toEqual(even.map((i) => i.id).sort());
    const byId = new Map(even.map((i) => [i.id, i]));
    for (const x of rows) expect(x.source_hash).toBe(hashRecord({ ...byId.get(x.external_id), hooked: true }));
    expect(
      rows.every((x) => x.display_name === x.display_name.toUpperCase() && x.display_name.startsWith('ITEM')),
    ).toBe(true);
  });
});
