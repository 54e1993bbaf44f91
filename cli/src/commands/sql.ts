/** `routiq sql "<query>"`: one SQL statement against the configured database (embedded included). */
import { type Database, RoutiqError, transaction } from '@routiq/runner';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';

export const SQL_HELP = `Usage: routiq sql "<query>" [--config FILE] [--json] [--write]

Runs one SQL statement against the database the config points at: DATABASE_URL, or the embedded database
(after \`npm start\`, the demo's). Read-only unless --write is given. Rows go to stdout as a table, or as JSON.
  --json    rows as a JSON array       --write   allow INSERT/UPDATE/DELETE/DDL (in one transaction)
Examples:
  routiq sql "select organization_id, count(*) from messages group by 1"
  routiq sql "select stream, status, cursor from sync_state where organization_id = 'org_demo_bondi_physio'" --json
  routiq sql "select code, message from sync_errors order by created_at desc limit 5"`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...COMMON_OPTIONS, write: { type: 'boolean' } },
    { command: 'sql', positionals: 'any' },
  );
  const sql = positionals.join(' ').trim();
  if (!sql) throw new RoutiqError('RQ6001', `sql needs a query\n${SQL_HELP}`);
  const { config } = loadContext(values.config);
  const rows = await withDatabase(config, (db) => runStatement(db, sql, !!values.write), { requireMigrated: false });
  if (values.json) out(JSON.stringify(rows, null, 2));
  else if (rows.length) out(formatRows(rows));
  err(`${rows.length} row(s)`);
  return ExitCode.Ok;
}

/**
 * One statement in its own transaction, read-only unless `write` (enforced by PostgreSQL, not by reading the
 * statement). Refusals become RQ6001 with the database's message.
 */
export async function runStatement(db: Database, sql: string, write: boolean): Promise<Record<string, unknown>[]> {
  return transaction(db, async (q) => {
    if (!write) await q('set transaction read only');
    // No parameters: the statement is sent as written (a `?` jsonb operator included).
    return q<Record<string, unknown>>(sql);
  }).catch((e: unknown) => {
    const m = (e as Error).message ?? String(e);
    if (/read-only transaction/.test(m))
      throw new RoutiqError('RQ6001', `${m}\n  hint: add --write to change data (it runs in one transaction)`);
    throw new RoutiqError('RQ6001', `the database refused the statement: ${m}`);
  });
}

/** Rows as a text table (JSON for objects, empty for null). */
export function formatRows(rows: Record<string, unknown>[]): string {
  const header = Object.keys(rows[0] ?? {});
  const cell = (v: unknown) =>
    v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return table(
    rows.map((r) => header.map((h) => cell(r[h]))),
    header,
  );
}
