import { type ConnectionSummary, syncAll } from '@routiq/runner';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';

export interface SyncArgs {
  config?: string | undefined;
  org?: string | undefined;
  connector?: string | undefined;
  stream?: string | undefined;
  fullRefresh: boolean;
  json: boolean;
}

export async function syncCommand(a: SyncArgs): Promise<number> {
  const { config, logger } = loadContext(a.config);
  const summaries = await withDatabase(config, (db) =>
    syncAll(db, config, { org: a.org, connector: a.connector, stream: a.stream, fullRefresh: a.fullRefresh }, logger),
  );
  if (a.json) out(JSON.stringify({ runs: summaries.map(toJson) }, null, 2));
  else out(formatSummaries(summaries));
  if (!summaries.length) err('no enabled connection matched; nothing was synced');
  return summaries.every((s) => s.status === 'succeeded') ? ExitCode.Ok : ExitCode.Failure;
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
    ...(s.error ? { error: s.error, error_code: s.errorCode } : {}),
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
      ...(x.error ? { error: x.error, error_code: x.errorCode } : {}),
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
      `${head}\n${table(rows, ['stream', 'status', 'pages', 'records', 'inserted', 'updated', 'unchanged', 'dead', 'time'])}${s.error ? `\n  error ${s.errorCode}: ${s.error}` : ''}`,
    );
  }
  return blocks.join('\n\n');
}
