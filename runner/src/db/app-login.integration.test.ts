import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_ADMIN_URL, postgresReachable } from '../../../test/helpers/db.ts';
import { getStatus } from '../dlq/status.ts';
import { type Database, openDatabase } from './database.ts';
import { migrate } from './migrate.ts';
import { crossOrganization, forOrganization, transaction } from './tx.ts';

/**
 * The production set-up of docs/database.md#tenant-isolation on the PostgreSQL server: migrated by a superuser with
 * its own role prefix (so the server's shared roles are not touched), then used through a connection that logs in
 * as the app role itself. Raw queries see no tenant row, scoped ones their organization, the admin path everything,
 * and the app role cannot become the owner.
 */
describe.skipIf(!(await postgresReachable()))('connected as the app role (PostgreSQL)', () => {
  const prefix = `rq_t_${randomBytes(4).toString('hex')}`;
  let target: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: Database;

  beforeAll(async () => {
    target = await createTestDatabase('postgres');
    const owner = await openDatabase({ url: target.url, rolePrefix: prefix });
    try {
      await migrate(owner);
      await owner.query("insert into organizations (id, name) values ('org_l1', 'One'), ('org_l2', 'Two')");
      await owner.query(
        "insert into patients (organization_id, first_name) values ('org_l1', 'Ann'), ('org_l2', 'Bob'), ('org_l2', 'Cy')",
      );
      await owner.query(`alter role ${prefix}_app login`);
    } finally {
      await owner.close();
    }
    const u = new URL(target.url as string);
    u.username = `${prefix}_app`;
    app = await openDatabase({ url: u.toString(), rolePrefix: prefix });
  });
  afterAll(async () => {
    await app?.close();
    await target?.drop();
    const a = new pg.Client({ connectionString: PG_ADMIN_URL });
    await a.connect();
    try {
      for (const r of ['app', 'admin', 'owner']) await a.query(`drop role if exists ${prefix}_${r}`);
    } finally {
      await a.end();
    }
  });

  it('raw queries see no tenant row; a scope sees its organization; the admin path sees all', async () => {
    expect(await app.query<{ u: string }>('select current_user::text as u')).toEqual([{ u: `${prefix}_app` }]);
    expect(await app.query('select * from patients')).toEqual([]);
    const names = async (db: Database) =>
      (await db.query<{ n: string }>('select first_name as n from patients order by 1')).map((r) => r.n);
    expect(await names(forOrganization(app, 'org_l1'))).toEqual(['Ann']);
    expect(await names(forOrganization(app, 'org_l2'))).toEqual(['Bob', 'Cy']);
    expect(await names(crossOrganization(app, 'test'))).toEqual(['Ann', 'Bob', 'Cy']);
    const status = await getStatus(app);
    expect(status.organizations.map((o) => o.id)).toEqual(['org_l1', 'org_l2']);
  });

  it('cannot write into another organization, become the owner, or change its organization with set_config', async () => {
    await expect(
      transaction(forOrganization(app, 'org_l1'), (q) =>
        q("insert into patients (organization_id, first_name) values ('org_l2', 'Eve')"),
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(transaction(app, (q) => q(`set local role ${prefix}_owner`))).rejects.toThrow(/permission denied/);
    await expect(
      transaction(forOrganization(app, 'org_l1'), (q) => q("select set_config('app.organization_id', 'org_l2', true)")),
    ).rejects.toThrow(/permission denied/);
    await expect(app.query('drop table patients')).rejects.toThrow(/must be owner/);
  });
});
