import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Database } from '../db/database.ts';
import { RoutiqError } from '../errors/registry.ts';

export interface RunHandle {
  id: string;
  correlationId: string;
  stopHeartbeat(): void;
}

/** Runs this process has open: a 'running' row with our pid that is not here was left by an earlier failure. */
const activeRuns = new Set<string>();

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Close runs that died: a 'running' row whose process is gone (same host, pid not alive) or whose heartbeat
 * is older than staleAfterSeconds. This is why no run stays 'running' forever.
 */
export async function closeDeadRuns(
  db: Database,
  staleAfterSeconds: number,
  scope?: { organizationId: string; connection: string },
): Promise<number> {
  const rows = await db.query<{ id: string; host: string | null; pid: number | null; stale: boolean }>(
    `select id, host, pid, heartbeat_at < now() - (? || ' seconds')::interval as stale from sync_runs
     where status = 'running'${scope ? ' and organization_id = ? and connection = ?' : ''}`,
    scope ? [String(staleAfterSeconds), scope.organizationId, scope.connection] : [String(staleAfterSeconds)],
  );
  const host = os.hostname();
  const dead = rows.filter(
    (r) => r.stale === true || (r.host === host && r.pid !== null && r.pid !== process.pid && !isAlive(r.pid)),
  );
  for (const r of dead) {
    await db.query(
      `update sync_runs set status = 'abandoned', finished_at = now(), error_code = 'RQ6002',
         error = 'the process running this sync stopped without finishing (crash or kill); closed by a later run'
       where id = ? and status = 'running'`,
      [r.id],
    );
  }
  return dead.length;
}

export async function startRun(
  db: Database,
  o: {
    organizationId: string;
    connector: string;
    connection: string;
    fullRefresh: boolean;
    specVersion: string;
    staleAfterSeconds: number;
    heartbeatSeconds: number;
    correlationId?: string;
  },
): Promise<RunHandle> {
  await closeDeadRuns(db, o.staleAfterSeconds, { organizationId: o.organizationId, connection: o.connection });
  const running = await db.query<{ id: string; correlation_id: string }>(
    "select id, correlation_id from sync_runs where organization_id = ? and connection = ? and status = 'running'",
    [o.organizationId, o.connection],
  );
  if (running.length) {
    throw new RoutiqError(
      'RQ4005',
      `a sync of ${o.organizationId}/${o.connection} is already running (correlation id ${running[0]?.correlation_id})`,
    );
  }
  const id = randomUUID();
  const correlationId = o.correlationId ?? `sync-${id.slice(0, 8)}`;
  await db.query(
    `insert into sync_runs (id, organization_id, connector, connection, correlation_id, status, full_refresh, host, pid, spec_version)
     values (?::uuid, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
    [
      id,
      o.organizationId,
      o.connector,
      o.connection,
      correlationId,
      o.fullRefresh,
      os.hostname(),
      process.pid,
      o.specVersion,
    ],
  );
  activeRuns.add(id);
  const timer = setInterval(() => {
    db.query("update sync_runs set heartbeat_at = now() where id = ?::uuid and status = 'running'", [id]).catch(
      () => {},
    );
  }, o.heartbeatSeconds * 1000);
  timer.unref();
  return { id, correlationId, stopHeartbeat: () => clearInterval(timer) };
}

export async function finishRun(
  db: Database,
  run: RunHandle,
  r: {
    status: 'succeeded' | 'partial' | 'failed';
    requests: number;
    recordsProcessed: number;
    recordsWritten: number;
    deadLetters: number;
    counts: unknown;
    errorCode?: string | undefined;
    error?: string | undefined;
  },
  opts: { retryForMs?: number } = {},
): Promise<void> {
  run.stopHeartbeat();
  // The database may be the thing that failed (restart, failover): keep trying for a while, so the run is
  // closed by us rather than later as 'abandoned'.
  const until = Date.now() + (opts.retryForMs ?? 30_000);
  for (let attempt = 0; ; attempt++) {
    try {
      await db.query(
        `update sync_runs set status = ?, finished_at = now(), heartbeat_at = now(), requests = ?, records_processed = ?, records_written = ?,
           dead_letters = ?, counts = ?::jsonb, error_code = ?, error = ? where id = ?::uuid`,
        [
          r.status,
          r.requests,
          r.recordsProcessed,
          r.recordsWritten,
          r.deadLetters,
          JSON.stringify(r.counts),
          r.errorCode ?? null,
          r.error ?? null,
          run.id,
        ],
      );
      activeRuns.delete(run.id);
      return;
    } catch (err) {
      if (Date.now() > until) {
        activeRuns.delete(run.id);
        throw err;
      }
      await new Promise((res) => setTimeout(res, Math.min(5000, 250 * 2 ** attempt)));
    }
  }
}
