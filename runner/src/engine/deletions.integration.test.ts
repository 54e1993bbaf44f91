import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';
import '@routiq/sdk';
import { syncConnection } from './sync.ts';

/**
 * `deletions: { detect: absent_after_full_listing }`: a record the platform stops returning is soft-deleted after
 * a complete listing only — never after one that failed midway or stopped at max_pages — keeps its mark across
 * such listings, is restored when it comes back, and is never hard-deleted.
 */
const kinds = await backends();

function spec(name: string, extra = '', incremental = ''): string {
  return `# yaml-language-server: $schema=../../schemas/connector.schema.json
spec_version: 1
name: ${name}
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
  required: [base_url]
base_url: "{{ $config.base_url }}"
auth: { type: none }
streams:
  - name: items
    request: { path: /items/page }
    records: data
    pagination: { type: page_number, size_param: per_page, size: 10${extra} }
    deletions: { detect: absent_after_full_listing }
${incremental}    map:
      - target: practitioners
        expression: |
          { "external_id": id, "display_name": name, "metadata": { "updated_at": updated_at } }
`;
}

describe.each(kinds)('deletions on %s', (kind) => {
  let t: TestDb;
  let api: TinyApi;
  beforeAll(async () => {
    t = await openTestDb(kind);
    api = await startTinyApi({ items: 35 });
  });
  afterAll(async () => {
    await api?.close();
    await t?.drop();
  });

  const connect = (name: string, extra = '', incremental = '') => {
    const o = org(`org_${name}`, [{ connector: name, config: { base_url: api.url } }]);
    const config = testConfig(connectorsDir({ [name]: spec(name, extra, incremental) }), [o]);
    return {
      id: o.id,
      sync: (fullRefresh = false) =>
        syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger, fullRefresh }),
    };
  };
  const deleted = async (orgId: string) =>
    new Map(
      (
        await t.db.query<{ external_id: string; deleted_at: unknown }>(
          'select external_id, deleted_at from practitioners where organization_id = ?',
          [orgId],
        )
      ).map((r) => [r.external_id, r.deleted_at === null ? null : new Date(String(r.deleted_at)).toISOString()]),
    );

  it('marks after a complete listing only, keeps the mark, restores a record that comes back', async () => {
    const c = connect('del_items');
    const capped = connect('del_capped', ', max_pages: 2');
    expect((await c.sync()).streams[0]).toMatchObject({ status: 'ok', records: 35, markedDeleted: 0 });
    expect((await capped.sync()).streams[0]).toMatchObject({ status: 'ok', records: 20 });

    const removed = api.items.splice(4, 3);
    const gone = removed.map((i) => i.id);

    // The third page fails for good: the listing is incomplete, nothing is marked.
    let pages = 0;
    const off = api.onRequest((p) => {
      if (p === '/items/page' && ++pages === 3) api.failNext(1, 404);
    });
    const failed = await c.sync();
    off();
    expect(failed.streams[0]?.status).toBe('failed');
    expect([...(await deleted(c.id)).values()].every((v) => v === null)).toBe(true);

    // A listing stopped by max_pages is incomplete too.
    expect((await capped.sync()).streams[0]?.markedDeleted).toBeUndefined();
    expect([...(await deleted(capped.id)).values()].every((v) => v === null)).toBe(true);

    // A complete listing marks exactly the absent ones; the rows stay.
    const full = await c.sync();
    expect(full.streams[0]).toMatchObject({ status: 'ok', records: 32, markedDeleted: 3 });
    const after = await deleted(c.id);
    expect(after.size).toBe(35);
    for (const [id, at] of after) expect(at !== null, id).toBe(gone.includes(id));

    // The next complete listing keeps the marks as they were (no re-marking, no clearing).
    expect((await c.sync()).streams[0]?.markedDeleted).toBe(0);
    expect(await deleted(c.id)).toEqual(after);

    // A record that comes back is restored; the others keep their mark.
    api.items.push(removed[0]!);
    expect((await c.sync()).streams[0]?.status).toBe('ok');
    const back = await deleted(c.id);
    expect(back.get(gone[0]!)).toBeNull();
    expect(back.get(gone[1]!)).toBe(after.get(gone[1]!));
    expect(back.get(gone[2]!)).toBe(after.get(gone[2]!));
  });

  it('an incremental stream: marked after a full refresh, restored by the incremental pass that lists it again', async () => {
    const c = connect(
      'del_incremental',
      '',
      `    incremental:
      cursor_field: updated_at
      type: datetime
      order: asc
      send: { params: { updated_since: "{{ $cursor }}" } }
`,
    );
    expect((await c.sync()).streams[0]).toMatchObject({ status: 'ok', markedDeleted: 0 });
    const [item] = api.items.splice(10, 1);
    // An incremental pass is never complete: nothing is marked.
    expect((await c.sync()).streams[0]?.markedDeleted).toBeUndefined();
    expect((await deleted(c.id)).get(item!.id)).toBeNull();
    expect((await c.sync(true)).streams[0]?.markedDeleted).toBe(1);
    expect((await deleted(c.id)).get(item!.id)).not.toBeNull();
    api.items.push(item!);
    api.touch([item!.id]);
    expect((await c.sync()).streams[0]).toMatchObject({ status: 'ok', records: 1 });
    expect((await deleted(c.id)).get(item!.id)).toBeNull();
  });

  it('keeps one small row per listed record, whatever the organization holds', async () => {
    const rows = await t.db.query<{ stream: string; n: number }>(
      "select stream, count(*)::int as n from listing_seen where organization_id = 'org_del_items' group by stream",
    );
    expect(rows).toEqual([{ stream: 'items', n: 35 }]);
  });
});
