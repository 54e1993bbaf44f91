import { describe, expect, it } from 'vitest';
import { compileFilter, type ListSpec, NOT_SEARCHABLE, pageLinks, QueryError, readFilters, runList } from './query.ts';

interface Row {
  id: bigint;
  created: number;
  updated: number;
  archived: number | null;
  name: string;
  dob: string | null;
  dna: boolean;
}

const t = (s: string) => Date.parse(s);
const rows: Row[] = [
  {
    id: 900000000000000001n,
    created: t('2025-01-01T00:00:00Z'),
    updated: t('2025-03-01T10:00:00.500Z'),
    archived: null,
    name: 'Zoë',
    dob: '1990-05-02',
    dna: false,
  },
  {
    id: 900000000000000002n,
    created: t('2025-01-02T00:00:00Z'),
    updated: t('2025-03-01T10:00:00Z'),
    archived: t('2025-02-01T00:00:00Z'),
    name: 'Ana',
    dob: null,
    dna: true,
  },
  {
    id: 900000000000000003n,
    created: t('2025-01-02T00:00:00Z'),
    updated: t('2025-02-01T00:00:00Z'),
    archived: null,
    name: 'Bea',
    dob: '1985-05-30',
    dna: false,
  },
];
const spec: ListSpec<Row> = {
  schema: {
    id: { type: 'numeric', get: (r) => r.id },
    created_at: { type: 'datetime', get: (r) => r.created },
    updated_at: { type: 'datetime', get: (r) => r.updated },
    archived_at: { type: 'datetime', get: (r) => r.archived },
    first_name: { type: 'string', get: (r) => r.name },
    date_of_birth: { type: 'date', get: (r) => r.dob },
    did_not_arrive: { type: 'boolean', get: (r) => r.dna },
  },
  hiddenUnlessFiltered: ['archived_at'],
  defaultSort: 'created_at',
  idOf: (r) => r.id,
};
const q = (s: string) => new URLSearchParams(s);
const ids = (res: { rows: Row[] }) => res.rows.map((r) => String(r.id).slice(-1));

describe('cliniko q[] filters', () => {
  it('parses operators longest-first', () => {
    expect(readFilters(q('q[]=updated_at:>=2025-01-01T00:00:00Z'))[0]).toMatchObject({ field: 'updated_at', op: '>=' });
    expect(readFilters(q('q[]=archived_at:*'))[0]).toMatchObject({ op: '*', value: '' });
    expect(readFilters(q('q[]=archived_at:!?'))[0]).toMatchObject({ op: '!?' });
    expect(readFilters(q('q=first_name:~~Z%'))[0]).toMatchObject({ op: '~~', value: 'Z%' });
  });

  it('rejects non-searchable columns with the real message', () => {
    expect(() => runList(rows, spec, q('q[]=email:=x@y.z'))).toThrowError(new QueryError(400, NOT_SEARCHABLE));
  });

  it('rejects naive date-times and wrong operators', () => {
    expect(() => runList(rows, spec, q('q[]=updated_at:>2025-03-01T10:00:00'))).toThrow(QueryError);
    expect(() => runList(rows, spec, q('q[]=updated_at:=2025-03-01T10:00:00Z'))).toThrow(QueryError);
    expect(() => runList(rows, spec, q('q[]=did_not_arrive:=yes'))).toThrow(QueryError);
  });

  it('hides archived rows unless a filter names archived_at', () => {
    expect(ids(runList(rows, spec, q('')))).toEqual(['1', '3']);
    expect(ids(runList(rows, spec, q('q[]=archived_at:*')))).toEqual(['1', '2', '3']);
    expect(ids(runList(rows, spec, q('q[]=archived_at:?')))).toEqual(['2']);
  });

  it('compares date-times with sub-second precision against a second-precision watermark', () => {
    // Row 1 was updated at 10:00:00.500; displayed as 10:00:00Z. `>` the displayed value still includes it.
    expect(ids(runList(rows, spec, q('q[]=updated_at:>2025-03-01T10:00:00Z&q[]=archived_at:*')))).toEqual(['1']);
  });

  it('supports numeric lists beyond 2^53, strings, dates with wildcards and booleans', () => {
    expect(ids(runList(rows, spec, q('q[]=id:=900000000000000001,900000000000000003')))).toEqual(['1', '3']);
    expect(ids(runList(rows, spec, q('q[]=id:>900000000000000001')))).toEqual(['3']);
    expect(ids(runList(rows, spec, q('q[]=first_name:~zo')))).toEqual(['1']);
    expect(ids(runList(rows, spec, q('q[]=date_of_birth:=****-05-**')))).toEqual(['1', '3']);
    expect(ids(runList(rows, spec, q('q[]=did_not_arrive:=true&q[]=archived_at:*')))).toEqual(['2']);
    const f = compileFilter(spec.schema, readFilters(q('q[]=date_of_birth:!?'))[0]!);
    expect(rows.filter(f).length).toBe(1);
  });

  it('sorts (default created_at asc, id tie-break), honours sort= and the deprecated order=', () => {
    expect(ids(runList(rows, spec, q('q[]=archived_at:*')))).toEqual(['1', '2', '3']);
    expect(ids(runList(rows, spec, q('q[]=archived_at:*&sort=updated_at:desc,id')))).toEqual(['1', '2', '3']);
    expect(ids(runList(rows, spec, q('q[]=archived_at:*&sort=updated_at')))).toEqual(['3', '2', '1']);
    // Ties (rows 2 and 3 share created_at) always break on id ascending.
    expect(ids(runList(rows, spec, q('q[]=archived_at:*&order=desc')))).toEqual(['2', '3', '1']);
    expect(() => runList(rows, spec, q('sort=email'))).toThrow(QueryError);
  });

  it('pages with per_page 1..100 (default 50) and builds links only when needed', () => {
    expect(runList(rows, spec, q('')).perPage).toBe(50);
    expect(() => runList(rows, spec, q('per_page=101'))).toThrow(QueryError);
    expect(() => runList(rows, spec, q('per_page=0'))).toThrow(QueryError);
    const r = runList(rows, spec, q('per_page=1&page=2&q[]=archived_at:*'));
    expect(ids(r)).toEqual(['2']);
    const links = pageLinks('http://x/v1', '/patients', q('per_page=1&page=2&q[]=archived_at:*'), 2, 1, 3);
    expect(links.self).toBe('http://x/v1/patients?page=2&per_page=1&q%5B%5D=archived_at%3A*');
    expect(links.next).toContain('page=3');
    expect(links.previous).toContain('page=1');
    expect(pageLinks('http://x/v1', '/patients', q(''), 1, 50, 3)).toEqual({ self: 'http://x/v1/patients?page=1' });
  });
});
