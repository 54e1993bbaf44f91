// The registry module only, not the runner's index (MikroORM, PGlite …): `routiq --help` stays light.
import { isRoutiqError } from '@routiq/runner/errors';
import { COMMON_OPTIONS, parseOptions } from './args.ts';
import { ExitCode, exitCodeFor } from './exit-codes.ts';
import { HELP, helpFor } from './help.ts';
import { err, out } from './output.ts';

// Command modules load on demand: `routiq lint` does not pay for the database driver, and vice versa.
type Handler = (args: string[]) => Promise<number>;

const commands: Record<string, Handler> = {
  async migrate(args) {
    const { values } = parseOptions(args, COMMON_OPTIONS, { command: 'migrate' });
    const { migrateCommand } = await import('./commands/migrate.ts');
    return migrateCommand({ config: values.config, json: !!values.json });
  },
  async sync(args) {
    const { values } = parseOptions(
      args,
      {
        ...COMMON_OPTIONS,
        org: { type: 'string' },
        connector: { type: 'string' },
        stream: { type: 'string' },
        'full-refresh': { type: 'boolean' },
      },
      { command: 'sync' },
    );
    const { syncCommand } = await import('./commands/sync.ts');
    return syncCommand({
      config: values.config,
      org: values.org,
      connector: values.connector,
      stream: values.stream,
      fullRefresh: !!values['full-refresh'],
      json: !!values.json,
    });
  },
  async serve(args) {
    const { values } = parseOptions(
      args,
      {
        ...COMMON_OPTIONS,
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        migrate: { type: 'boolean' },
      },
      { command: 'serve' },
    );
    const { serveCommand } = await import('./commands/serve.ts');
    return serveCommand({
      config: values.config,
      port: values.port,
      host: values.host,
      migrate: !!values.migrate,
      json: !!values.json,
    });
  },
  async lint(args) {
    const { values, positionals } = parseOptions(
      args,
      { format: { type: 'string', short: 'f' }, json: { type: 'boolean' } },
      { command: 'lint', positionals: 'any' },
    );
    const { lintCommand } = await import('./commands/lint.ts');
    return lintCommand({ paths: positionals, format: values.json ? 'json' : (values.format ?? 'text') });
  },
  async docs(args) {
    const { values } = parseOptions(
      args,
      { write: { type: 'boolean' }, check: { type: 'boolean' } },
      { command: 'docs' },
    );
    const { docsCommand } = await import('./commands/docs.ts');
    return docsCommand({ write: !!values.write, check: !!values.check });
  },
  async demo(args) {
    const { values } = parseOptions(
      args,
      {
        orgs: { type: 'string' },
        scale: { type: 'string' },
        json: { type: 'boolean' },
        dir: { type: 'string' },
        serve: { type: 'boolean' },
        port: { type: 'string' },
      },
      { command: 'demo' },
    );
    const demo = await importDemo();
    if (!demo) return ExitCode.Usage;
    return demo.demoCommand({
      orgs: Number(values.orgs ?? 2),
      scale: Number(values.scale ?? 1),
      json: !!values.json,
      dir: values.dir ?? '.routiq/demo',
      serve: !!values.serve,
      ...(values.port !== undefined ? { port: Number(values.port) } : {}),
    });
  },
  // These commands parse their own sub-commands and options (each module exports run(args)).
  async dlq(args) {
    return (await import('./commands/dlq.ts')).run(args);
  },
  async status(args) {
    return (await import('./commands/status.ts')).run(args);
  },
  async patients(args) {
    return (await import('./commands/patients.ts')).run(args);
  },
  async credentials(args) {
    return (await import('./commands/credentials.ts')).run(args);
  },
  async init(args) {
    return (await import('./commands/init.ts')).run(args);
  },
  async sql(args) {
    return (await import('./commands/sql.ts')).run(args);
  },
  async db(args) {
    return (await import('./commands/db.ts')).run(args);
  },
  async connector(args) {
    return (await import('./commands/connector.ts')).run(args);
  },
  async purge(args) {
    return (await import('./commands/purge.ts')).run(args);
  },
  async help(args) {
    out(args[0] ? await helpText(args[0]) : HELP);
    return ExitCode.Ok;
  },
};

/**
 * The demo needs the simulators (@routiq/sandbox), a development dependency: a production build (the Docker image)
 * leaves them out, and the demo says so instead of failing with a stack trace.
 */
async function importDemo(): Promise<typeof import('./commands/demo.ts') | undefined> {
  try {
    return await import('./commands/demo.ts');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ROUTIQ_DEV_ONLY' && code !== 'ERR_MODULE_NOT_FOUND') throw e;
    err(
      `RQ6001 routiq demo needs the dev-only package @routiq/sandbox (the simulators), which this installation does not have: ${(e as Error).message}\n` +
        '  hint: run it from a development checkout after `npm install` (npm start).',
    );
    return undefined;
  }
}

/** The commands `routiq` knows, `help` included. */
export const COMMAND_NAMES: readonly string[] = Object.keys(commands);

/** Commands with sub-commands keep their help next to their code. */
export async function helpText(name: string): Promise<string> {
  if (name === 'dlq') return (await import('./commands/dlq.ts')).DLQ_HELP;
  if (name === 'status') return (await import('./commands/status.ts')).STATUS_HELP;
  if (name === 'patients') return (await import('./commands/patients.ts')).PATIENTS_HELP;
  if (name === 'credentials') return (await import('./commands/credentials.ts')).CREDENTIALS_HELP;
  if (name === 'init') return (await import('./commands/init.ts')).INIT_HELP;
  if (name === 'sql') return (await import('./commands/sql.ts')).SQL_HELP;
  if (name === 'db') return (await import('./commands/db.ts')).DB_HELP;
  if (name === 'connector') return (await import('./commands/connector.ts')).CONNECTOR_HELP;
  if (name === 'purge') return (await import('./commands/purge.ts')).PURGE_HELP;
  if (name === 'help') return HELP;
  return helpFor(name);
}

export function registerCommand(name: string, handler: Handler): void {
  commands[name] = handler;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    out(HELP);
    return name ? ExitCode.Ok : ExitCode.Usage;
  }
  if (name === '--version') {
    out('routiq 0.1.0');
    return ExitCode.Ok;
  }
  const handler = commands[name];
  if (!handler) {
    err(`RQ6001 unknown command "${name}"\n${HELP}`);
    return ExitCode.Usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(await helpText(name));
    return ExitCode.Ok;
  }
  try {
    return await handler(rest);
  } catch (e) {
    if (isRoutiqError(e)) {
      err(e.format());
      return exitCodeFor(e.code);
    }
    const code = (e as { code?: string }).code;
    if (code?.startsWith('ERR_PARSE_ARGS')) {
      err(`RQ6001 ${(e as Error).message}\n  hint: routiq help ${name}`);
      return ExitCode.Usage;
    }
    err(`RQ6002 unexpected error: ${(e as Error).stack ?? String(e)}`);
    return ExitCode.Internal;
  }
}
