/**
 * `routiq connector test <name>`: the connector workbench. On a terminal it is interactive (Ink, loaded only here);
 * off a terminal, or with --json, it prints the same report as JSON and exits 1 when the read failed.
 * `routiq connector list`: the connectors and what each can be tested against.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  assertMigrated,
  listConnectors,
  loadConnector,
  RoutiqError,
  safeMessage,
  syncConnection,
} from '@routiq/runner';
import {
  BASE,
  type Cassette,
  createRecorder,
  type Recorder,
  substituteBase,
  testRead,
  type WorkbenchEvent,
  type WorkbenchReport,
} from '@routiq/runner/workbench';
import { loadContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { colorEnabled, err, out } from '../output.ts';
import {
  chooseTarget,
  fixturesFile,
  listTargets,
  type OpenedTarget,
  openTarget,
  type TargetChoice,
} from '../workbench/targets.ts';

export const CONNECTOR_HELP = `Usage: routiq connector test <name> [options]
       routiq connector list [--json]

The connector workbench: a test read of a connector's streams (a few pages each) with the engine's own requests,
pagination, mappings and validation. Nothing is written to the unified tables unless --write is given.
On a terminal it is interactive: pick the target and the streams, watch the read (requests, pages, records,
rate-limit waits, retries), then browse raw records beside their mapped rows, failures with the JSONata that caused
them, the cursor a sync would save and the requests the next incremental run would make.
Off a terminal, or with --json, it prints the report as JSON on stdout (exit 1 when a stream or record failed).

Targets (default: the simulator, else the recorded fixtures):
  --org ID[/CONNECTION]  a configured organization's connection (secrets from the environment; stored cursors
                         are read from the configured database)
  --target simulator     the bundled simulator (development installs)
  --replay               the fixtures recorded beside the connector (connectors/<name>/fixtures/workbench.json),
                         served on loopback: fully offline
Options:
  --stream NAME          read only this stream (repeatable; parents it needs are read too)
  --pages N              pages per stream or partition (default 3)     --partitions N   child partitions (default 3)
  --samples N            sample records and failures kept per stream (default 5)
  --incremental          start from the stored cursors (connection targets): a test of the next run
  --record               save the exchanges as fixtures beside the connector (credentials never stored)
  --write                also sync the selected streams into the database (connection targets)
  --strict               warnings fail too (exit 1)
  --json                 the report as JSON, never interactive
Examples:
  routiq connector test chatwoot                      # interactive on a terminal
  routiq connector test chatwoot --json --stream conversations
  routiq connector test cliniko --target simulator --record
  routiq connector test cliniko --replay --json       # offline, for CI
  routiq connector test chatwoot --org org_demo_1 --incremental`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'list') return listCommand(rest);
  if (sub !== 'test') {
    throw new RoutiqError('RQ6001', `connector: unknown sub-command "${sub ?? ''}" (test, list)\n${CONNECTOR_HELP}`);
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      org: { type: 'string' },
      target: { type: 'string' },
      replay: { type: 'boolean' },
      record: { type: 'boolean' },
      stream: { type: 'string', multiple: true },
      pages: { type: 'string' },
      partitions: { type: 'string' },
      samples: { type: 'string' },
      incremental: { type: 'boolean' },
      write: { type: 'boolean' },
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  const name = positionals[0];
  if (!name || positionals.length > 1)
    throw new RoutiqError('RQ6001', `connector test takes one connector name\n${CONNECTOR_HELP}`);
  if (values.target !== undefined && !['simulator', 'fixtures', 'connection'].includes(values.target))
    throw new RoutiqError('RQ6001', `--target must be simulator, fixtures or connection (got "${values.target}")`);
  if (values.record && values.replay) throw new RoutiqError('RQ6001', '--record and --replay exclude each other');
  const { config, logger } = loadContext(values.config);
  // A spec that does not load or lint is reported before anything starts (RQ2000 with file:line:col findings).
  const { spec } = loadConnector(config.connectorsDir, name);
  const opts: RunOptions = {
    streams: values.stream,
    maxPages: positiveInt(values.pages, '--pages', 3),
    maxPartitions: positiveInt(values.partitions, '--partitions', 3),
    samples: positiveInt(values.samples, '--samples', 5),
    incremental: !!values.incremental,
    record: !!values.record,
    write: !!values.write,
  };
  const choices = listTargets(config, name);
  const interactive = !values.json && !!process.stdout.isTTY && !!process.stdin.isTTY && process.env.CI === undefined;
  if (interactive) {
    // Ink's chalk reads FORCE_COLOR (not NO_COLOR) once, when it loads: without colour, bold and dim go too.
    if (!colorEnabled(process.stdout)) process.env.FORCE_COLOR = '0';
    const { runInteractive } = await import('../workbench/interactive.ts');
    const preselected =
      values.org !== undefined || values.target !== undefined || values.replay
        ? chooseTarget(choices, name, { org: values.org, target: values.target, replay: !!values.replay })
        : undefined;
    return runInteractive({
      connector: name,
      streams: spec.streams.map((s) => ({ name: s.name, parent: s.parent?.stream ?? s.parent?.webhook })),
      choices,
      ...(preselected ? { preselected } : {}),
      ...(values.stream ? { selectedStreams: values.stream } : {}),
      run: (choice, streams, onEvent) => runWorkbench(config, logger, name, choice, { ...opts, streams }, onEvent),
    });
  }
  const choice = chooseTarget(choices, name, { org: values.org, target: values.target, replay: !!values.replay });
  const report = await runWorkbench(config, logger, name, choice, opts);
  out(JSON.stringify(report, null, 2));
  for (const w of report.warnings) err(`warning ${w.code} ${w.message}\n  hint: ${w.hint}`);
  if (report.error) err(`${report.error.code} ${report.error.message}`);
  return exitFor(report, !!values.strict);
}

export function exitFor(report: WorkbenchReport, strict: boolean): number {
  if (!report.ok) return ExitCode.Failure;
  return strict && report.warnings.length ? ExitCode.Failure : ExitCode.Ok;
}

function positiveInt(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new RoutiqError('RQ6001', `${flag} must be a whole number >= 1 (got "${v}")`);
  return n;
}

export interface RunOptions {
  streams?: string[] | undefined;
  maxPages: number;
  maxPartitions: number;
  samples: number;
  incremental: boolean;
  record: boolean;
  write: boolean;
}

/** Open the target, read, optionally record or write, close: the one path of the JSON and interactive modes. */
export async function runWorkbench(
  config: ReturnType<typeof loadContext>['config'],
  logger: ReturnType<typeof loadContext>['logger'],
  connector: string,
  choice: TargetChoice,
  o: RunOptions,
  onEvent?: (e: WorkbenchEvent) => void,
): Promise<WorkbenchReport> {
  if (o.write && choice.kind !== 'connection')
    throw new RoutiqError(
      'RQ6001',
      '--write needs a configured connection (--org): simulators and fixtures stay out of the database',
    );
  if (o.incremental && choice.kind !== 'connection')
    throw new RoutiqError('RQ6001', '--incremental needs a configured connection (--org) whose cursors are stored');
  const opened: OpenedTarget = await openTarget(config, connector, choice, { warn: err });
  let recorder: Recorder | undefined;
  let origin = '';
  try {
    const report = await testRead({
      config,
      target: opened.target,
      streams: o.streams,
      db: opened.db,
      incremental: o.incremental,
      maxPages: o.maxPages,
      maxPartitions: o.maxPartitions,
      samples: o.samples,
      logger,
      onEvent,
      ...(o.record
        ? {
            observe: (c) => {
              origin = c.origin;
              recorder = createRecorder(c);
              return recorder.observer;
            },
          }
        : {}),
    });
    if (opened.replay?.misses.length) {
      report.ok = false;
      report.warnings.push({
        code: 'RQ6105',
        stream: '',
        message: `${opened.replay.misses.length} request(s) are not in the fixtures: ${opened.replay.misses.slice(0, 3).join('; ')}`,
        hint: 'The spec changed what it requests since the recording: re-record with --record, or undo the change.',
      });
    }
    if (recorder && report.ok) {
      const file = fixturesFile(config.connectorsDir, connector);
      const cassette: Cassette & { partitions?: unknown } = {
        connector,
        note: `Recorded by \`routiq connector test ${connector} --record\` from ${report.target.label} on ${report.startedAt.slice(0, 10)}; credential headers and query parameters are never stored, secret values are scrubbed.`,
        exchanges: recorder.exchanges,
        expected: {},
        connection: { config: substituteBase(opened.recordAs.config, origin, BASE), secrets: opened.recordAs.secrets },
        credentials: recorder.credentials,
        ...(opened.target.partitions ? { partitions: opened.target.partitions } : {}),
      };
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(cassette, null, 1)}\n`);
      err(`recorded ${recorder.exchanges.length} exchanges to ${path.relative(process.cwd(), file)}`);
    }
    if (o.write && opened.db) {
      await assertMigrated(opened.db);
      const s = await syncConnection({
        db: opened.db,
        config,
        org: opened.target.org,
        conn: opened.target.conn,
        streams: o.streams,
        logger,
      });
      report.written = {
        status: s.status,
        runId: s.runId,
        streams: s.streams.map((x) => ({ stream: x.stream, inserted: x.inserted, updated: x.updated })),
      };
      if (s.status !== 'succeeded') report.ok = false;
    }
    return report;
  } finally {
    await opened.close().catch((e: unknown) => err(`closing the target: ${safeMessage(e)}`));
  }
}

async function listCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
    strict: true,
  });
  const { config } = loadContext(values.config);
  const rows = listConnectors(config.connectorsDir).map((n) => ({
    connector: n,
    targets: listTargets(config, n).map((t) => t.id),
  }));
  if (values.json) out(JSON.stringify(rows, null, 2));
  else out(rows.map((r) => `${r.connector.padEnd(14)} ${r.targets.join(', ') || '(no target)'}`).join('\n'));
  return ExitCode.Ok;
}
