/**
 * Cliniko's list contract: `q[]=<field>:<op><value>` filters, `sort=col[:desc],...`, `page`/`per_page`,
 * default exclusion of archived / cancelled / deleted rows unless a filter names that column.
 */

export type FieldType = 'datetime' | 'date' | 'numeric' | 'string' | 'boolean';

export type FieldValue = number | string | bigint | boolean | null;

export interface FieldSpec<T> {
  type: FieldType;
  /** datetime: epoch ms; date: YYYY-MM-DD; numeric: bigint; string; boolean. */
  get: (row: T) => FieldValue;
}

export type Schema<T> = Record<string, FieldSpec<T>>;

export class QueryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const NOT_SEARCHABLE = 'This column is not searchable.';

const OPS_BY_TYPE: Record<FieldType, readonly string[]> = {
  datetime: ['>', '>=', '<', '<=', '?', '!?', '*'],
  date: ['=', '>', '>=', '<', '<=', '?', '!?', '*'],
  numeric: ['=', '!=', '>', '>=', '<', '<=', '?', '!?', '*'],
  string: ['=', '!=', '~', '~~', '?', '!?', '*'],
  boolean: ['=', '!='],
};

// Longest first so `>=` is not read as `>` followed by `=...`.
const ALL_OPS = ['>=', '<=', '!=', '!?', '~~', '>', '<', '=', '~', '?', '*'] as const;

export interface ParsedFilter {
  field: string;
  op: string;
  value: string;
  raw: string;
}

/** Reads `q[]` (repeatable) and the legacy single `q`. */
export function readFilters(query: URLSearchParams): ParsedFilter[] {
  const raws = [...query.getAll('q[]'), ...query.getAll('q')];
  return raws.map((raw) => {
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new QueryError(400, 'Invalid search query.');
    const field = raw.slice(0, colon);
    const rest = raw.slice(colon + 1);
    const op = ALL_OPS.find((o) => rest.startsWith(o));
    if (!op) throw new QueryError(400, `Invalid search operator for column ${field}.`);
    return { field, op, value: rest.slice(op.length), raw };
  });
}

const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const DATE_RE = /^(\d{4}|\*{4})-(\d{2}|\*{2})-(\d{2}|\*{2})$/;

function badValue(field: string): QueryError {
  return new QueryError(400, `Invalid search value for column ${field}.`);
}

export function compileFilter<T>(schema: Schema<T>, f: ParsedFilter): (row: T) => boolean {
  const spec = schema[f.field];
  if (!spec) throw new QueryError(400, NOT_SEARCHABLE);
  if (!OPS_BY_TYPE[spec.type].includes(f.op))
    throw new QueryError(400, `Invalid search operator for column ${f.field}.`);
  const get = spec.get;
  if (f.op === '*') {
    if (f.value !== '') throw badValue(f.field);
    return () => true;
  }
  if (f.op === '?' || f.op === '!?') {
    if (f.value !== '') throw badValue(f.field);
    const wantNull = f.op === '!?';
    return (r) => {
      const v = get(r);
      const isNull = v === null || v === '';
      return wantNull ? isNull : !isNull;
    };
  }
  switch (spec.type) {
    case 'datetime': {
      // Cliniko asks for UTC: `2014-08-30T18:00:00Z`. Naive or offset times are rejected here.
      if (!DATETIME_RE.test(f.value)) throw badValue(f.field);
      const t = Date.parse(f.value);
      if (Number.isNaN(t)) throw badValue(f.field);
      return numericCompare(get, f.op, t);
    }
    case 'date': {
      if (!DATE_RE.test(f.value)) throw badValue(f.field);
      if (f.value.includes('*')) {
        if (f.op !== '=') throw badValue(f.field);
        const re = new RegExp(`^${f.value.replace(/\*/g, '\\d')}$`);
        return (r) => {
          const v = get(r);
          return typeof v === 'string' && re.test(v);
        };
      }
      return (r) => {
        const v = get(r);
        if (typeof v !== 'string' || v === '') return false;
        return cmpOp(f.op, v < f.value ? -1 : v > f.value ? 1 : 0);
      };
    }
    case 'numeric': {
      const parts = f.value.split(',');
      if (parts.some((p) => !/^-?\d+$/.test(p))) throw badValue(f.field);
      if (parts.length > 1 && f.op !== '=') throw badValue(f.field);
      const wanted = parts.map((p) => BigInt(p));
      if (f.op === '=') {
        const set = new Set(wanted.map(String));
        return (r) => {
          const v = get(r);
          return v !== null && set.has(String(v));
        };
      }
      const target = wanted[0] as bigint;
      return (r) => {
        const v = get(r);
        if (v === null || (typeof v !== 'bigint' && typeof v !== 'number')) return false;
        const b = BigInt(v);
        return cmpOp(f.op, b < target ? -1 : b > target ? 1 : 0);
      };
    }
    case 'string': {
      const needle = f.value;
      if (f.op === '=') return (r) => get(r) === needle;
      if (f.op === '!=') return (r) => get(r) !== null && get(r) !== needle;
      if (f.op === '~') {
        const low = needle.toLowerCase();
        return (r) => {
          const v = get(r);
          return typeof v === 'string' && v.toLowerCase().includes(low);
        };
      }
      // `~~`: SQL LIKE-style wildcard with %, case-insensitive.
      const re = new RegExp(`^${needle.split('%').map(escapeRe).join('.*')}$`, 'i');
      return (r) => {
        const v = get(r);
        return typeof v === 'string' && re.test(v);
      };
    }
    case 'boolean': {
      if (f.value !== 'true' && f.value !== 'false') throw badValue(f.field);
      const want = f.value === 'true';
      return f.op === '=' ? (r) => get(r) === want : (r) => get(r) !== want;
    }
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function cmpOp(op: string, c: number): boolean {
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    default:
      return false;
  }
}

function numericCompare<T>(get: (r: T) => FieldValue, op: string, target: number): (r: T) => boolean {
  return (r) => {
    const v = get(r);
    if (typeof v !== 'number') return false;
    return cmpOp(op, v < target ? -1 : v > target ? 1 : 0);
  };
}

function compareValues(a: FieldValue, b: FieldValue): number {
  const an = a === null || a === '';
  const bn = b === null || b === '';
  if (an && bn) return 0;
  if (an) return 1;
  if (bn) return -1;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = BigInt(a as bigint);
    const y = BigInt(b as bigint);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1;
  return String(a).localeCompare(String(b), 'en');
}

export interface ListSpec<T> {
  schema: Schema<T>;
  /** Columns whose non-null rows are hidden unless a filter names the column (archived_at, cancelled_at, deleted_at). */
  hiddenUnlessFiltered: string[];
  defaultSort: string;
  idOf: (row: T) => bigint;
}

export interface ListResult<T> {
  rows: T[];
  total: number;
  page: number;
  perPage: number;
}

export const MAX_PER_PAGE = 100;
export const DEFAULT_PER_PAGE = 50;

export function runList<T>(all: readonly T[], spec: ListSpec<T>, query: URLSearchParams): ListResult<T> {
  return pageOf(selectRows(all, spec, query), query);
}

/** Every row of a listing (its filters and sort), before paging. */
export function selectRows<T>(all: readonly T[], spec: ListSpec<T>, query: URLSearchParams): T[] {
  const filters = readFilters(query);
  const preds = filters.map((f) => compileFilter(spec.schema, f));
  const named = new Set(filters.map((f) => f.field));
  const hidden = spec.hiddenUnlessFiltered
    .filter((c) => !named.has(c))
    .map((c) => (spec.schema[c] as FieldSpec<T>).get);
  let rows = all.filter((r) => hidden.every((g) => g(r) === null) && preds.every((p) => p(r)));

  const sortParam = query.get('sort');
  const order = query.get('order');
  const keys: Array<{ get: (r: T) => FieldValue; desc: boolean }> = [];
  const sortText = sortParam && sortParam.trim() !== '' ? sortParam : spec.defaultSort;
  for (const part of sortText.split(',')) {
    const [col, dir] = part.trim().split(':');
    const s = col ? spec.schema[col] : undefined;
    if (!s) throw new QueryError(400, 'This column is not sortable.');
    if (dir !== undefined && dir !== 'asc' && dir !== 'desc') throw new QueryError(400, 'Invalid sort direction.');
    // `order=asc|desc` (deprecated) applies to columns given without a direction.
    keys.push({ get: s.get, desc: dir === 'desc' || (dir === undefined && order === 'desc') });
  }
  rows = [...rows].sort((a, b) => {
    for (const k of keys) {
      const c = compareValues(k.get(a), k.get(b));
      if (c !== 0) return k.desc ? -c : c;
    }
    const x = spec.idOf(a);
    const y = spec.idOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return rows;
}

/** One page of a listing's rows (`page`, `per_page`). */
export function pageOf<T>(rows: readonly T[], query: URLSearchParams): ListResult<T> {
  const page = positiveInt(query.get('page'), 1, 'page');
  const perPage = positiveInt(query.get('per_page'), DEFAULT_PER_PAGE, 'per_page');
  if (perPage > MAX_PER_PAGE) throw new QueryError(400, `per_page must be between 1 and ${MAX_PER_PAGE}.`);
  return { rows: rows.slice((page - 1) * perPage, page * perPage), total: rows.length, page, perPage };
}

function positiveInt(v: string | null, dflt: number, name: string): number {
  if (v === null || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new QueryError(400, `${name} must be a positive integer.`);
  return Number(v);
}

/** `links` for a list: self always; next/previous only when such a page exists. Other params are kept. */
export function pageLinks(
  base: string,
  path: string,
  query: URLSearchParams,
  page: number,
  perPage: number,
  total: number,
) {
  const build = (p: number) => {
    const out = new URLSearchParams();
    out.set('page', String(p));
    for (const [k, v] of query) if (k !== 'page') out.append(k, v);
    return `${base}${path}?${out.toString()}`;
  };
  const links: Record<string, string> = { self: build(page) };
  if (page * perPage < total) links.next = build(page + 1);
  if (page > 1) links.previous = build(page - 1);
  return links;
}
