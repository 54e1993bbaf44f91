import { migrations } from '@routiq/migrations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { migrate } from './migrate.ts';

const kinds = await backends();

const TABLES = [
  'organizations',
  'patients',
  'patient_identities',
  'conversations',
  'messages',
  'attachments',
  'appointments',
  'practitioners',
  'appointment_types',
  'sync_state',
  'sync_runs',
  'sync_errors',
  'service_health',
  'audit_log',
  'raw_records',
];

describe.each(kinds)('database on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind, { migrate: false });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('migrates every table, and a second migrate is a no-op', async () => {
    const first = await migrate(t.db);
    expect(first.applied).toEqual(migrations.map((m) => m.name));
    const second = await migrate(t.db);
    expect(second.applied).toEqual([]);
    const rows = await t.db.query<{ table_name: string }>(
      'select table_name from information_schema.tables where table_schema = current_schema() order by 1',
    );
    const names = rows.map((r) => r.table_name);
    for (const table of TABLES) expect(names).toContain(table);
  });

  it('organization_id is text and platform ids are text on every tenant table', async () => {
    const rows = await t.db.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      "select table_name, column_name, data_type, is_nullable from information_schema.columns where table_schema = current_schema() and column_name in ('organization_id', 'external_id')",
    );
    const tenant = rows.filter(
      (r) => r.column_name === 'organization_id' && !['audit_log', 'service_health'].includes(r.table_name),
    );
    expect(tenant.length).toBeGreaterThanOrEqual(12);
    for (const r of tenant) {
      expect(r.data_type).toBe('text');
      expect(r.is_nullable).toBe('NO');
    }
    for (const r of rows.filter((x) => x.column_name === 'external_id')) expect(r.data_type).toBe('text');
  });

  it('an upsert of the same natural key twice leaves one row', async () => {
    await t.db.query(
      "insert into organizations (id, name) values ('org_upsert', 'Upsert clinic') on conflict (id) do nothing",
    );
    const upsert = (content: string) =>
      t.db.query(
        `insert into conversations (organization_id, source, external_id, status) values (?, ?, ?, ?)
         on conflict (organization_id, source, external_id) do update set status = excluded.status, updated_at = now()`,
        ['org_upsert', 'chatwoot', '836447129235883061', content],
      );
    await upsert('open');
    await upsert('resolved');
    const rows = await t.db.query<{ n: string; status: string }>(
      "select count(*)::text as n, max(status) as status from conversations where organization_id = 'org_upsert'",
    );
    expect(rows[0]).toEqual({ n: '1', status: 'resolved' });
  });

  it('refuses a database migrated by a newer version', async () => {
    await t.db.query("insert into routiq_migrations (name, executed_at) values ('9999_from_the_future', now())");
    await expect(migrate(t.db)).rejects.toMatchObject({ code: 'RQ4002' });
    await t.db.query("delete from routiq_migrations where name = '9999_from_the_future'");
  });
});
