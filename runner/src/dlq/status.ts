import type { RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization } from '../db/tx.ts';

export interface RunInfo {
  id: string;
  status: string;
  correlationId: string;
  startedAt: string;
  finishedAt: string | null;
  /** finished − started (for a running run: until now). */
  durationMs: number;
  heartbeatAt: string;
  host: string | null;
  pid: number | null;
  fullRefresh: boolean;
  specVersion: string | null;
  requests: number;
  records: number;
  written: number;
  deadLetters: number;
  errorCode: string | null;
  error: string | null;
  /** Running runs only: the heartbeat is older than runner.stale_after_seconds (the next run closes it). */
  stale?: boolean;
}

export interface StreamCheckpoint {
  stream: string;
  /** The stream's own cursor (partition ''); child streams keep one per partition and have none here. */
  cursor: unknown;
  status: string | null;
  lastSyncAt: string | null;
  lastSuccessfulSync: string | null;
  recordsProcessed: number;
  /** Child partitions (parents) known for the stream. */
  partitions: number;
  pendingPartitions: number;
  errorPartitions: number;
}

/** The connection's circuit breaker (service_health): paused/down connections are skipped until paused_until. */
export interface ConnectionHealth {
  status: string;
  consecutiveFailures: number;
  pausedUntil: string | null;
  /** The pause is in force now (paused_until is in the future). */
  paused: boolean;
  lastErrorCode: string | null;
  lastError: string | null;
  checkedAt: string;
}

export interface ConnectionStatus {
  connection: string;
  connector: string;
  /** In the configuration file (false: only the database knows it). */
  configured: boolean;
  enabled: boolean | null;
  health: ConnectionHealth | null;
  lastRun: RunInfo | null;
  running: RunInfo[];
  streams: StreamCheckpoint[];
  openDeadLetters: number;
  openDeadLettersByClass: Record<string, number>;
}

export interface OrganizationStatus {
  id: string;
  name: string | null;
  configured: boolean;
  connections: ConnectionStatus[];
}

export interface StatusReport {
  generatedAt: string;
  organizations: OrganizationStatus[];
}

const iso = (v: Date | string | null | undefined): string | null =>
  v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(v).toISOString();
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const bool = (v: unknown): boolean => v === true || v === 't' || v === 'true';

interface RunRow {
  id: string;
  organization_id: string;
  connector: string;
  connection: string;
  correlation_id: string;
  status: string;
  full_refresh: unknown;
  started_at: Date | string;
  finished_at: Date | string | null;
  heartbeat_at: Date | string;
  host: string | null;
  pid: number | null;
  spec_version: string | null;
  requests: unknown;
  records_processed: unknown;
  records_written: unknown;
  dead_letters: unknown;
  error_code: string | null;
  error: string | null;
  duration_ms: unknown;
  heartbeat_age_s: unknown;
}

const RUN_COLUMNS = `r.id, r.organization_id, r.connector, r.connection, r.correlation_id, r.status, r.full_refresh, r.started_at,
  r.finished_at, r.heartbeat_at, r.host, r.pid, r.spec_version, r.requests, r.records_processed, r.records_written,
  r.dead_letters, r.error_code, r.error,
  (extract(epoch from coalesce(r.finished_at, now()) - r.started_at) * 1000)::float8 as duration_ms,
  extract(epoch from now() - r.heartbeat_at)::float8 as heartbeat_age_s`;

function runInfo(r: RunRow, staleAfterSeconds?: number): RunInfo {
  return {
    id: r.id,
    status: r.status,
    correlationId: r.correlation_id,
    startedAt: iso(r.started_at) as string,
    finishedAt: iso(r.finished_at),
    durationMs: Math.round(num(r.duration_ms)),
    heartbeatAt: iso(r.heartbeat_at) as string,
    host: r.host,
    pid: r.pid === null ? null : Number(r.pid),
    fullRefresh: bool(r.full_refresh),
    specVersion: r.spec_version,
    requests: num(r.requests),
    records: num(r.records_processed),
    written: num(r.records_written),
    deadLetters: num(r.dead_letters),
    errorCode: r.error_code,
    error: r.error,
    ...(r.status === 'running' && staleAfterSeconds !== undefined
      ? { stale: num(r.heartbeat_age_s) > staleAfterSeconds }
      : {}),
  };
}

/**
 * Per organization and connection: the last finished run, runs in progress, stream checkpoints and open dead
 * letters. Read-only. With a config, configured connections that never ran are listed too.
 */
export async function getStatus(
  db: Database,
  opts: { org?: string | undefined; config?: RoutiqConfig | undefined } = {},
): Promise<StatusReport> {
  // The admin status view: every organization through the cross-organization path, or the one asked for.
  const sdb = opts.org === undefined ? crossOrganization(db, 'status view') : forOrganization(db, opts.org);
  const orgWhere = opts.org === undefined ? '' : ' where organization_id = ?';
  const orgParams = opts.org === undefined ? [] : [opts.org];
  const [orgRows, lastRuns, running, state, dead, health] = await Promise.all([
    sdb.query<{ id: string; name: string }>(
      `select id, name from organizations${opts.org === undefined ? '' : ' where id = ?'} order by id`,
      orgParams,
    ),
    sdb.query<RunRow>(
      `select distinct on (r.organization_id, r.connection) ${RUN_COLUMNS} from sync_runs r
       where r.status <> 'running'${opts.org === undefined ? '' : ' and r.organization_id = ?'}
       order by r.organization_id, r.connection, r.started_at desc, r.id desc`,
      orgParams,
    ),
    sdb.query<RunRow>(
      `select ${RUN_COLUMNS} from sync_runs r where r.status = 'running'${opts.org === undefined ? '' : ' and r.organization_id = ?'}
       order by r.organization_id, r.connection, r.started_at`,
      orgParams,
    ),
    sdb.query<{
      organization_id: string;
      connection: string;
      stream: string;
      cursor: unknown;
      status: string | null;
      last_sync_timestamp: Date | string | null;
      last_successful_sync: Date | string | null;
      records_processed: unknown;
      partitions: unknown;
      pending: unknown;
      errors: unknown;
    }>(
      // sync_state.connector holds the connection name.
      `select organization_id, connector as connection, stream,
         (array_agg(cursor) filter (where partition = ''))[1] as cursor,
         (array_agg(status) filter (where partition = ''))[1] as status,
         max(last_sync_timestamp) as last_sync_timestamp,
         max(last_successful_sync) as last_successful_sync,
         coalesce(sum(records_processed), 0)::bigint as records_processed,
         count(*) filter (where partition <> '')::int as partitions,
         count(*) filter (where partition <> '' and status = 'pending')::int as pending,
         count(*) filter (where status = 'error')::int as errors
       from sync_state${orgWhere}
       group by organization_id, connector, stream order by organization_id, connector, stream`,
      orgParams,
    ),
    sdb.query<{ organization_id: string; connector: string; connection: string; error_class: string; n: unknown }>(
      `select organization_id, connector, connection, error_class, count(*)::int as n from sync_errors
       where not resolved${opts.org === undefined ? '' : ' and organization_id = ?'}
       group by organization_id, connector, connection, error_class`,
      orgParams,
    ),
    sdb.query<{
      organization_id: string;
      connection: string;
      status: string;
      details: unknown;
      checked_at: Date | string;
      now: Date | string;
    }>(
      `select organization_id, connection, status, details, checked_at, now() as now from service_health
       where component = 'connection'${opts.org === undefined ? '' : ' and organization_id = ?'}`,
      orgParams,
    ),
  ]);

  const stale = opts.config?.runner.staleAfterSeconds;
  const orgs = new Map<string, OrganizationStatus>();
  const org = (id: string): OrganizationStatus => {
    let o = orgs.get(id);
    if (!o) {
      o = { id, name: null, configured: false, connections: [] };
      orgs.set(id, o);
    }
    return o;
  };
  const conn = (orgId: string, name: string, connector?: string): ConnectionStatus => {
    const o = org(orgId);
    let c = o.connections.find((x) => x.connection === name);
    if (!c) {
      c = {
        connection: name,
        connector: connector ?? name,
        configured: false,
        enabled: null,
        health: null,
        lastRun: null,
        running: [],
        streams: [],
        openDeadLetters: 0,
        openDeadLettersByClass: {},
      };
      o.connections.push(c);
    } else if (connector && !c.configured) c.connector = connector;
    return c;
  };

  for (const oc of opts.config?.organizations ?? []) {
    if (opts.org !== undefined && oc.id !== opts.org) continue;
    const o = org(oc.id);
    o.name = oc.name;
    o.configured = true;
    for (const cc of oc.connections) {
      const c = conn(oc.id, cc.name, cc.connector);
      c.configured = true;
      c.enabled = cc.enabled;
    }
  }
  for (const r of orgRows) {
    const o = org(r.id);
    o.name ??= r.name;
  }
  for (const r of lastRuns) conn(r.organization_id, r.connection, r.connector).lastRun = runInfo(r);
  for (const r of running) conn(r.organization_id, r.connection, r.connector).running.push(runInfo(r, stale));
  for (const s of state) {
    const cursor = typeof s.cursor === 'string' ? JSON.parse(s.cursor) : s.cursor;
    conn(s.organization_id, s.connection).streams.push({
      stream: s.stream,
      cursor: cursor && typeof cursor === 'object' && 'value' in cursor ? (cursor as { value: unknown }).value : null,
      status: s.status,
      lastSyncAt: iso(s.last_sync_timestamp),
      lastSuccessfulSync: iso(s.last_successful_sync),
      recordsProcessed: num(s.records_processed),
      partitions: num(s.partitions),
      pendingPartitions: num(s.pending),
      errorPartitions: num(s.errors),
    });
  }
  for (const h of health) {
    const d = (typeof h.details === 'string' ? JSON.parse(h.details) : (h.details ?? {})) as Record<string, unknown>;
    const until = typeof d.paused_until === 'string' ? d.paused_until : null;
    conn(h.organization_id, h.connection).health = {
      status: h.status,
      consecutiveFailures: num(d.consecutive_failures),
      pausedUntil: until,
      paused: until !== null && Date.parse(until) > Date.parse(iso(h.now) as string),
      lastErrorCode: typeof d.last_error_code === 'string' ? d.last_error_code : null,
      lastError: typeof d.last_error === 'string' ? d.last_error : null,
      checkedAt: iso(h.checked_at) as string,
    };
  }
  for (const d of dead) {
    const c = conn(d.organization_id, d.connection, d.connector);
    c.openDeadLetters += num(d.n);
    c.openDeadLettersByClass[d.error_class] = (c.openDeadLettersByClass[d.error_class] ?? 0) + num(d.n);
  }
  const organizations = [...orgs.values()].sort((a, b) => a.id.localeCompare(b.id));
  for (const o of organizations) o.connections.sort((a, b) => a.connection.localeCompare(b.connection));
  return { generatedAt: new Date().toISOString(), organizations };
}
