/**
 * `routiq db shell`: an SQL prompt against the database the config points at, the embedded one included (psql
 * cannot open PGlite's directory). On a terminal it reads lines with a prompt and keeps going after an error;
 * with statements piped in it runs them in order and stops at the first that fails (exit 1).
 */
import { createInterface } from 'node:readline';
import { type Database, RoutiqError, redactUrlCredentials } from '@routiq/runner';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';
import { splitStatements } from '../sql-statements.ts';
import { formatRows, runStatement } from './sql.ts';

export const DB_HELP = `Usage: routiq db shell [--config FILE] [--org ID] [--write] [--json]

An SQL prompt on the database the config points at: DATABASE_URL, or the embedded database (after \`npm start\`,
the demo's). Statements end with ";" and may span lines; each runs in its own transaction, read-only unless
--write. Rows go to stdout as a table (--json: one JSON array per statement), the row count to stderr.
Statements run under row-level security as \`routiq sql\` does: --org ID sees one organization's rows; without it,
the audited cross-organization path. Each statement is recorded in the audit log (its hash, never its text).
On a terminal: a prompt, line editing and history; an error is shown and the prompt comes back.
Piped: the statements are read from stdin and run in order; the first that fails stops the shell (exit 1).
  \\q  quit     \\dt  tables     \\d TABLE  columns of a table     \\?  these commands
On a PostgreSQL server psql works as well: psql "$DATABASE_URL".
Examples:
  routiq db shell
  routiq db shell --config .routiq/demo/routiq.yaml
  routiq db shell --org org_demo_bondi_physio
  echo "select organization_id, count(*) from messages group by 1;" | routiq db shell
  routiq db shell --json < report.sql > report.jsonl`;

const META_HELP = `\\q          quit (Ctrl-D too)
\\dt         tables of the schema
\\d TABLE    columns of a table
\\?          this list`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'help') {
    out(DB_HELP);
    return ExitCode.Ok;
  }
  if (sub !== 'shell') throw new RoutiqError('RQ6001', `db: unknown sub-command "${sub ?? ''}" (shell)\n${DB_HELP}`);
  const { values } = parseOptions(
    rest,
    { ...COMMON_OPTIONS, write: { type: 'boolean' }, org: { type: 'string' } },
    { command: 'db shell' },
  );
  const { config } = loadContext(values.config);
  const o = { json: !!values.json, write: !!values.write, org: values.org, interactive: !!process.stdin.isTTY };
  return withDatabase(config, (db) => shell(db, o), { requireMigrated: false });
}

interface ShellOptions {
  json: boolean;
  write: boolean;
  /** One organization's scope; undefined: the cross-organization path. */
  org?: string | undefined;
  interactive: boolean;
  input?: NodeJS.ReadableStream;
}

export async function shell(db: Database, o: ShellOptions): Promise<number> {
  const input = o.input ?? process.stdin;
  const rl = createInterface({
    input,
    ...(o.interactive ? { output: process.stdout, terminal: true, historySize: 500 } : { terminal: false }),
  });
  if (o.interactive) {
    err(
      `connected to ${redactUrlCredentials(db.describe)}${o.write ? '' : ' (read-only; --write to change data)'}; statements end with ";", \\q quits, \\? lists commands` +
        (db.kind === 'postgres' ? '\n  a PostgreSQL server: psql "$DATABASE_URL" works as well' : ''),
    );
  }
  let buffer = '';
  const prompt = () => {
    if (!o.interactive) return;
    rl.setPrompt(buffer ? 'routiq-> ' : 'routiq=> ');
    rl.prompt();
  };
  // Ctrl-C drops the statement being typed, or quits at an empty prompt.
  rl.on('SIGINT', () => {
    if (!buffer) return rl.close();
    buffer = '';
    process.stdout.write('\n');
    prompt();
  });
  prompt();
  let failed = false;
  for await (const line of rl) {
    if (!buffer.trim() && line.trim().startsWith('\\')) {
      const quit = await meta(db, line.trim(), o);
      if (quit === 'quit') break;
      if (quit === 'failed' && !o.interactive) {
        failed = true;
        break;
      }
      prompt();
      continue;
    }
    buffer += `${line}\n`;
    const { statements, rest } = splitStatements(buffer);
    buffer = rest;
    for (const sql of statements) {
      if (!(await execute(db, sql, o))) {
        failed = true;
        if (!o.interactive) break;
      }
    }
    if (failed && !o.interactive) break;
    prompt();
  }
  rl.close();
  // A terminal's stdin keeps the process alive once it was read from: let go of it, so that the shell exits.
  if (o.interactive && 'unref' in input && typeof input.unref === 'function') (input as NodeJS.ReadStream).unref();
  if (!failed && buffer.trim()) {
    // Input ended inside a statement (a file without its last ";"): run it, as psql does.
    failed = !(await execute(db, buffer.trim(), o));
  }
  return failed && !o.interactive ? ExitCode.Failure : ExitCode.Ok;
}

/** Runs one statement and prints its rows; false when the database refused it (the reason is on stderr). */
async function execute(db: Database, sql: string, o: ShellOptions): Promise<boolean> {
  try {
    const rows = await runStatement(db, sql, o.write, o.org);
    if (o.json) out(JSON.stringify(rows));
    else if (rows.length) out(formatRows(rows));
    err(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
    return true;
  } catch (e) {
    err(e instanceof RoutiqError ? e.format() : String(e));
    return false;
  }
}

async function meta(db: Database, cmd: string, o: ShellOptions): Promise<'quit' | 'ok' | 'failed'> {
  const [name, arg] = cmd.split(/\s+/, 2);
  switch (name) {
    case '\\q':
      return 'quit';
    case '\\?':
      err(META_HELP);
      return 'ok';
    case '\\dt':
      return (await execute(
        db,
        'select table_name as table, table_type as type from information_schema.tables where table_schema = current_schema() order by 1',
        { ...o, write: false },
      ))
        ? 'ok'
        : 'failed';
    case '\\d':
      if (!arg || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(arg)) {
        err('RQ6001 \\d needs a table name (letters, digits, _)');
        return 'failed';
      }
      return (await execute(
        db,
        `select column_name as column, data_type as type, is_nullable as nullable, column_default as default
         from information_schema.columns where table_schema = current_schema() and table_name = '${arg}' order by ordinal_position`,
        { ...o, write: false },
      ))
        ? 'ok'
        : 'failed';
    default:
      err(`RQ6001 unknown command ${name}; \\? lists them`);
      return 'failed';
  }
}
