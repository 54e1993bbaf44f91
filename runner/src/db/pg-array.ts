/**
 * A PostgreSQL array literal, for one `?::text[]` (or `::date[]`, `::uuid[]`) parameter: every element quoted with
 * backslash and double quote escaped, null as NULL. A string, so the statement's text is the same whether its values
 * are sent as bind parameters or inlined. One parameter per column instead of one per value: a statement of 500 rows
 * of 20 columns is planned and parsed as one of 20 parameters (`unnest(…)`), not as a VALUES list of 10,000.
 */
export function pgArray(values: Iterable<string | null>): string {
  let s = '{';
  let first = true;
  for (const v of values) {
    if (!first) s += ',';
    s += v === null ? 'NULL' : `"${escaped(v)}"`;
    first = false;
  }
  return `${s}}`;
}

const SPECIAL = /[\\"]/;

function escaped(v: string): string {
  // Most values hold neither: the test is cheaper than a replace that finds nothing.
  return SPECIAL.test(v) ? v.replace(/[\\"]/g, '\\$&') : v;
}
