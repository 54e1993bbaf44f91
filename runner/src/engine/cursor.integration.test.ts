import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { type Checkpoint, type StateKey, saveCursor, saveCursors } from './cursor.ts';

const kinds = await backends();

/** A write-behind batch saves its pages' checkpoints in one statement: the same state as saving them one by one. */
describe.each(kinds)('saveCursors on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values ('org_cp_a', 'A'), ('org_cp_b', 'B')");
  });
  afterAll(async () => {
    await t?.drop();
  });

  const key = (organizationId: string, partition: string): StateKey => ({
    organizationId,
    connection: 'conn',
    stream: 'messages',
    partition,
  });
  /** Pages of two partitions interleaved: running checkpoints, a page without a cursor, a partition's end. */
  const batch = (org: string): Checkpoint[] => [
    { key: key(org, 'c1'), cursor: 10, status: 'running', processed: 25, done: false },
    { key: key(org, 'c2'), cursor: 7, status: 'running', processed: 25, done: false },
    { key: key(org, 'c1'), cursor: 20, status: 'running', processed: 25, done: false },
    { key: key(org, 'c1'), cursor: undefined, status: 'idle', processed: 0, done: true },
    { key: key(org, 'c2'), cursor: undefined, status: 'running', processed: 3, done: false },
  ];
  const state = (org: string) =>
    transaction(forOrganization(t.db, org), (q) =>
      q<Record<string, unknown>>(
        `select partition, cursor, status, records_processed::int as n, last_successful_sync is not null as done
         from sync_state order by partition`,
      ),
    );

  it('per key: the last cursor given, the last status, the counts added, a completed pass if any was', async () => {
    // org_cp_a: one by one; org_cp_b: in one statement. Both start from a stored state.
    for (const org of ['org_cp_a', 'org_cp_b'])
      await transaction(forOrganization(t.db, org), (q) =>
        saveCursor(q, key(org, 'c2'), 5, { status: 'idle', processed: 100, done: true }),
      );
    await transaction(forOrganization(t.db, 'org_cp_a'), async (q) => {
      for (const c of batch('org_cp_a')) await saveCursor(q, c.key, c.cursor, c);
    });
    await transaction(forOrganization(t.db, 'org_cp_b'), (q) => saveCursors(q, batch('org_cp_b')));
    const a = await state('org_cp_a');
    expect(await state('org_cp_b')).toEqual(a);
    expect(a).toEqual([
      { partition: 'c1', cursor: { value: 20 }, status: 'idle', n: 50, done: true },
      { partition: 'c2', cursor: { value: 7 }, status: 'running', n: 128, done: true },
    ]);
  });
});
