/**
 * The writer derives its column lists from schemas/unified/*.schema.json (engine/columns.ts); the tables come from
 * the migrations. This checks the two agree on a freshly migrated database: one row per unified target, every
 * schema property set, goes through the real writer, and the columns of its INSERTs must be exactly the table's
 * columns (less the ones PostgreSQL fills by default), with the types columns.ts casts to.
 */
import { UNIFIED_TARGETS, type UnifiedTarget, unifiedSchema } from '@routiq/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { type Column, targetInfo } from '../engine/columns.ts';
import { type MappedRow, writeRows } from '../engine/writer.ts';
import { createOrganization, writeContext } from '../identity/test-support.ts';
import { forOrganization, transaction } from './tx.ts';

const kinds = await backends();
const ORG = 'ddl';

/** information_schema.columns.data_type of each type columns.ts casts to. */
const PG_TYPE: Record<Column['sqlType'], string> = {
  text: 'text',
  timestamptz: 'timestamp with time zone',
  date: 'date',
  bigint: 'bigint',
  integer: 'integer',
  boolean: 'boolean',
  jsonb: 'jsonb',
};

/** Columns no INSERT names: PostgreSQL fills them (a generated key and the row's timestamps). */
const DATABASE_FILLED = ['created_at', 'id', 'updated_at'];

/** A value for every property of a unified schema that the schema accepts. */
function fullRow(target: UnifiedTarget): Record<string, unknown> {
  const props = unifiedSchema(target).properties as Record<string, Record<string, unknown>>;
  const row: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(props)) {
    const types = ([] as unknown[]).concat(p.type ?? []);
    if (Array.isArray(p.enum)) row[name] = p.enum.find((v) => v !== null);
    else if (name === 'country_hint') row[name] = 'AU';
    else if (p.format === 'date-time') row[name] = '2024-05-06T07:08:09.000Z';
    else if (p.format === 'date') row[name] = '1990-01-02';
    else if (types.includes('integer') || types.includes('number')) row[name] = 7;
    else if (types.includes('boolean')) row[name] = true;
    else if (types.includes('array')) row[name] = [];
    else if (types.includes('object')) row[name] = { from: 'ddl-test' };
    else row[name] = name === 'external_id' ? `${target}-1` : `${name}-value`;
  }
  return row;
}

describe.each(kinds)('unified tables on %s', (kind) => {
  let t: TestDb;
  /** table → the columns the writer's INSERTs named. */
  const written = new Map<string, Set<string>>();
  /** target → why its write failed (e.g. a schema property with no column). */
  const failed = new Map<UnifiedTarget, string>();

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG);
    // One transaction per target, so a failing write names its target (references to missing rows stay null).
    for (const target of UNIFIED_TARGETS) {
      const row: MappedRow = { target, mode: 'upsert', row: fullRow(target), sourceHash: `h-${target}` };
      await transaction(forOrganization(t.db, ORG), (q) =>
        writeRows(
          (sql, params) => {
            for (const m of sql.matchAll(/insert into (\w+)(?: as \w+)? \(([^)]*)\)/g)) {
              const cols = written.get(m[1] as string) ?? new Set<string>();
              for (const c of (m[2] as string).split(',')) cols.add(c.trim());
              written.set(m[1] as string, cols);
            }
            return q(sql, params);
          },
          writeContext(ORG, 'ddl'),
          [row],
        ),
      ).catch((e: Error) => failed.set(target, e.message.split(' - ').at(-1) ?? e.message));
    }
  });
  afterAll(async () => {
    await t?.drop();
  });

  it.each(UNIFIED_TARGETS)("%s: the writer's columns are the table's columns", async (target) => {
    // Stored generated columns (migration 0014's lower-cased lookup keys) are the database's to write.
    const table = await t.db.query<{ column_name: string; data_type: string; column_default: string | null }>(
      `select column_name, data_type, column_default from information_schema.columns
        where table_schema = current_schema() and table_name = ? and is_generated = 'NEVER' order by column_name`,
      [target],
    );
    expect(failed.get(target), `writing ${target}`).toBeUndefined();
    expect(table.length, `table ${target} exists`).toBeGreaterThan(0);
    const writer = [...(written.get(target) ?? [])].sort();
    // Every schema column was written (the row set them all), so the comparison covers the whole schema.
    for (const c of targetInfo(target).columns) expect(writer, `${target}.${c.name} written`).toContain(c.name);
    expect([...writer, ...DATABASE_FILLED].sort()).toEqual(table.map((c) => c.column_name));
    for (const name of DATABASE_FILLED) {
      expect(table.find((c) => c.column_name === name)?.column_default, `${target}.${name} default`).toBeTruthy();
    }
    const types = Object.fromEntries(table.map((c) => [c.column_name, c.data_type]));
    const expected = Object.fromEntries(targetInfo(target).columns.map((c) => [c.name, PG_TYPE[c.sqlType]]));
    expect(Object.fromEntries(Object.keys(expected).map((n) => [n, types[n]]))).toEqual(expected);
  });
});
