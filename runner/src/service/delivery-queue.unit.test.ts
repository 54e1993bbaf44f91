import { describe, expect, it } from 'vitest';
import { DeliveryQueue, type QueuedDelivery } from './delivery-queue.ts';

function queue(o: { concurrency: number; batchSize: number; maxQueued?: number; fail?: string }) {
  const batches: string[][] = [];
  const errors: string[] = [];
  const q = new DeliveryQueue({
    concurrency: () => o.concurrency,
    batchSize: o.batchSize,
    maxQueued: o.maxQueued ?? 1000,
    process: async (pair: string, batch: QueuedDelivery[]) => {
      batches.push([pair, ...batch.map((d) => d.id)]);
      if (pair === o.fail) throw new Error(`${pair} failed`);
    },
    onError: (pair) => errors.push(pair),
  });
  return { q, batches, errors };
}

describe('DeliveryQueue', () => {
  it('takes the pairs in turn: a busy pair waits behind the others after each batch', async () => {
    const { q, batches } = queue({ concurrency: 1, batchSize: 2 });
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) q.enqueue('A', id);
    q.enqueue('B', 'b1');
    q.enqueue('C', 'c1');
    await q.idle();
    expect(batches).toEqual([
      ['A', 'a1'],
      ['B', 'b1'],
      ['C', 'c1'],
      ['A', 'a2', 'a3'],
      ['A', 'a4', 'a5'],
      ['A', 'a6'],
    ]);
  });

  it('runs at most `concurrency` batches, one per pair at a time; an id queued twice is processed once', async () => {
    const { q, batches } = queue({ concurrency: 2, batchSize: 10 });
    q.enqueue('A', 'a1');
    q.enqueue('B', 'b1');
    q.enqueue('C', 'c1');
    q.enqueue('A', 'a2');
    q.enqueue('A', 'a2');
    q.enqueue('C', 'c2');
    await q.idle();
    expect(batches).toEqual([
      ['A', 'a1'],
      ['B', 'b1'],
      ['C', 'c1', 'c2'],
      ['A', 'a2'],
    ]);
  });

  it('refuses ids past its cap (left to the sweeper) and keeps going after a failed batch', async () => {
    const { q, batches, errors } = queue({ concurrency: 1, batchSize: 10, maxQueued: 2, fail: 'A' });
    // a1 is taken at once; two more fit, the fourth does not.
    expect(['a1', 'a2', 'a3', 'a4'].map((id) => q.enqueue('A', id))).toEqual([true, true, true, false]);
    expect(q.enqueue('B', 'b1')).toBe(false);
    await q.idle();
    expect(q.enqueue('B', 'b1')).toBe(true);
    await q.idle();
    expect(batches).toEqual([
      ['A', 'a1'],
      ['A', 'a2', 'a3'],
      ['B', 'b1'],
    ]);
    expect(errors).toEqual(['A', 'A']);
    expect(q.waiting).toBe(0);
  });
});
