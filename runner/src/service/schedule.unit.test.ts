import { describe, expect, it } from 'vitest';
import { org, testConfig } from '../../../test/helpers/engine.ts';
import { dueBetween, intervalSeconds, offsetSeconds, slotJobId } from './schedule.ts';

const MINUTE = 60_000;
const T = Date.UTC(2026, 0, 5, 10, 0, 0);

function config(orgs: number, extra: Parameters<typeof org>[1] = []) {
  return testConfig(
    '/nowhere',
    Array.from({ length: orgs }, (_, i) =>
      org(`org_${i}`, [{ connector: 'chatwoot' }, { connector: 'cliniko' }, ...extra]),
    ),
  );
}
const none = { intervalMinutes: 5, of: () => undefined };

describe('schedule slots', () => {
  it('gives every pair one slot per interval, at its own offset in seconds, spread over the interval', () => {
    const c = config(500);
    const due = dueBetween(c, T, T + 3 * 5 * MINUTE, none);
    expect(due.length).toBe(500 * 2 * 3);
    const byPair = new Map<string, number[]>();
    for (const d of due)
      byPair.set(`${d.organizationId}/${d.connection}`, [
        ...(byPair.get(`${d.organizationId}/${d.connection}`) ?? []),
        d.slot,
      ]);
    for (const [key, slots] of byPair) {
      const [o, conn] = key.split('/') as [string, string];
      const sorted = slots.sort((a, b) => a - b);
      expect(sorted.map((s, i) => s - (sorted[0] ?? 0) - i * 5 * MINUTE)).toEqual([0, 0, 0]);
      expect((sorted[0]! / 1000) % 300).toBe(offsetSeconds(o, conn, 300));
    }
    // Spread: no 10-second stretch of the interval holds more than twice its share of the 1,000 pairs.
    const buckets = new Array(30).fill(0) as number[];
    for (const d of due)
      if (d.slot <= T + 5 * MINUTE) buckets[Math.floor(((d.slot - T - 1) % (5 * MINUTE)) / 10_000)]!++;
    expect(Math.max(...buckets)).toBeLessThanOrEqual((2 * 1000) / 30);
  });

  it('tiles time: consecutive windows hold each slot once, overlapping windows repeat it with the same job id', () => {
    const c = config(50);
    const whole = dueBetween(c, T, T + 10 * MINUTE, none)
      .map(slotJobId)
      .sort();
    const parts: string[] = [];
    for (let t = T; t < T + 10 * MINUTE; t += 7_000)
      parts.push(...dueBetween(c, t, Math.min(t + 7_000, T + 10 * MINUTE), none).map(slotJobId));
    expect(parts.sort()).toEqual(whole);
    expect(new Set(whole).size).toBe(whole.length);
    // The catch-up window (the last minute, checked every 5 s) sees a slot up to 12 times: always the same id.
    const a = dueBetween(c, T, T + MINUTE, none).map(slotJobId);
    const b = dueBetween(c, T + 5_000, T + MINUTE + 5_000, none).map(slotJobId);
    expect(a.filter((x) => b.includes(x)).length).toBeGreaterThan(0);
    expect(slotJobId({ organizationId: 'o', connection: 'c', slot: T })).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('takes fractional intervals (at least 15 s), cron overrides at minute granularity, and skips disabled connections', () => {
    expect(intervalSeconds(0.5)).toBe(30);
    expect(intervalSeconds(0.1)).toBe(15);
    const c = config(1, [{ connector: 'manychat', enabled: false }]);
    const half = dueBetween(c, T, T + 2 * MINUTE, { intervalMinutes: 0.5, of: () => undefined });
    expect(half.filter((d) => d.connection === 'chatwoot').length).toBe(4);
    expect(half.some((d) => d.connection === 'manychat')).toBe(false);
    const cron = dueBetween(c, T, T + 60 * MINUTE, {
      intervalMinutes: 5,
      of: (_o, conn) => (conn === 'cliniko' ? '*/15 * * * *' : undefined),
    });
    expect(cron.filter((d) => d.connection === 'cliniko').map((d) => (d.slot - T) / MINUTE)).toEqual([15, 30, 45, 60]);
    expect(dueBetween(c, T, T, none)).toEqual([]);
  });
});
