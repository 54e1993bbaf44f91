import { MIGRATIONS_TABLE, migrations } from '@routiq/migrations';
import { RoutiqError } from '../errors/registry.ts';
import type { Database } from './database.ts';

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

/** Names recorded in the database that this version does not know (a newer routiq migrated it). */
async function unknownApplied(db: Database): Promise<{ executed: string[]; unknown: string[] }> {
  const exists = await db.query<{ t: string | null }>('select to_regclass(?) as t', [MIGRATIONS_TABLE]);
  if (!exists[0]?.t) return { executed: [], unknown: [] };
  const rows = await db.query<{ name: string }>(`select name from ${MIGRATIONS_TABLE} order by id`);
  const known = new Set(migrations.map((m) => m.name));
  const executed = rows.map((r) => r.name.replace(/\.(ts|js)$/, ''));
  return { executed, unknown: executed.filter((n) => !known.has(n)) };
}

/** Apply pending migrations. Idempotent; refuses a database migrated by a newer version. */
export async function migrate(db: Database): Promise<MigrateResult> {
  const { executed, unknown } = await unknownApplied(db);
  if (unknown.length) {
    throw new RoutiqError('RQ4002', `the database has migrations this version does not know: ${unknown.join(', ')}`, {
      where: db.describe,
    });
  }
  const migrator = db.orm.getMigrator();
  const done = await migrator.up();
  return { applied: done.map((m) => m.name), alreadyApplied: executed };
}

/** Throw unless the schema is exactly what this version expects (used before a sync). */
export async function assertMigrated(db: Database): Promise<void> {
  const { executed, unknown } = await unknownApplied(db);
  if (unknown.length) {
    throw new RoutiqError('RQ4002', `the database has migrations this version does not know: ${unknown.join(', ')}`, {
      where: db.describe,
    });
  }
  const pending = migrations.filter((m) => !executed.includes(m.name)).map((m) => m.name);
  if (pending.length)
    throw new RoutiqError('RQ4003', `pending migrations: ${pending.join(', ')}`, { where: db.describe });
}
