import { RoutiqError } from '../errors/registry.ts';

/** Dead letters of a record: its raw payload is kept and can be mapped again with the current spec. */
export const RECORD_CLASSES = ['mapping', 'validation', 'hook', 'write'] as const;
/** Dead letters of a request the platform answered with an error. */
export const REQUEST_CLASSES = ['transient', 'rate_limited', 'auth', 'permanent'] as const;
/** A webhook delivery that failed after its last attempt (the delivery's payload and headers are kept). */
export const WEBHOOK_CLASSES = ['webhook'] as const;
export const ERROR_CLASSES = [...RECORD_CLASSES, ...REQUEST_CLASSES, ...WEBHOOK_CLASSES] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Which dead letters a list, resolve or replay applies to. Every given criterion must hold. */
export interface DeadLetterFilter {
  ids?: string[] | undefined;
  org?: string | undefined;
  /** A connector name (e.g. `chatwoot`) or a connection name. */
  connector?: string | undefined;
  connection?: string | undefined;
  stream?: string | undefined;
  /** error_class values, or the groups `record` (mapping, validation, hook, write) and `request`. */
  class?: string | string[] | undefined;
  code?: string | undefined;
  /** Only letters created longer ago than this: `90s`, `30m`, `2h`, `7d`, `2w` or ISO-8601 (`PT2H`). */
  olderThan?: string | undefined;
  /** Only letters created within this duration. */
  newerThan?: string | undefined;
  /** true: resolved only; false: open only; undefined: both. */
  resolved?: boolean | undefined;
  limit?: number | undefined;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `2h` → 7_200_000. Also accepts ISO-8601 durations (`P1DT2H`). Anything else is a usage error (RQ6001). */
export function parseAge(text: string, what = 'duration'): number {
  const t = text.trim();
  const simple = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/i.exec(t);
  if (simple) return Math.round(Number(simple[1]) * (UNITS[(simple[2] as string).toLowerCase()] ?? 0));
  const iso = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(t);
  if (iso && t.length > 1 && !/T$/i.test(t)) {
    const [, w, d, h, m, s] = iso;
    return (
      Number(w ?? 0) * UNITS.w! +
      Number(d ?? 0) * UNITS.d! +
      Number(h ?? 0) * UNITS.h! +
      Number(m ?? 0) * UNITS.m! +
      Math.round(Number(s ?? 0) * 1000)
    );
  }
  throw new RoutiqError('RQ6001', `${what} "${text}" is not a duration such as 90s, 30m, 2h, 7d or 2w`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertDeadLetterId(id: string): string {
  if (!UUID.test(id)) throw new RoutiqError('RQ6001', `"${id}" is not a dead-letter id (a UUID, as dlq list prints)`);
  return id.toLowerCase();
}

/** Expand `record` / `request` and check every class name. */
export function expandClasses(c: string | string[] | undefined): ErrorClass[] | undefined {
  if (c === undefined) return undefined;
  const list = (Array.isArray(c) ? c : [c]).flatMap((x) => x.split(',')).map((x) => x.trim().toLowerCase());
  const out = new Set<ErrorClass>();
  for (const x of list) {
    if (!x) continue;
    if (x === 'record') for (const k of RECORD_CLASSES) out.add(k);
    else if (x === 'request') for (const k of REQUEST_CLASSES) out.add(k);
    else if ((ERROR_CLASSES as readonly string[]).includes(x)) out.add(x as ErrorClass);
    else
      throw new RoutiqError(
        'RQ6001',
        `unknown dead-letter class "${x}" (classes: ${ERROR_CLASSES.join(', ')}; groups: record, request)`,
      );
  }
  return [...out];
}

/** A SQL `where` body over sync_errors (alias `e`) with `?` parameters. Times are the database's clock. */
export function whereClause(f: DeadLetterFilter): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (f.ids) {
    const ids = f.ids.map(assertDeadLetterId);
    if (!ids.length) parts.push('false');
    else {
      parts.push(`e.id in (${ids.map(() => '?::uuid').join(', ')})`);
      params.push(...ids);
    }
  }
  if (f.org !== undefined) {
    parts.push('e.organization_id = ?');
    params.push(f.org);
  }
  if (f.connector !== undefined) {
    parts.push('(e.connector = ? or e.connection = ?)');
    params.push(f.connector, f.connector);
  }
  if (f.connection !== undefined) {
    parts.push('e.connection = ?');
    params.push(f.connection);
  }
  if (f.stream !== undefined) {
    parts.push('e.stream = ?');
    params.push(f.stream);
  }
  const classes = expandClasses(f.class);
  if (classes) {
    if (!classes.length) parts.push('false');
    else {
      parts.push(`e.error_class in (${classes.map(() => '?').join(', ')})`);
      params.push(...classes);
    }
  }
  if (f.code !== undefined) {
    parts.push('e.error_code = ?');
    params.push(f.code.toUpperCase());
  }
  if (f.olderThan !== undefined) {
    parts.push("e.created_at < now() - (? * interval '1 millisecond')");
    params.push(parseAge(f.olderThan, 'older-than'));
  }
  if (f.newerThan !== undefined) {
    parts.push("e.created_at >= now() - (? * interval '1 millisecond')");
    params.push(parseAge(f.newerThan, 'newer-than'));
  }
  if (f.resolved !== undefined) {
    parts.push(f.resolved ? 'e.resolved' : 'not e.resolved');
  }
  return { sql: parts.length ? parts.join(' and ') : 'true', params };
}

export function limitClause(limit: number | undefined): string {
  if (limit === undefined) return '';
  if (!Number.isInteger(limit) || limit < 1)
    throw new RoutiqError('RQ6001', `limit must be a whole number >= 1, got ${String(limit)}`);
  return ` limit ${limit}`;
}

/** Throw the usage error (RQ6001) a filter would raise, before any database is opened. */
export function validateFilter(f: DeadLetterFilter): void {
  whereClause(f);
  limitClause(f.limit);
}

/** True when the filter selects something narrower than "every dead letter". */
export function hasSelector(f: DeadLetterFilter): boolean {
  return [f.ids, f.org, f.connector, f.connection, f.stream, f.class, f.code, f.olderThan, f.newerThan].some(
    (v) => v !== undefined,
  );
}
