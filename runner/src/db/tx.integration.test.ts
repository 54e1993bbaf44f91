import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { isDataError } from '../engine/write-page.ts';
import { boundQuery, forOrganization, readOnlyQuerier, severalStatements, transaction } from './tx.ts';

const kinds = await backends();

/** Hooks read the database through readOnlyQuerier: PostgreSQL itself refuses their writes. */
describe.each(kinds)('read-only hook database on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values ('org_ro', 'Read only'), ('org_ro2', 'Second')");
  });
  afterAll(async () => {
    await t?.drop();
  });

  const orgs = async () =>
    (await t.db.query<{ id: string }>("select id from organizations where id like 'org_ro%' order by id")).map(
      (r) => r.id,
    );

  it('inside a writer transaction: reads work, WITH … DELETE and UPDATE fail, and the transaction goes on', async () => {
    const a = forOrganization(t.db, 'org_ro');
    await transaction(a, async (q) => {
      const ro = readOnlyQuerier(a, q);
      expect(await ro<{ n: string }>('select count(*)::text as n from organizations where id = ?', ['org_ro'])).toEqual(
        [{ n: '1' }],
      );
      await expect(
        ro("with d as (delete from organizations where id = 'org_ro' returning 1) select count(*) from d"),
      ).rejects.toThrow(/read-only transaction/);
      await expect(ro("update organizations set name = 'x' where id = 'org_ro'")).rejects.toThrow(/read-only/);
      // The caller's own writes still work after the refused ones (the savepoint was rolled back, not the transaction).
      await q("update organizations set name = 'Renamed' where id = 'org_ro'");
    });
    expect(await orgs()).toEqual(['org_ro', 'org_ro2']);
    expect((await t.db.query<{ name: string }>("select name from organizations where id = 'org_ro'"))[0]?.name).toBe(
      'Renamed',
    );
  });

  it('a hook cannot change its organization or role: set_config is not executable, SET and DO are refused', async () => {
    const a = forOrganization(t.db, 'org_ro');
    await transaction(a, async (q) => {
      const ro = readOnlyQuerier(a, q);
      await expect(ro("select set_config('app.organization_id', 'org_ro2', true)")).rejects.toThrow(
        /permission denied for function set_config/,
      );
      await expect(ro("select set_config('role', 'postgres', false)")).rejects.toThrow(/permission denied/);
      await expect(ro("set local app.organization_id = 'org_ro2'")).rejects.toThrow(/may not control/);
      await expect(ro('reset role')).rejects.toThrow(/may not control/);
      await expect(ro("do $$ begin execute 'reset role'; end $$")).rejects.toThrow(/may not control/);
      const v = await q<{ org: string; who: string }>(
        "select current_setting('app.organization_id') as org, current_user::text as who",
      );
      expect(v[0]?.org).toBe('org_ro');
      expect(v[0]?.who).toMatch(/_app$/);
      expect(await ro<{ id: string }>('select id from organizations order by id')).toEqual([{ id: 'org_ro' }]);
    });
  });

  it('outside a transaction: each query is its own READ ONLY transaction', async () => {
    const ro = readOnlyQuerier(forOrganization(t.db, 'org_ro'));
    expect((await ro<{ id: string }>("select id from organizations where id = 'org_ro'"))[0]?.id).toBe('org_ro');
    await expect(ro("delete from organizations where id = 'org_ro'")).rejects.toThrow(/read-only transaction/);
    expect(await orgs()).toEqual(['org_ro', 'org_ro2']);
  });

  it('transaction control and several statements are refused before they reach the database', async () => {
    const ro = readOnlyQuerier(t.db);
    await expect(ro('commit')).rejects.toThrow(/may not control transactions/);
    await expect(ro('set transaction read write')).rejects.toThrow(/may not control transactions/);
    await expect(ro("select 1; delete from organizations where id = 'org_ro'")).rejects.toThrow(/one SQL statement/);
    expect(await orgs()).toEqual(['org_ro', 'org_ro2']);
  });
});

describe('severalStatements', () => {
  it('sees a second statement, not semicolons in literals, identifiers or comments', () => {
    expect(severalStatements('select 1;')).toBe(false);
    expect(severalStatements("select ';' as x")).toBe(false);
    expect(severalStatements('select 1 as "a;b" -- ; drop table x')).toBe(false);
    expect(severalStatements('select $$;$$')).toBe(false);
    expect(severalStatements('select 1; select 2')).toBe(true);
    expect(severalStatements("select 'a'; delete from t")).toBe(true);
  });
});

/** Large writes send their values as bind parameters (boundQuery): same rows, same scope, same errors as inlined. */
describe.each(kinds)('boundQuery on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values ('org_bq', 'Bound'), ('org_bq2', 'Other')");
  });
  afterAll(async () => {
    await t?.drop();
  });

  const awkward = [`it's "quoted" \\ back\\slash`, 'ünïcödé 👩‍⚕️', '{"a": [1, "b"]}', null, ''];
  const sql = `select v.x, v.j::jsonb as j, current_setting('app.organization_id', true) as org,
    (select count(*)::int from organizations) as visible
    from (values ${awkward.map(() => '(?, ?)').join(', ')}) as v(x, j)`;
  const params = awkward.flatMap((x) => [x, JSON.stringify({ x })]);

  it('as the first statement of a scoped transaction: the scope holds and values arrive as they were', async () => {
    const org = forOrganization(t.db, 'org_bq');
    const bound = await transaction(org, (q) => boundQuery<Record<string, unknown>>(q, sql, params));
    // The same statement inlined (db.query: not a transaction's querier) gives the same rows.
    const inlined = await org.query<Record<string, unknown>>(sql, params);
    expect(bound).toEqual(inlined);
    expect(bound.map((r) => r.x)).toEqual(awkward);
    expect(bound.map((r) => r.j)).toEqual(awkward.map((x) => ({ x })));
    // Row-level security applied: the organization sees itself only.
    expect(bound.every((r) => r.org === 'org_bq' && r.visible === 1)).toBe(true);
  });

  it('a refused value fails the statement with its SQLSTATE and rolls the transaction back', async () => {
    const org = forOrganization(t.db, 'org_bq');
    const err = await transaction(org, async (q) => {
      await q("update organizations set name = 'Changed' where id = 'org_bq'");
      await boundQuery(q, 'select ?::int', ['not a number']);
    }).catch((e: unknown) => e);
    expect(isDataError(err)).toBe(true);
    const [row] = await t.db.query<{ name: string }>("select name from organizations where id = 'org_bq'");
    expect(row?.name).toBe('Bound');
  });
});
