/**
 * Which (organization, connection) pairs are due, and when. A connection without its own `schedule` runs every
 * `service.interval_minutes` (5 by default; fractions allowed) at an offset in seconds taken from a hash of its key,
 * so a thousand organizations are spread evenly over the interval instead of starting in the same minute;
 * `schedule: "<cron>"` (UTC) overrides it. A slot is one (pair, start time). Its pg-boss job id is derived from it,
 * so however many instances enqueue a slot, and however often, it becomes one job.
 */
import { createHash } from 'node:crypto';
import cronParser from 'cron-parser';
import type { RoutiqConfig } from '../config/types.ts';

export interface DueSync {
  organizationId: string;
  connection: string;
  /** The start of the schedule slot (ms): one run per slot. */
  slot: number;
}

export interface Schedules {
  intervalMinutes: number;
  of: (orgId: string, connection: string) => string | undefined;
}

/** The default schedule's period, in whole seconds (at least 15). */
export function intervalSeconds(minutes: number): number {
  return Math.max(15, Math.round(minutes * 60));
}

/** The default schedule's offset of a pair within its interval, in seconds. */
export function offsetSeconds(organizationId: string, connection: string, interval: number): number {
  return createHash('sha256').update(`${organizationId}/${connection}`).digest().readUInt32BE(0) % interval;
}

/** Returns the cron-parser message for a schedule that is not a valid cron expression (checked at start-up). */
export function validateCron(expr: string): string | undefined {
  try {
    cronParser.parseExpression(expr, { tz: 'UTC' });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Every slot starting in (fromMs, toMs]. */
export function dueBetween(config: RoutiqConfig, fromMs: number, toMs: number, schedules: Schedules): DueSync[] {
  const out: DueSync[] = [];
  if (toMs <= fromMs) return out;
  const every = intervalSeconds(schedules.intervalMinutes) * 1000;
  for (const org of config.organizations) {
    for (const conn of org.connections) {
      if (!conn.enabled) continue;
      const cron = schedules.of(org.id, conn.name);
      if (cron) {
        const it = cronParser.parseExpression(cron, {
          currentDate: new Date(fromMs),
          endDate: new Date(toMs),
          tz: 'UTC',
        });
        while (it.hasNext()) out.push({ organizationId: org.id, connection: conn.name, slot: it.next().getTime() });
        continue;
      }
      const offset = offsetSeconds(org.id, conn.name, every / 1000) * 1000;
      for (let slot = Math.floor((toMs - offset) / every) * every + offset; slot > fromMs; slot -= every)
        out.push({ organizationId: org.id, connection: conn.name, slot });
    }
  }
  return out;
}

/** The pg-boss job id of a slot: a UUID-shaped digest of (organization, connection, slot start). */
export function slotJobId(s: DueSync): string {
  const h = createHash('sha256').update(`${s.organizationId}/${s.connection}@${s.slot}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
