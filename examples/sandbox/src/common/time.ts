/** Time helpers. All sims keep times as epoch milliseconds internally and render per platform. */

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** `2025-11-20T03:15:22Z` (Cliniko style: whole seconds, UTC). */
export function isoSeconds(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

/** `2025-11-20T03:15:22.262Z` (Rails JSON for times, as in Chatwoot webhooks). */
export function isoMillis(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}

/** Unix seconds as an integer (Rails `.to_i`). */
export function unix(ms: number): number {
  return Math.floor(ms / 1000);
}

/** `2025-11-20T14:03:11+11:00`: W3C datetime in a fixed local offset (ManyChat). */
export function isoWithOffset(ms: number, offsetMinutes: number): string {
  const local = new Date(Math.floor(ms / 1000) * 1000 + offsetMinutes * MINUTE).toISOString().slice(0, 19);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

export function dayStartUtc(ms: number): number {
  return Math.floor(ms / DAY) * DAY;
}

/** Resolves the `now` option: explicit value, else the start of the current UTC day (stable within a day). */
export function resolveNow(now: number | Date | string | undefined): number {
  if (now === undefined) return dayStartUtc(Date.now());
  if (typeof now === 'number') return now;
  if (now instanceof Date) return now.getTime();
  const parsed = Date.parse(now);
  if (Number.isNaN(parsed)) throw new Error(`invalid now: ${now}`);
  return parsed;
}

/** A deterministic clock: starts at the dataset's "now" and only moves when a mutation advances it. */
export class SimClock {
  constructor(public nowMs: number) {}

  advance(ms: number): number {
    this.nowMs += Math.max(1, Math.floor(ms));
    return this.nowMs;
  }
}
