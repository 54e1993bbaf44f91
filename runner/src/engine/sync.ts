/**
 * A sync pass of one organization's connection: open the session, check the circuit breaker, record the run,
 * run every selected stream in dependency order, reconcile identities, close the run.
 */

import type { Logger } from 'pino';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { safeMessage, transaction } from '../db/tx.ts';
import { isRoutiqError } from '../errors/registry.ts';
import { reconcileOrganization } from '../identity/reconcile.ts';
import type { ConnectorSpec, StreamSpec } from '../spec/types.ts';
import { type ProgressListener, progressReporter } from '../util/progress.ts';
import { assertCircuitClosed, credentialFingerprint, recordRunOutcome } from './breaker.ts';
import { createClient, type RequestCounters } from './client.ts';
import { finishRun, startRun } from './runs.ts';
import { openSession } from './session.ts';
import { emptySummary, StreamRunner, type StreamSummary } from './stream.ts';

export type { StreamSummary } from './stream.ts';

export interface ConnectionSummary {
  organizationId: string;
  connection: string;
  connector: string;
  specVersion: string;
  runId: string;
  correlationId: string;
  status: 'succeeded' | 'partial' | 'failed';
  requests: number;
  rateLimited: number;
  durationMs: number;
  streams: StreamSummary[];
  /** The identity reconcile pass after the streams, when identities were written. */
  reconcile?: ReconcileSummary;
  error?: string;
  errorCode?: string;
}

export interface ReconcileSummary {
  /** The whole organization, or the neighbourhood of the identities written since the last pass. */
  scope: 'all' | 'changed';
  /** Identities written since the last pass. */
  marked: number;
  /** Identities read by the plan. */
  identities: number;
  merges: number;
  durationMs: number;
}

export interface SyncConnectionOptions {
  db: Database;
  config: RoutiqConfig;
  org: OrganizationConfig;
  conn: ConnectionConfig;
  streams?: string[] | undefined;
  fullRefresh?: boolean;
  logger: Logger;
  env?: NodeJS.ProcessEnv | undefined;
  /** Aborted: stop at the next checkpoint (service shutdown); the next run resumes from there. */
  signal?: AbortSignal | undefined;
  /** Streams done of those selected, the current stream's pages and records, requests and rate-limit waits. */
  onProgress?: ProgressListener | undefined;
}

/** Streams in dependency order: parents before children. */
function orderStreams(spec: ConnectorSpec): StreamSpec[] {
  const out: StreamSpec[] = [];
  const seen = new Set<string>();
  const byName = new Map(spec.streams.map((s) => [s.name, s]));
  const visit = (s: StreamSpec) => {
    if (seen.has(s.name)) return;
    seen.add(s.name);
    if (s.parent?.stream) {
      const p = byName.get(s.parent.stream);
      if (p) visit(p);
    }
    out.push(s);
  };
  spec.streams.forEach(visit);
  return out;
}

/** One pass of one organization's connection: every (selected) stream, then lineage retention and reconcile. */
export async function syncConnection(o: SyncConnectionOptions): Promise<ConnectionSummary> {
  const started = Date.now();
  const { config, org, conn } = o;
  const session = await openSession({ db: o.db, config, org, conn, logger: o.logger, env: o.env });
  // The organization's database: every statement below sees this organization's rows only.
  const db = session.db;
  const { spec } = session;
  const credential = credentialFingerprint(session.secrets);
  await assertCircuitClosed(db, org.id, conn.name, credential);
  const run = await startRun(db, {
    organizationId: org.id,
    connector: spec.name,
    connection: conn.name,
    fullRefresh: !!o.fullRefresh,
    specVersion: spec.version,
    staleAfterSeconds: config.runner.staleAfterSeconds,
    heartbeatSeconds: config.runner.heartbeatSeconds,
  });
  const log = session.log.child({ correlation_id: run.correlationId });
  session.log = log;
  const counters: RequestCounters = { requests: 0, rateLimited: 0 };
  log.info({ full_refresh: !!o.fullRefresh }, 'sync started');
  const summaries: StreamSummary[] = [];
  let fatal: { message: string; code: string } | undefined;
  let reconciled: ReconcileSummary | undefined;
  const wanted = o.streams ?? conn.streams;
  const selected = orderStreams(spec).filter((s) => s.enabled && (!wanted || wanted.includes(s.name)));
  const progress = syncProgress(o.onProgress, `${org.id} / ${conn.name}`, selected.length, counters);
  try {
    // In the try: a rate budget that does not render (RQ1007) still closes the run; after startRun so the
    // client logs with the run's correlation id.
    const client = await createClient(session, counters, o.onProgress ? progress.observer : undefined);
    const engine = new StreamRunner(session, client, run.id, !!o.fullRefresh, o.signal, progress.page);
    for (const s of selected) {
      if (fatal) {
        summaries.push({ ...emptySummary(s.name), status: 'skipped' });
        continue;
      }
      progress.stream(s.name);
      const sum = await engine.run(s);
      summaries.push(sum);
      progress.streamDone(sum);
      if (sum.status === 'failed' && (sum.errorCode === 'RQ3003' || sum.errorCode === 'RQ6003'))
        fatal = { message: sum.error ?? 'authentication failed', code: sum.errorCode };
    }
    await transaction(db, async (q) => {
      // Links were set as each page was written (writer.ts relinkWritten): no pass over the organization here.
      // Lineage payloads are kept for runner.raw_retention_days (0 keeps none).
      await q(
        `delete from raw_records where organization_id = ? and source = ? and fetched_at < now() - (? || ' days')::interval`,
        [org.id, spec.name, String(config.runner.rawRetentionDays)],
      );
    });
    // People split by arrival order (two identities that only a third one links) are merged afterwards,
    // audited and reversible: around the identities written since the last pass (webhooks' too), not the whole
    // organization. Outside any other transaction: the embedded database has one connection.
    if (engine.identitiesChanged > 0) {
      try {
        const r = await reconcileOrganization(db, { organizationId: org.id, actor: 'system', scope: 'changed' });
        reconciled = {
          scope: r.scope,
          marked: r.marked,
          identities: r.identities,
          merges: r.merges.length,
          durationMs: r.durationMs,
        };
        if (r.merges.length || r.skipped.length)
          log.info({ merges: r.merges.length, kept_apart: r.skipped.length }, 'identity reconcile');
      } catch (err) {
        log.warn({ err: { message: safeMessage(err) } }, 'identity reconcile failed; the next sync retries');
      }
    }
  } catch (err) {
    fatal = {
      message: safeMessage(err),
      code: isRoutiqError(err) ? err.code : ((err as { code?: string }).code ?? 'RQ6002'),
    };
    log.error({ err }, 'sync aborted');
  }
  const failed = summaries.filter((s) => s.status === 'failed').length;
  const status: ConnectionSummary['status'] = fatal
    ? 'failed'
    : failed === 0
      ? 'succeeded'
      : failed === summaries.length
        ? 'failed'
        : 'partial';
  const totals = summaries.reduce(
    (a, s) => ({
      records: a.records + s.records,
      written: a.written + s.inserted + s.updated,
      dead: a.dead + s.deadLetters,
    }),
    { records: 0, written: 0, dead: 0 },
  );
  const firstError = fatal ?? summaries.find((s) => s.status === 'failed');
  const errMessage =
    fatal?.message ?? (firstError && 'error' in firstError ? (firstError as StreamSummary).error : undefined);
  const errCode =
    fatal?.code ?? (firstError && 'errorCode' in firstError ? (firstError as StreamSummary).errorCode : undefined);
  await finishRun(db, run, {
    status,
    requests: counters.requests,
    recordsProcessed: totals.records,
    recordsWritten: totals.written,
    deadLetters: totals.dead,
    counts: { streams: summaries, rate_limited: counters.rateLimited },
    errorCode: errCode,
    error: errMessage,
  });
  // A run stopped for a shutdown says nothing about the platform: the breaker does not count it.
  const breaker =
    errCode === 'RQ6003'
      ? undefined
      : await recordRunOutcome(
          db,
          org.id,
          conn.name,
          { ok: status === 'succeeded', errorCode: errCode, error: errMessage, credential },
          { threshold: config.runner.breakerThreshold, cooldownSeconds: config.runner.breakerCooldownSeconds },
        ).catch(() => undefined);
  if (breaker?.pausedUntil) {
    // An alert: a person may be needed (credentials), or the platform is down for longer than the retries cover.
    log.error(
      { alert: true, paused_until: breaker.pausedUntil, error_code: errCode },
      'connection paused by its circuit breaker',
    );
  }
  progress.finished();
  const summary: ConnectionSummary = {
    organizationId: org.id,
    connection: conn.name,
    connector: spec.name,
    specVersion: spec.version,
    runId: run.id,
    correlationId: run.correlationId,
    status,
    requests: counters.requests,
    rateLimited: counters.rateLimited,
    durationMs: Date.now() - started,
    streams: summaries,
    ...(reconciled ? { reconcile: reconciled } : {}),
    ...(errMessage ? { error: errMessage } : {}),
    ...(errCode ? { errorCode: errCode } : {}),
  };
  log.info(
    {
      status,
      requests: counters.requests,
      rate_limited: counters.rateLimited,
      records: totals.records,
      written: totals.written,
      dead_letters: totals.dead,
    },
    'sync finished',
  );
  return summary;
}

/**
 * The progress of one connection's pass: streams done of those selected; the current stream's pages and records
 * (its summary as it grows), the connection's requests and rate-limit waits (the HTTP client's retries).
 */
function syncProgress(listener: ProgressListener | undefined, task: string, total: number, counters: RequestCounters) {
  const report = progressReporter(listener);
  let done = 0;
  let current: StreamSummary | undefined;
  let step: string | undefined;
  let waits = 0;
  const emit = (finished = false) =>
    report({
      task,
      done,
      total,
      unit: 'streams',
      step,
      counts: {
        pages: current?.pages ?? 0,
        records: current?.records ?? 0,
        requests: counters.requests,
        'rate-limit waits': waits,
      },
      ...(finished ? { finished } : {}),
    });
  return {
    observer: {
      onRetry(x: { failure: string; waitMs: number }) {
        if (x.failure !== 'rate_limited') return;
        waits++;
        step = `${current?.stream ?? ''}: rate limited, waiting ${(x.waitMs / 1000).toFixed(1)}s`;
        emit();
      },
    },
    stream(name: string) {
      current = undefined;
      step = name;
      emit();
    },
    page(sum: StreamSummary) {
      current = sum;
      step = sum.stream;
      emit();
    },
    streamDone(sum: StreamSummary) {
      current = sum;
      done++;
      emit();
    },
    finished() {
      step = undefined;
      emit(true);
    },
  };
}
