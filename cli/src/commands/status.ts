import { auditTo, CLI_CORRELATION_ID, cliActor, RoutiqError } from '@routiq/runner';
import { type ConnectionStatus, getStatus, type RunInfo, type StatusReport } from '@routiq/runner/dlq';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { out, table } from '../output.ts';

export const STATUS_HELP = `Usage: routiq status [--config FILE] [--org ID] [--json]

Per organization and connection: the last finished run (status, start, duration, records, written, dead letters,
correlation id, error), runs in progress, stream checkpoints (cursor, last successful sync, pending and failed child
partitions) and open dead letters. Read-only; the read is audited (status.read, as the service's /api/status).
Examples:
  routiq status
  routiq status --org org_demo_bondi_physio --json`;

export async function run(args: string[]): Promise<number> {
  if (args[0] === 'help') {
    out(STATUS_HELP);
    return ExitCode.Ok;
  }
  const { values } = parseOptions(args, { ...COMMON_OPTIONS, org: { type: 'string' } }, { command: 'status' });
  const { config } = loadContext(values.config);
  const report = await withDatabase(config, async (db) => {
    const r = await getStatus(db, { org: values.org, config });
    if (r.organizations.length)
      await auditTo(db, {
        actor: cliActor(),
        organizationId: values.org ?? null,
        action: 'status.read',
        resourceType: 'status',
        count: r.organizations.reduce((n, o) => n + o.connections.reduce((m, c) => m + c.openDeadLetters, 0), 0),
        correlationId: CLI_CORRELATION_ID,
        details: { organizations: r.organizations.map((o) => o.id) },
      });
    return r;
  });
  if (values.org !== undefined && !report.organizations.length) {
    throw new RoutiqError(
      'RQ1008',
      `organization "${values.org}" is neither in ${config.file} nor in the database (configured: ${config.organizations.map((o) => o.id).join(', ') || 'none'})`,
    );
  }
  out(values.json ? JSON.stringify(toJson(report), null, 2) : format(report));
  return ExitCode.Ok;
}

function runJson(r: RunInfo) {
  return {
    id: r.id,
    status: r.status,
    correlation_id: r.correlationId,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    duration_ms: r.durationMs,
    heartbeat_at: r.heartbeatAt,
    host: r.host,
    pid: r.pid,
    full_refresh: r.fullRefresh,
    spec_version: r.specVersion,
    requests: r.requests,
    records: r.records,
    written: r.written,
    dead_letters: r.deadLetters,
    error_code: r.errorCode,
    error: r.error,
    ...(r.stale !== undefined ? { stale: r.stale } : {}),
  };
}

function connectionJson(c: ConnectionStatus) {
  return {
    connection: c.connection,
    connector: c.connector,
    configured: c.configured,
    enabled: c.enabled,
    health: c.health
      ? {
          status: c.health.status,
          paused: c.health.paused,
          paused_until: c.health.pausedUntil,
          consecutive_failures: c.health.consecutiveFailures,
          last_error_code: c.health.lastErrorCode,
          last_error: c.health.lastError,
          checked_at: c.health.checkedAt,
        }
      : null,
    last_run: c.lastRun ? runJson(c.lastRun) : null,
    running: c.running.map(runJson),
    streams: c.streams.map((s) => ({
      stream: s.stream,
      cursor: s.cursor,
      status: s.status,
      last_sync_at: s.lastSyncAt,
      last_successful_sync: s.lastSuccessfulSync,
      records_processed: s.recordsProcessed,
      partitions: s.partitions,
      pending_partitions: s.pendingPartitions,
      error_partitions: s.errorPartitions,
    })),
    open_dead_letters: c.openDeadLetters,
    open_dead_letters_by_class: c.openDeadLettersByClass,
  };
}

export function toJson(r: StatusReport) {
  return {
    generated_at: r.generatedAt,
    organizations: r.organizations.map((o) => ({
      id: o.id,
      name: o.name,
      configured: o.configured,
      connections: o.connections.map(connectionJson),
    })),
  };
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;

function runLine(r: RunInfo): string {
  const parts = [
    `${r.status} ${r.startedAt}`,
    secs(r.durationMs),
    plural(r.records, 'record'),
    `${r.written} written`,
    plural(r.deadLetters, 'dead letter'),
    `[${r.correlationId}]`,
  ];
  return `${parts.join(', ')}${r.error ? `\n      error ${r.errorCode ?? ''}: ${r.error}` : ''}`;
}

export function format(r: StatusReport): string {
  if (!r.organizations.length) return 'no organizations configured or synced yet';
  const blocks: string[] = [];
  for (const o of r.organizations) {
    const lines = [`${o.id}${o.name ? ` — ${o.name}` : ''}${o.configured ? '' : ' (not in the config file)'}`];
    if (!o.connections.length) lines.push('  no connections');
    for (const c of o.connections) {
      const flags = [
        c.connection === c.connector ? '' : `connector ${c.connector}`,
        c.configured ? (c.enabled === false ? 'disabled' : '') : 'not in the config file',
      ].filter(Boolean);
      lines.push(`  ${c.connection}${flags.length ? ` (${flags.join(', ')})` : ''}`);
      lines.push(`    last run: ${c.lastRun ? runLine(c.lastRun) : 'never'}`);
      const h = c.health;
      if (h && h.status !== 'ok')
        lines.push(
          `    health: ${h.status}${h.paused ? ` — paused until ${h.pausedUntil} (circuit breaker)` : ''}, ${plural(h.consecutiveFailures, 'consecutive failure')}${h.lastErrorCode ? `, last ${h.lastErrorCode}` : ''}`,
        );
      for (const run of c.running)
        lines.push(
          `    running: since ${run.startedAt} (${secs(run.durationMs)}), heartbeat ${run.heartbeatAt}, ${run.host ?? '?'} pid ${run.pid ?? '?'} [${run.correlationId}]${run.stale ? ' — stale: the next run closes it as abandoned' : ''}`,
        );
      const byClass = Object.entries(c.openDeadLettersByClass)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      lines.push(`    open dead letters: ${c.openDeadLetters}${byClass ? ` (${byClass})` : ''}`);
      if (c.streams.length) {
        const t = table(
          c.streams.map((s) => [
            s.stream,
            s.status ?? '',
            s.cursor === null || s.cursor === undefined ? '' : String(s.cursor),
            s.lastSuccessfulSync ?? 'never',
            s.partitions,
            s.pendingPartitions,
            s.errorPartitions,
          ]),
          ['stream', 'status', 'cursor', 'last success', 'partitions', 'pending', 'errors'],
        );
        lines.push(
          t
            .split('\n')
            .map((l) => `    ${l}`)
            .join('\n'),
        );
      }
    }
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n\n');
}
