/**
 * Which (organization, connection) pairs are due at a minute. A connection without its own `schedule` runs every
 * `service.interval_minutes` (5 by default) at a minute offset taken from a hash of its key, so a thousand
 * organizations do not all start in the same minute; `schedule: "<cron>"` (UTC) overrides it.
 */
import { createHash } from 'node:crypto';
import cronParser from 'cron-parser';
import type { RoutiqConfig } from '../config/types.ts';

export interface DueSync {
  organizationId: string;
  connection: string;
  /** The start of the schedule slot (ms): one run per slot. */
  slot: number;
  /** Seconds until the next slot of the same schedule (the singleton window). */
  intervalSeconds: number;
}

const MINUTE = 60_000;

function offsetOf(key: string, interval: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % interval;
}

/** A cron expression matches `minute` (ms, start of a UTC minute); returns its interval to the next match. */
function cronDue(expr: string, minute: number): number | undefined {
  const it = cronParser.parseExpression(expr, { currentDate: new Date(minute - 1), tz: 'UTC' });
  const next = it.next().getTime();
  if (next !== minute) return undefined;
  return Math.max(60, Math.round((it.next().getTime() - next) / 1000));
}

/** Throws RQ1003-style messages for a schedule that is not a valid cron expression (checked at start-up). */
export function validateCron(expr: string): string | undefined {
  try {
    cronParser.parseExpression(expr, { tz: 'UTC' });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function dueAt(
  config: RoutiqConfig,
  minuteMs: number,
  schedules: { intervalMinutes: number; of: (orgId: string, connection: string) => string | undefined },
): DueSync[] {
  const minute = Math.floor(minuteMs / MINUTE) * MINUTE;
  const out: DueSync[] = [];
  for (const org of config.organizations) {
    for (const conn of org.connections) {
      if (!conn.enabled) continue;
      const cron = schedules.of(org.id, conn.name);
      if (cron) {
        const interval = cronDue(cron, minute);
        if (interval !== undefined)
          out.push({ organizationId: org.id, connection: conn.name, slot: minute, intervalSeconds: interval });
        continue;
      }
      const every = Math.max(1, schedules.intervalMinutes);
      const n = minute / MINUTE;
      if (n % every === offsetOf(`${org.id}/${conn.name}`, every))
        out.push({ organizationId: org.id, connection: conn.name, slot: minute, intervalSeconds: every * 60 });
    }
  }
  return out;
}
