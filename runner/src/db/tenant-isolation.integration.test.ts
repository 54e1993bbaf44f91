import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from './tx.ts';

const kinds = await backends();

const A = 'org_iso_a';
const B = 'org_iso_b';

interface Column {
  name: string;
  type: string;
  notnull: boolean;
  hasdef: boolean;
}

/**
 * Adversarial tenant isolation (docs/database.md#tenant-isolation). The tenant tables are read from the catalog
 * (every table of the schema with `organization_id`, and `organizations`), so a table added by a later migration is
 * checked without editing this file: it must have a forced policy, and a generic row of each organization is
 * seeded into it from its column types and CHECK constraints.
 */
describe.each(kinds)('tenant isolation on %s', (kind) => {
  let t: TestDb;
  let tables: string[];
  const columns = new Map<string, Column[]>();
  const enums = new Map<string, Map<string, string>>();
  const refs = new Map<string, { table: string; column: string }>();
  let seq = 0;

  /** A row of `org` for `table`: every NOT NULL column without a default gets a value its type and checks accept. */
  const row = async (table: string, org: string): Promise<{ sql: string; params: unknown[] }> => {
    const cols: string[] = [];
    const vals: string[] = [];
    const params: unknown[] = [];
    const put = (c: string, v: string, ...p: unknown[]) => {
      cols.push(`"${c}"`);
      vals.push(v);
      params.push(...p);
    };
    seq++;
    for (const c of columns.get(table) ?? []) {
      if (c.name === 'organization_id' || (table === 'organizations' && c.name === 'id')) put(c.name, '?', org);
      else if (!c.notnull || c.hasdef) continue;
      else if (refs.has(`${table}.${c.name}`)) {
        // A NOT NULL reference: a row of the same organization (read as the migrating user, whatever the context).
        const ref = refs.get(`${table}.${c.name}`) as { table: string; column: string };
        const [v] = await t.db.query<{ v: string }>(
          `select ${ref.column}::text as v from ${ref.table} where organization_id = ? limit 1`,
          [org],
        );
        if (!v) throw new Error(`no row of ${org} in ${ref.table} yet`);
        put(c.name, '?', v.v);
      } else if (enums.get(table)?.has(c.name)) put(c.name, '?', enums.get(table)?.get(c.name));
      else if (c.type === 'uuid') put(c.name, 'gen_random_uuid()');
      else if (/^(text|character varying)/.test(c.type)) put(c.name, '?', `seed-${org}-${seq}`);
      else if (/^character\((\d+)\)/.test(c.type)) put(c.name, '?', 'X'.repeat(Number(/\((\d+)\)/.exec(c.type)?.[1])));
      else if (/^timestamp/.test(c.type)) put(c.name, 'now()');
      else if (c.type === 'date') put(c.name, 'current_date');
      else if (/^jsonb?$/.test(c.type)) put(c.name, "'{}'");
      else if (/^(integer|bigint|smallint|numeric|real|double)/.test(c.type)) put(c.name, '0');
      else if (c.type === 'boolean') put(c.name, 'false');
      else if (c.type === 'bytea') put(c.name, "'\\x00'::bytea");
      else if (c.type.endsWith('[]')) put(c.name, "'{}'");
      else throw new Error(`no seed value for ${table}.${c.name} (${c.type}): teach row() in this test the type`);
    }
    return { sql: `insert into ${table} (${cols.join(', ')}) values (${vals.join(', ')})`, params };
  };

  /** Run `sql` in a savepoint and return its error message ('' when it succeeded). */
  const attempt = async (q: Querier, sql: string, params: unknown[] = []): Promise<string> => {
    await q('savepoint probe');
    try {
      await q(sql, params);
      await q('release savepoint probe');
      return '';
    } catch (err) {
      await q('rollback to savepoint probe');
      return (err as Error).message;
    }
  };

  beforeAll(async () => {
    t = await openTestDb(kind);
    tables = (
      await t.db.query<{ t: string }>(
        `select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = current_schema() and c.relkind in ('r', 'p')
           and (c.relname = 'organizations' or exists (select 1 from pg_attribute a
                where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))
         order by 1`,
      )
    ).map((r) => r.t);
    for (const r of await t.db.query<Column & { table: string }>(
      `select c.relname as "table", a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
              a.attnotnull as notnull, (a.atthasdef or a.attidentity <> '' or a.attgenerated <> '') as hasdef
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = current_schema() and a.attnum > 0 and not a.attisdropped order by a.attnum`,
    ))
      columns.set(r.table, [...(columns.get(r.table) ?? []), r]);
    // CHECK (col = ANY (ARRAY['a'::text, …])) or CHECK (col = 'a'): the first allowed value.
    for (const r of await t.db.query<{ table: string; def: string }>(
      `select c.relname as "table", pg_get_constraintdef(k.oid) as def from pg_constraint k
       join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = current_schema() and k.contype = 'c'`,
    )) {
      const m = /\(\(?(\w+)\)? = (?:ANY \(ARRAY\[)?'([^']*)'/.exec(r.def);
      if (m?.[1] && m[2] !== undefined) enums.set(r.table, (enums.get(r.table) ?? new Map()).set(m[1], m[2]));
    }
    for (const r of await t.db.query<{ table: string; col: string; ref_table: string; ref_col: string }>(
      `select c.relname as "table", a.attname as col, rc.relname as ref_table, ra.attname as ref_col
       from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_class rc on rc.oid = k.confrelid
         join pg_namespace n on n.oid = c.relnamespace
         cross join lateral unnest(k.conkey, k.confkey) as u(ck, rk)
         join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.ck
         join pg_attribute ra on ra.attrelid = k.confrelid and ra.attnum = u.rk
       where n.nspname = current_schema() and k.contype = 'f' and a.attname <> 'organization_id'`,
    ))
      refs.set(`${r.table}.${r.col}`, { table: r.ref_table, column: r.ref_col });
    // Seeded as the connecting (migrating) user: two rows of each organization in every tenant table, referenced
    // tables first (a pass seeds what it can; a table whose reference is not seeded yet waits for the next).
    for (const org of [A, B]) {
      const o = await row('organizations', org);
      await t.db.query(o.sql, o.params);
    }
    let pending = tables.filter((x) => x !== 'organizations');
    for (let pass = 0; pending.length && pass < 5; pass++) {
      const next: string[] = [];
      for (const table of pending)
        try {
          for (const org of [A, B, A, B]) {
            const r = await row(table, org);
            await t.db.query(r.sql, r.params);
          }
        } catch (err) {
          if (pass === 4) throw err;
          next.push(table);
        }
      pending = next;
    }
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('finds the tenant tables in the catalog, each with row-level security enabled, FORCEd and a policy', async () => {
    expect(tables).toEqual(
      expect.arrayContaining(['organizations', 'patients', 'messages', 'sync_errors', 'sync_state']),
    );
    const rows = await t.db.query<{ t: string; rls: boolean; forced: boolean; policies: number; owner: string }>(
      `select c.relname as t, c.relrowsecurity as rls, c.relforcerowsecurity as forced, pg_get_userbyid(c.relowner) as owner,
              (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = current_schema() and c.relname = any(?::text[])`,
      [`{${tables.join(',')}}`],
    );
    const [roles] = await t.db.query<{ owner: string }>("select routiq_role('owner') as owner");
    const unprotected = rows.filter((r) => !r.rls || !r.forced || r.policies < 1).map((r) => r.t);
    expect(unprotected, 'tenant tables without a FORCEd policy: call routiq_protect_table in their migration').toEqual(
      [],
    );
    expect(rows.filter((r) => r.owner !== roles?.owner).map((r) => `${r.t}: ${r.owner}`)).toEqual([]);
    // A view or SECURITY DEFINER function owned by a superuser would read every organization: none may exist.
    const bypass = await t.db.query<{ what: string }>(
      `select 'view ' || c.relname as what from pg_class c join pg_namespace n on n.oid = c.relnamespace
         join pg_roles r on r.oid = c.relowner
       where n.nspname = current_schema() and c.relkind in ('v', 'm') and (r.rolsuper or r.rolbypassrls)
         and not coalesce(c.reloptions @> array['security_invoker=true'], false)
       union all
       select 'function ' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         join pg_roles r on r.oid = p.proowner
       where n.nspname = current_schema() and p.prosecdef and (r.rolsuper or r.rolbypassrls)`,
    );
    expect(bypass).toEqual([]);
  });

  it('the runtime role is neither superuser, BYPASSRLS, owner nor an inheriting member of a privileged role', async () => {
    const [r] = await transaction(forOrganization(t.db, A), (q) =>
      q<{ who: string; superuser: boolean; bypass: boolean; owns: number; admin: boolean; owner: boolean }>(
        `select current_user::text as who, r.rolsuper as superuser, r.rolbypassrls as bypass,
                (select count(*)::int from pg_class c where c.relowner = r.oid) as owns,
                pg_has_role(current_user, routiq_role('admin'), 'USAGE') as admin,
                pg_has_role(current_user, routiq_role('owner'), 'MEMBER') as owner
         from pg_roles r where r.rolname = current_user`,
      ),
    );
    expect(r).toEqual({
      who: expect.stringMatching(/_app$/),
      superuser: false,
      bypass: false,
      owns: 0,
      admin: false,
      owner: false,
    });
    // Turning row security off does not bypass it: the query fails instead.
    await transaction(forOrganization(t.db, A), async (q) => {
      expect(await attempt(q, 'set local row_security = off; select count(*) from patients')).toMatch(
        /row-level security/,
      );
    });
  });

  it("with organization A's context: no row of B in any tenant table, directly, joined, through views and functions", async () => {
    const leaks: string[] = [];
    await transaction(forOrganization(t.db, A), async (q) => {
      for (const table of tables) {
        const key = table === 'organizations' ? 'id' : 'organization_id';
        const [own] = await q<{ a: number; b: number }>(
          `select count(*) filter (where ${key} = ?)::int as a, count(*) filter (where ${key} <> ?)::int as b from ${table}`,
          [A, A],
        );
        if (own?.a === 0) leaks.push(`${table}: A cannot see its own rows`);
        if (own?.b) leaks.push(`${table}: ${own.b} rows of another organization`);
        // Joined with every organization row and with itself on another organization.
        const [j] = await q<{ n: number }>(
          `select count(*)::int as n from ${table} x join organizations o on true join ${table} y on y.${key} <> x.${key}`,
        );
        if (j?.n) leaks.push(`${table}: ${j.n} rows through a self-join across organizations`);
        // A function planning its query at run time (after any setting the statement could change).
        const [f] = await q<{ x: string }>(
          `select query_to_xml('select * from ${table} where ${key} = ''${B}''', true, false, '')::text as x`,
        );
        if (f?.x?.includes('<row>')) leaks.push(`${table}: rows of B through query_to_xml`);
      }
    });
    expect(leaks).toEqual([]);
  });

  it('views and SECURITY DEFINER functions owned by the owner role see no more than the context', async () => {
    // Created as the migrating user and handed to the owner role, as a migration adding them would.
    await t.db.query(
      'create view iso_all_patients as select p.*, o.name from patients p join organizations o on o.id = p.organization_id',
    );
    await t.db.query("select routiq_grant_table('iso_all_patients')");
    await t.db.query(
      `create function iso_count_of(org text) returns bigint language sql security definer set search_path = ${t.db.schema}
       as $$ select count(*) from patients where organization_id = org $$`,
    );
    const [owner] = await t.db.query<{ o: string }>("select routiq_role('owner') as o");
    await t.db.query(`alter function iso_count_of(text) owner to "${owner?.o}"`);
    try {
      const [r] = await transaction(forOrganization(t.db, A), (q) =>
        q<{ view_b: number; view_a: number; fn_b: number; fn_a: number }>(
          `select (select count(*)::int from iso_all_patients where organization_id = ?) as view_b,
                  (select count(*)::int from iso_all_patients where organization_id = ?) as view_a,
                  iso_count_of(?)::int as fn_b, iso_count_of(?)::int as fn_a`,
          [B, A, B, A],
        ),
      );
      expect(r).toEqual({ view_b: 0, view_a: 2, fn_b: 0, fn_a: 2 });
    } finally {
      await t.db.query('drop view iso_all_patients');
      await t.db.query('drop function iso_count_of(text)');
    }
  });

  it("with A's context: inserts and updates into B are rejected, B's rows cannot be changed or deleted", async () => {
    const problems: string[] = [];
    // Rows built first: building reads the database, and the embedded one has a single connection.
    const own = new Map<string, { sql: string; params: unknown[] }>();
    const ofB = new Map<string, { sql: string; params: unknown[] }>();
    for (const table of tables) {
      own.set(table, await row(table, A));
      ofB.set(table, await row(table, B));
    }
    await transaction(forOrganization(t.db, A), async (q) => {
      for (const table of tables) {
        const key = table === 'organizations' ? 'id' : 'organization_id';
        if (table !== 'organizations') {
          const r = own.get(table) as { sql: string; params: unknown[] };
          const ok = await attempt(q, r.sql, r.params);
          if (ok) problems.push(`${table}: A cannot insert its own row: ${ok}`);
        }
        const b = ofB.get(table) as { sql: string; params: unknown[] };
        if (!/row-level security/.test(await attempt(q, b.sql, b.params)))
          problems.push(`${table}: an insert of B's row was not refused by row-level security`);
        if (
          table !== 'organizations' &&
          // audit_log refuses every update (append-only trigger, migration 0011) before RLS checks the new row.
          !/row-level security|append-only/.test(
            await attempt(q, `update ${table} set ${key} = ? where ${key} = ?`, [B, A]),
          )
        )
          problems.push(`${table}: moving A's row to B was not refused`);
        const [u] = await q<{ n: number }>(
          `with u as (update ${table} set ${key} = ${key} where ${key} = ? returning 1) select count(*)::int as n from u`,
          [B],
        );
        const [d] = await q<{ n: number }>(
          `with d as (delete from ${table} where ${key} = ? returning 1) select count(*)::int as n from d`,
          [B],
        );
        if (u?.n || d?.n) problems.push(`${table}: ${u?.n} rows of B updated, ${d?.n} deleted`);
      }
      throw new Rollback();
    }).catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
    expect(problems).toEqual([]);
    const [still] = await t.db.query<{ n: number }>(
      'select count(*)::int as n from patients where organization_id = ?',
      [B],
    );
    expect(still?.n).toBe(2);
  });

  it('without an organization: 0 rows in every tenant table and no write', async () => {
    const seen: string[] = [];
    const rows = new Map<string, { sql: string; params: unknown[] }>();
    for (const table of tables) rows.set(table, await row(table, A));
    // A global row ('' is no organization), read after an organization's transaction set the setting on the
    // connection (the embedded database has one): the setting then reads '' and must still match nothing.
    await t.db.query("insert into service_health (component, organization_id, status) values ('iso-probe', '', 'ok')");
    await transaction(forOrganization(t.db, A), (q) => q('select 1'));
    await transaction(t.db, async (q) => {
      for (const table of tables) {
        const [c] = await q<{ n: number }>(`select count(*)::int as n from ${table}`);
        if (c?.n) seen.push(`${table}: ${c.n} rows`);
        const r = rows.get(table) as { sql: string; params: unknown[] };
        if (!/row-level security/.test(await attempt(q, r.sql, r.params))) seen.push(`${table}: an insert passed`);
      }
    });
    expect(seen).toEqual([]);
  });

  it('foreign keys are tenant-scoped: a row of A cannot point at a row of B', async () => {
    const [pb] = await t.db.query<{ id: string }>('select id from patients where organization_id = ? limit 1', [B]);
    const [cb] = await t.db.query<{ id: string }>('select id from conversations where organization_id = ? limit 1', [
      B,
    ]);
    const [mb] = await t.db.query<{ id: string }>('select id from messages where organization_id = ? limit 1', [B]);
    const probes: Array<[string, unknown[]]> = [
      [
        "insert into patient_identities (organization_id, patient_id, source, external_id) values (?, ?::uuid, 'x', 'fk1')",
        [A, pb?.id],
      ],
      [
        "insert into conversations (organization_id, source, external_id, patient_id) values (?, 'x', 'fk2', ?::uuid)",
        [A, pb?.id],
      ],
      [
        "insert into messages (organization_id, conversation_id, conversation_external_id, source, external_id, sender_type, sent_at) values (?, ?::uuid, 'c', 'x', 'fk3', 'patient', now())",
        [A, cb?.id],
      ],
      [
        "insert into attachments (organization_id, message_id, message_external_id, source, external_id) values (?, ?::uuid, 'm', 'x', 'fk4')",
        [A, mb?.id],
      ],
      [
        "insert into appointments (organization_id, source, external_id, patient_id, status) values (?, 'x', 'fk5', ?::uuid, 'booked')",
        [A, pb?.id],
      ],
      ['update patients set merged_into = ?::uuid where organization_id = ?', [pb?.id, A]],
    ];
    // As the migrating user (no row security in the way): only the foreign keys refuse these.
    for (const [sql, params] of probes) await expect(t.db.query(sql, params), sql).rejects.toThrow(/foreign key/);
  });

  it('the cross-organization path (admin role) sees every organization', async () => {
    const [r] = await transaction(crossOrganization(t.db, 'test'), (q) =>
      q<{ n: number }>(
        'select count(distinct organization_id)::int as n from patients where organization_id in (?, ?)',
        [A, B],
      ),
    );
    expect(r?.n).toBe(2);
  });
});

class Rollback extends Error {}
