/** `routiq sql "<query>"`: one SQL statement against the configured database (embedded included). */
import { createHash } from 'node:crypto';
import {
  auditTo,
  CLI_CORRELATION_ID,
  cliActor,
  crossOrganization,
  type Database,
  forOrganization,
  RoutiqError,
  transaction,
} from '@routiq/runner';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';

export const SQL_HELP = `Usage: routiq sql "<query>" [--config FILE] [--org ID] [--json] [--write]

Runs one SQL statement against the database the config points at: DATABASE_URL, or the embedded database
(after \`npm start\`, the demo's). Read-only unless --write is given. Rows go to stdout as a table, or as JSON.
It runs under row-level security like the service: with --org, as the app role scoped to that organization;
without, on the audited cross-organization (admin) path, which sees every organization. Each statement is
recorded in the audit log (sql.read / sql.write: a hash of the statement and the row count, never its text).
Schema changes belong to migrations: the roles have no CREATE.
  --org ID  one organization's rows    --json    rows as a JSON array
  --write   allow INSERT/UPDATE/DELETE (in one transaction)
Examples:
  routiq sql "select organization_id, count(*) from messages group by 1"
  routiq sql --org org_demo_bondi_physio "select status, count(*) from appointments group by 1"
  routiq sql "select stream, status, cursor from sync_state where organization_id = 'org_demo_bondi_physio'" --json
  routiq sql "select code, message from sync_errors order by created_at desc limit 5"`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...COMMON_OPTIONS, write: { type: 'boolean' }, org: { type: 'string' } },
    { command: 'sql', positionals: 'any' },
  );
  const sql = positionals.join(' ').trim();
  if (!sql) throw new RoutiqError('RQ6001', `sql needs a query\n${SQL_HELP}`);
  const { config } = loadContext(values.config);
  const rows = await withDatabase(config, (db) => runStatement(db, sql, !!values.write, values.org), {
    requireMigrated: false,
  });
  if (values.json) out(JSON.stringify(rows, null, 2));
  else if (rows.length) out(formatRows(rows));
  err(`${rows.length} row(s)`);
  return ExitCode.Ok;
}

/**
 * One statement in its own transaction, read-only unless `write` (enforced by PostgreSQL, not by reading the
 * statement), under row-level security: one organization's scope with `org`, else the cross-organization path.
 * Each statement that ran is audited with its hash and row count. Refusals become RQ6001 with the database's message.
 */
export async function runStatement(
  db: Database,
  sql: string,
  write: boolean,
  org?: string | undefined,
): Promise<Record<string, unknown>[]> {
  const scoped = org ? forOrganization(db, org) : crossOrganization(db, 'operator SQL (routiq sql, routiq db shell)');
  const rows = await transaction(scoped, async (q) => {
    if (!write) await q('set transaction read only');
    // No parameters: the statement is sent as written (a `?` jsonb operator included).
    return q<Record<string, unknown>>(sql);
  }).catch((e: unknown) => {
    throw new RoutiqError('RQ4007', `the database refused the statement: ${(e as Error).message ?? String(e)}`);
  });
  await audited(db, sql, write, org, rows.length);
  return rows;
}

/** An operator's statement in the audit log: which kind, a hash to match it with the shell history, how many rows. */
async function audited(db: Database, sql: string, write: boolean, org: string | undefined, count: number) {
  // A database before migration 0011 has no audit log (sql works with requireMigrated: false).
  const [has] = await db.query<{ ok: boolean }>("select to_regclass('audit_log') is not null as ok");
  if (!has?.ok) return;
  await auditTo(db, {
    actor: cliActor(),
    organizationId: org ?? null,
    action: write ? 'sql.write' : 'sql.read',
    resourceType: 'sql',
    resourceId: createHash('sha256').update(sql).digest('hex').slice(0, 16),
    count,
    correlationId: CLI_CORRELATION_ID,
    details: {
      verb: /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? null,
      scope: org ? 'organization' : 'cross_organization',
    },
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
