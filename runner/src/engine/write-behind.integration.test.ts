import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import '@routiq/sdk';
import type { Querier } from '../db/tx.ts';
import type { ParentInfo } from './map.ts';
import { openSession, type Session } from './session.ts';
import { WriteBehind, type WriteBehindOptions } from './write-behind.ts';
import type { PageWritten } from './write-page.ts';

const kinds = await backends();

/** A page of practitioners as the mapping would produce it; `bad` carries a timestamp the database refuses. */
function page(from: number, n: number, bad?: number, rev = ''): ParentInfo[] {
  return Array.from({ length: n }, (_, i) => {
    const id = String(from + i);
    const row: Record<string, unknown> = { external_id: id, display_name: `P${id}` };
    if (from + i === bad) row.deleted_at = 'not a date';
    return {
      raw: { id, rev },
      key: id,
      hash: `h${id}${rev}`,
      rows: [{ target: 'practitioners', mode: 'upsert', row, sourceHash: `h${id}${rev}` }],
      produced: [['practitioners', id]],
    };
  });
}

describe.each(kinds)('write-behind (%s)', (kind) => {
  let t: TestDb;
  let session: Session;
  let n = 0;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** A fresh organization per test (its own rows, letters and advisory lock). */
  async function writer(o: Partial<WriteBehindOptions> = {}, orgId = `org_wb_${++n}`) {
    const o1 = org(orgId, [{ connector: 'items', config: { base_url: 'http://127.0.0.1:9' } }]);
    session = await openSession({
      db: t.db,
      config: testConfig(connectorsDir({ items: itemsSpec('items') }), [o1]),
      org: o1,
      conn: o1.connections[0]!,
      logger: silentLogger,
    });
    const written: PageWritten[] = [];
    const wb = new WriteBehind(session, {
      stream: 'items',
      runId: '00000000-0000-4000-8000-000000000000',
      marking: {},
      storeRaw: true,
      flushRows: 1000,
      maxDelayMs: 60_000,
      onWritten: (w) => written.push(w),
      ...o,
    });
    const count = async (q: Querier = t.db.query.bind(t.db)) =>
      Number(
        (
          await q<{ n: string }>('select count(*)::text as n from practitioners where organization_id = ?', [
            session.org.id,
          ])
        )[0]?.n,
      );
    return { wb, written, count };
  }

  it('writes pages of several partitions in one transaction, each checkpoint after all of the rows', async () => {
    const { wb, written, count } = await writer();
    const seenAtCheckpoint: number[] = [];
    for (let p = 0; p < 5; p++)
      await wb.push({
        partition: `part${p}`,
        parents: page(p * 10, 10),
        dead: [],
        finish: async (q) => {
          seenAtCheckpoint.push(await count(q));
        },
      });
    // Below flushRows and before maxDelayMs: nothing is written until the stream drains.
    expect(await count()).toBe(0);
    await wb.drain();
    expect(written).toEqual([{ inserted: 50, updated: 0, unchanged: 0, deadLetters: 0, identitiesChanged: 0 }]);
    expect(seenAtCheckpoint).toEqual([50, 50, 50, 50, 50]);
    expect(await count()).toBe(50);
  });

  it('flushes a batch at flushRows while the next one fills, in fetch order', async () => {
    const { wb, written, count } = await writer({ flushRows: 20 });
    const order: number[] = [];
    for (let p = 0; p < 6; p++)
      await wb.push({
        parents: page(p * 10, 10),
        dead: [],
        finish: async () => {
          order.push(p);
        },
      });
    await wb.drain();
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(written.map((w) => w.inserted)).toEqual([20, 20, 20]);
    expect(await count()).toBe(60);
  });

  it('batches the timer queued are waited for too: pages are never far ahead of the writer', async () => {
    // Each page is alone in its batch (maxDelayMs fires before flushRows); the writer is slow (its checkpoint waits).
    const { wb, count } = await writer({ flushRows: 1000, maxDelayMs: 1 });
    let committed = 0;
    const ahead: number[] = [];
    for (let p = 0; p < 8; p++) {
      await wb.push({
        parents: page(p * 10, 10),
        dead: [],
        finish: async () => {
          await new Promise((r) => setTimeout(r, 30));
          committed++;
        },
      });
      ahead.push(p + 1 - committed);
      // Let the timer queue this page's batch before the next page arrives.
      await new Promise((r) => setTimeout(r, 5));
    }
    await wb.drain();
    expect(await count()).toBe(80);
    // At most the batch being written and the one queued behind it (unbounded before: every page queued).
    expect(Math.max(...ahead)).toBeLessThanOrEqual(3);
  });

  it('a record the database refuses costs only that record (RQ5004, its partition named); the checkpoints commit', async () => {
    const { wb, written, count } = await writer();
    const checkpoints: number[] = [];
    for (let p = 0; p < 4; p++)
      await wb.push({
        partition: `part${p}`,
        parents: page(p * 10, 10, 25),
        dead: [],
        finish: async () => {
          checkpoints.push(p);
        },
      });
    await wb.drain();
    expect(await count()).toBe(39);
    expect(checkpoints.filter((p) => p === 2)).toHaveLength(1);
    expect([...new Set(checkpoints)].sort()).toEqual([0, 1, 2, 3]);
    const letters = await t.db.query<{ error_code: string; record_key: string; details: unknown }>(
      'select error_code, record_key, details from sync_errors where organization_id = ?',
      [session.org.id],
    );
    expect(letters.map((l) => [l.error_code, l.record_key])).toEqual([['RQ5004', '25']]);
    const details = typeof letters[0]?.details === 'string' ? JSON.parse(letters[0].details) : letters[0]?.details;
    expect(details).toMatchObject({ partition: 'part2', targets: ['practitioners'] });
    expect(written.reduce((a, w) => a + w.inserted, 0)).toBe(39);
    expect(written.reduce((a, w) => a + w.deadLetters, 0)).toBe(1);
  });

  it('after a failed batch nothing later is written, and the error reaches the stream', async () => {
    const { wb, count } = await writer({ flushRows: 10 });
    await wb.push({
      parents: page(0, 10),
      dead: [],
      finish: async () => {
        throw new Error('connection lost');
      },
    });
    await expect(
      (async () => {
        for (let p = 1; p < 4; p++) await wb.push({ parents: page(p * 10, 10), dead: [] });
      })(),
    ).rejects.toThrow('connection lost');
    await expect(wb.drain()).rejects.toThrow('connection lost');
    expect(await count()).toBe(0);
  });

  it('keeps a raw payload with each change of the rows, none for a re-read of unchanged records', async () => {
    const first = await writer();
    await first.wb.push({ parents: page(0, 10), dead: [] });
    await first.wb.drain();
    const raw = async () =>
      (
        await t.db.query<{ external_id: string; source_hash: string }>(
          'select external_id, source_hash from raw_records where organization_id = ? order by external_id::int',
          [session.org.id],
        )
      ).map((r) => `${r.external_id}:${r.source_hash}`);
    expect(await raw()).toEqual(page(0, 10).map((p) => `${p.key}:${p.hash}`));
    // The platform record changed in a field no mapping reads: rows unchanged, so the stored payload (and the
    // rows' source_hash) stay those of the version the rows came from.
    const again = await writer({}, session.org.id);
    await again.wb.push({ parents: page(0, 10, undefined, 'b'), dead: [] });
    await again.wb.drain();
    expect(again.written[0]).toMatchObject({ inserted: 0, updated: 0, unchanged: 10 });
    expect(await raw()).toEqual(page(0, 10).map((p) => `${p.key}:${p.hash}`));
    // A changed row brings its payload along.
    const changed = page(0, 10, undefined, 'c');
    changed[3]!.rows[0]!.row.display_name = 'renamed';
    await again.wb.push({ parents: changed, dead: [] });
    await again.wb.drain();
    expect((await raw())[3]).toBe('3:h3c');
    expect((await raw())[4]).toBe('4:h4');
  });
});
