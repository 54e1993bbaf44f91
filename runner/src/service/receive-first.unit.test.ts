import { describe, expect, it } from 'vitest';
import { ReceiveFirst } from './receive-first.ts';

/** Two full loop turns: a turn() that could go on has gone on by then. */
const twoTurns = () => new Promise<'pending'>((r) => setImmediate(() => setImmediate(() => r('pending'))));

describe('ReceiveFirst', () => {
  it('holds a processing turn while a receive is being handled, and lets it go when the receive is handed over', async () => {
    // A back-off far longer than the test: only end() can release the turn.
    const rf = new ReceiveFirst({ backoffMs: 600_000, receivingMax: 1 });
    rf.start();
    try {
      await rf.turn(); // nothing received: the turn only gives the loop back
      rf.begin();
      expect(rf.pressed).toBe(true);
      const turn = rf.turn().then(() => 'done' as const);
      expect(await Promise.race([turn, twoTurns()])).toBe('pending');
      rf.end();
      expect(await turn).toBe('done');
      expect(rf.pressed).toBe(false);
    } finally {
      rf.stop();
    }
  });

  it('runs one delivery batch at a time while receives come first, the configured number otherwise', () => {
    const rf = new ReceiveFirst({ receivingMax: 1 });
    expect(rf.concurrency(4)).toBe(4);
    expect(rf.concurrency(0)).toBe(1);
    rf.begin();
    rf.begin();
    expect(rf.concurrency(4)).toBe(1);
    rf.end();
    expect(rf.concurrency(4)).toBe(1);
    rf.end();
    expect(rf.concurrency(4)).toBe(4);
    expect(rf.state.receiving).toBe(0);
  });

  it('releases every held turn when stopped (shutdown never waits on the back-off)', async () => {
    const rf = new ReceiveFirst({ backoffMs: 600_000, receivingMax: 1 });
    rf.start();
    rf.begin();
    const turns = Promise.all([rf.turn(), rf.turn()]);
    expect(await Promise.race([turns.then(() => 'done'), twoTurns()])).toBe('pending');
    rf.stop();
    await turns;
    expect(rf.state.receiving).toBe(1);
  });

  it('comes first from receivingMax receives in flight (32 by default), not for each one of a steady load', () => {
    const rf = new ReceiveFirst();
    for (let i = 0; i < 31; i++) rf.begin();
    expect(rf.pressed).toBe(false);
    expect(rf.concurrency(2)).toBe(2);
    rf.begin();
    expect(rf.pressed).toBe(true);
    expect(rf.concurrency(2)).toBe(1);
    rf.end();
    expect(rf.pressed).toBe(false);
  });

  it('also comes first while its extra condition holds (embedded: deliveries waiting for the inbox commit)', () => {
    let waiting = 1;
    const rf = new ReceiveFirst({ also: () => waiting > 0 });
    expect(rf.pressed).toBe(true);
    expect(rf.concurrency(4)).toBe(1);
    waiting = 0;
    expect(rf.pressed).toBe(false);
    expect(rf.concurrency(4)).toBe(4);
  });
});
