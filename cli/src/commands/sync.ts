import {
  type ConnectionSummary,
  codes,
  createLogger,
  type Database,
  databaseFailure,
  isDatabaseFailureCode,
  RoutiqError,
  redactUrlCredentials,
  syncAll,
} from '@routiq/runner';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';
import { progressLine } from '../progress.ts';

export interface SyncArgs {
  config?: string | undefined;
  org?: string | undefined;
  connector?: string | undefined;
  stream?: string | undefined;
  fullRefresh: boolean;
  json: boolean;
}

export async function syncCommand(a: SyncArgs): Promise<number> {
  const ctx = loadContext(a.config);
  const { config } = ctx;
  // On a terminal: a progress line on stderr, log lines written above it.
  const progress = progressLine({ json: a.json });
  const logger = progress ? createLogger(config.log.level, progress.logDestination()) : ctx.logger;
  const { summaries, lost } = await withDatabase(config, async (db) => {
    const filter = { org: a.org, connector: a.connector, stream: a.stream, fullRefresh: a.fullRefresh };
    // A database that goes away mid-run surfaces as RQ4006 (exit 4), not as an internal error.
    const summaries = await syncAll(db, config, filter, logger, undefined, progress?.listener).catch((e: unknown) => {
      throw databaseFailure(e) ?? e;
    });
    return { summaries, lost: await databaseLost(db, summaries) };
  }).finally(() => progress?.close());
  if (a.json) out(JSON.stringify({ runs: summaries.map(toJson) }, null, 2));
  else out(formatSummaries(summaries));
  if (!summaries.length) err('no enabled connection matched; nothing was synced');
  if (lost) {
    err(lost.format());
    return ExitCode.Database;
  }
  return summaries.every((s) => s.status === 'succeeded') ? ExitCode.Ok : ExitCode.Failure;
}

/**
 * Whether the runs that failed failed because of the database (docs/cli.md: exit code 4). A failure the engine
 * recorded with a database code says so; one with no registered code (a driver error: ECONNREFUSED, RQ6002 …) is
 * settled by asking the database whether it still answers.
 */
export async function databaseLost(
  db: Pick<Database, 'query'>,
  summaries: ConnectionSummary[],
  probeMs = 5000,
): Promise<RoutiqError | undefined> {
  const failures = summaries.flatMap((s) => [
    ...(s.errorCode ? [{ code: s.errorCode, error: s.error }] : []),
    ...s.streams.flatMap((x) => (x.errorCode ? [{ code: x.errorCode, error: x.error }] : [])),
  ]);
  const known = failures.find((f) => isDatabaseFailureCode(f.code));
  if (known) return new RoutiqError('RQ4006', `a sync failed on the database: ${known.error ?? known.code}`);
  const unexplained = failures.find((f) => !codes[f.code] || f.code === 'RQ6002');
  if (!unexplained) return undefined;
  const probe = await answers(db, probeMs);
  return probe === true
    ? undefined
    : new RoutiqError(
        'RQ4006',
        `the database stopped answering during the sync (${probe}); a sync failed with: ${unexplained.error ?? unexplained.code}`,
      );
}

/** true, or why `select 1` failed or did not answer in time. */
async function answers(db: Pick<Database, 'query'>, ms: number): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.query('select 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
    return true;
  } catch (e) {
    return (e as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

export function toJson(s: ConnectionSummary) {
  return {
    organization_id: s.organizationId,
    connection: s.connection,
    connector: s.connector,
    spec_version: s.specVersion,
    run_id: s.runId,
    correlation_id: s.correlationId,
    status: s.status,
    requests: s.requests,
    rate_limited: s.rateLimited,
    duration_ms: s.durationMs,
    ...(s.error ? { error: redactUrlCredentials(s.error), error_code: s.errorCode } : {}),
    streams: s.streams.map((x) => ({
      stream: x.stream,
      status: x.status,
      pages: x.pages,
      records: x.records,
      upserts: x.inserted + x.updated,
      inserted: x.inserted,
      updated: x.updated,
      unchanged: x.unchanged,
      dead_letters: x.deadLetters,
      partitions: x.partitions,
      duration_ms: x.durationMs,
      ...(x.error ? { error: redactUrlCredentials(x.error), error_code: x.errorCode } : {}),
    })),
  };
}

export function formatSummaries(summaries: ConnectionSummary[]): string {
  const blocks: string[] = [];
  for (const s of summaries) {
    const head = `${s.organizationId} / ${s.connection} (${s.connector} ${s.specVersion}) — ${s.status}, ${s.requests} requests, ${s.rateLimited} rate-limited, ${(s.durationMs / 1000).toFixed(1)}s [${s.correlationId}]`;
    const rows = s.streams.map((x) => [
      x.stream,
      x.status,
      x.pages,
      x.records,
      x.inserted,
      x.updated,
      x.unchanged,
      x.deadLetters,
      `${(x.durationMs / 1000).toFixed(1)}s`,
    ]);
    blocks.push(
      `${head}\n${table(rows, ['stream', 'status', 'pages', 'records', 'inserted', 'updated', 'unchanged', 'dead', 'time'])}${s.error ? `\n  error ${s.errorCode}: ${redactUrlCredentials(s.error)}` : ''}`,
    );
  }
  return blocks.join('\n\n');
}
