import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { markPartitionsIfParentChanged, markPartitionsPending, type StateKey } from './cursor.ts';

/**
 * Child partitions follow their parent record, not the rows it maps to. Seen in the three-instance scale run: a
 * Chatwoot status change landed mid-run, `conversation_updates` wrote the conversation first, the `conversations`
 * stream then found its row unchanged and never re-read that conversation's messages (one activity message lost).
 */
const kinds = await backends();
const ORG = 'org_child_marks';

describe.each(kinds)('child partitions marked by their parent record (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values (?, 'Child marks')", [ORG]);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const key = (partition: string): StateKey => ({
    organizationId: ORG,
    connection: 'chatwoot',
    stream: 'messages',
    partition,
  });
  const db = () => forOrganization(t.db, ORG);
  const state = async () =>
    Object.fromEntries(
      (
        await db().query<{ partition: string; status: string; hash: string | null }>(
          "select partition, status, metadata->>'parent_hash' as hash from sync_state where organization_id = ? and stream = 'messages' order by partition",
          [ORG],
        )
      ).map((r) => [r.partition, [r.status, r.hash]]),
    );
  const fetched = (...partitions: string[]) =>
    db().query(
      `update sync_state set status = 'idle' where organization_id = ? and stream = 'messages' and partition in (${partitions.map(() => '?').join(', ')})`,
      [ORG, ...partitions],
    );

  it('an unchanged row with a changed parent record marks the partition; the same record does not', async () => {
    await transaction(db(), (q) =>
      markPartitionsPending(q, [
        { key: key('7'), parent: { id: 7, status: 'open' }, parentHash: 'h7a' },
        { key: key('8'), parent: { id: 8, status: 'open' }, parentHash: 'h8a' },
      ]),
    );
    await fetched('7', '8');
    expect(await state()).toEqual({ '7': ['idle', 'h7a'], '8': ['idle', 'h8a'] });

    // Another writer already stored conversation 7's new state, so the parent stream's rows are unchanged; its
    // record is not: 7 must be read again, 8 (same record) not.
    await transaction(db(), (q) =>
      markPartitionsIfParentChanged(q, [
        { key: key('7'), parent: { id: 7, status: 'resolved' }, parentHash: 'h7b' },
        { key: key('8'), parent: { id: 8, status: 'open' }, parentHash: 'h8a' },
      ]),
    );
    expect(await state()).toEqual({ '7': ['pending', 'h7b'], '8': ['idle', 'h8a'] });
  });

  it('a parent seen for the first time is pending; a partition marked before hashes were kept only records one', async () => {
    await db().query(
      "insert into sync_state (organization_id, connector, stream, partition, status, metadata) values (?, 'chatwoot', 'messages', '9', 'idle', ?::jsonb)",
      [ORG, JSON.stringify({ parent: { id: 9 } })],
    );
    await transaction(db(), (q) =>
      markPartitionsIfParentChanged(q, [
        { key: key('9'), parent: { id: 9 }, parentHash: 'h9a' },
        { key: key('10'), parent: { id: 10 }, parentHash: 'h10a' },
      ]),
    );
    const s = await state();
    expect(s['9']).toEqual(['idle', 'h9a']);
    expect(s['10']).toEqual(['pending', 'h10a']);
  });
});
