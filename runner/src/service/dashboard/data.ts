/**
 * Everything the status page shows, read from the database every instance shares: the status report of
 * `/api/status`, plus recent runs (for the charts), latest dead letters, webhook deliveries, rate-limit budgets,
 * active alerts and the instances of the service.
 */
import { type ActiveAlert, activeAlerts } from '../../alerts/index.ts';
import { resolveSecrets } from '../../config/load.ts';
import type { RoutiqConfig } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { crossOrganization, forOrganization } from '../../db/tx.ts';
import { getStatus, type RunInfo } from '../../dlq/index.ts';
import { credentialFingerprint } from '../../engine/breaker.ts';
import { fingerprint } from '../../engine/client.ts';
import { type InstanceView, listInstances } from './instances.ts';

export type Health = 'ok' | 'lagging' | 'failing' | 'paused';

export interface RunPoint {
  startedAt: string;
  status: string;
  records: number;
  deadLetters: number;
  /** records per stream of this run */
  streams: Record<string, number>;
}

export interface DeadLetterView {
  id: string;
  stream: string | null;
  errorClass: string;
  errorCode: string;
  message: string;
  recordKey: string | null;
  createdAt: string;
  retryCount: number;
}

export interface BudgetView {
  name: string;
  limit: number;
  windowSeconds: number;
  /** Requests granted within the last window (an upper estimate: grants are tracked in chunks). */
  used: number;
  pausedUntil: string | null;
}

export interface ConnectionView {
  organizationId: string;
  connection: string;
  connector: string;
  enabled: boolean;
  health: Health;
  why: string;
  lastSuccessAt: string | null;
  lagSeconds: number | null;
  lastRun: RunInfo | null;
  running: RunInfo[];
  runs: RunPoint[];
  /** Records fetched per stream: by all finished runs, by the last one, and per run (oldest first). */
  streams: Array<{ stream: string; records: number; lastRun: number; lastSuccessAt: string | null; series: number[] }>;
  failedRuns24h: number;
  openDeadLetters: number;
  latestDeadLetters: DeadLetterView[];
  webhooks: { accepted: number; rejected: number; duplicate: number };
  rate: { requests: number; rateLimited: number; budgets: BudgetView[] | null };
  alerts: ActiveAlert[];
}

export interface StatusView {
  generatedAt: string;
  organizations: Array<{ id: string; name: string; connections: ConnectionView[] }>;
  instances: InstanceView[];
  alerts: ActiveAlert[];
}

const RUNS = 24;
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const iso = (v: unknown): string => new Date(v as string).toISOString();
const json = (v: unknown): Record<string, unknown> =>
  (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>;

export interface ViewOptions {
  db: Database;
  config: RoutiqConfig;
  env?: NodeJS.ProcessEnv | undefined;
  intervalMinutes: number;
  instanceId?: string | undefined;
  /** One organization's view (a Clerk user's session): its rows only, read under its row-level security scope. */
  organizationId?: string | undefined;
}

export async function statusView(o: ViewOptions): Promise<StatusView> {
  const { config } = o;
  const only = o.organizationId;
  // Every read goes through a scope (docs/database.md#tenant-isolation): a raw query of an app-role login sees no
  // tenant row. Without an organization this is the admin cross-organization path (audited by the caller).
  const db =
    only === undefined ? crossOrganization(o.db, 'status page: every organization') : forOrganization(o.db, only);
  const [report, runs, totals, dead, hooks, failed, budgets, alerts, instances] = await Promise.all([
    getStatus(o.db, { config, org: only }),
    db.query<{
      organization_id: string;
      connection: string;
      status: string;
      started_at: unknown;
      records_processed: unknown;
      dead_letters: unknown;
      counts: unknown;
    }>(
      `select organization_id, connection, status, started_at, records_processed, dead_letters, counts from (
         select *, row_number() over (partition by organization_id, connection order by started_at desc, id desc) as n
         from sync_runs where status <> 'running') t
       where n <= ${RUNS} order by organization_id, connection, started_at`,
    ),
    db.query<{ organization_id: string; connection: string; stream: string; n: unknown }>(
      `select r.organization_id, r.connection, s->>'stream' as stream, sum((s->>'records')::bigint)::bigint as n
       from sync_runs r
       cross join lateral jsonb_array_elements(
         case when jsonb_typeof(r.counts->'streams') = 'array' then r.counts->'streams' else '[]'::jsonb end) s
       where r.status <> 'running'
       group by r.organization_id, r.connection, s->>'stream'`,
    ),
    db.query<{
      id: string;
      organization_id: string;
      connection: string;
      stream: string | null;
      error_class: string;
      error_code: string;
      message: string;
      record_key: string | null;
      created_at: unknown;
      retry_count: unknown;
    }>(
      `select id::text as id, organization_id, connection, stream, error_class, error_code, message, record_key,
         created_at, retry_count from (
         select *, row_number() over (partition by organization_id, connection order by created_at desc, id) as n
         from sync_errors where not resolved) t
       where n <= 5 order by organization_id, connection, created_at desc, id`,
    ),
    db.query<{ organization_id: string; connection: string; status: string; n: unknown }>(
      `select organization_id, connection, status, count(*)::int as n from webhook_inbox
       where received_at > now() - interval '24 hours' group by organization_id, connection, status`,
    ),
    db.query<{ organization_id: string; connection: string; n: unknown }>(
      `select organization_id, connection, count(*)::int as n from sync_runs
       where status = 'failed' and started_at > now() - interval '24 hours' group by organization_id, connection`,
    ),
    db.kind === 'postgres' && config.runner.sharedRateLimits
      ? db.query<{
          key: string;
          lim: unknown;
          window_ms: unknown;
          chunk: unknown;
          recent: unknown;
          paused_until: unknown;
        }>(
          `select key, lim, window_ms, chunk, paused_until,
             (select count(*) from unnest(marks) m where m > clock_timestamp() - window_ms * interval '1 millisecond')::int as recent
           from rate_limit_budgets order by key`,
        )
      : Promise.resolve(null),
    activeAlerts(db),
    // Instances are service rows (organization ''), not any tenant's: listInstances reads them cross-organization.
    listInstances(o.db, o.instanceId),
  ]);

  const orgs: StatusView['organizations'] = [];
  for (const org of report.organizations) {
    const oc = config.organizations.find((x) => x.id === org.id);
    if (!oc) continue; // only configured organizations are operated from here
    const lagLimit = (oc.alerts?.lagMinutes ?? Math.max(15, 3 * o.intervalMinutes)) * 60;
    const connections: ConnectionView[] = [];
    for (const c of org.connections) {
      const cc = oc.connections.find((x) => x.name === c.connection);
      if (!cc) continue;
      const mine = <T extends { organization_id: string; connection: string }>(rows: T[]) =>
        rows.filter((r) => r.organization_id === org.id && r.connection === c.connection);
      const points: RunPoint[] = mine(runs).map((r) => {
        const streams: Record<string, number> = {};
        const list = json(r.counts).streams;
        if (Array.isArray(list))
          for (const s of list as Array<{ stream?: string; records?: number }>)
            if (s.stream) streams[s.stream] = num(s.records);
        return {
          startedAt: iso(r.started_at),
          status: r.status,
          records: num(r.records_processed),
          deadLetters: num(r.dead_letters),
          streams,
        };
      });
      const last = c.streams.map((s) => s.lastSuccessfulSync).filter((x): x is string => !!x);
      if (c.lastRun?.status === 'succeeded' && c.lastRun.finishedAt) last.push(c.lastRun.finishedAt);
      const lastSuccessAt = last.length ? (last.sort().at(-1) ?? null) : null;
      const lagSeconds = lastSuccessAt
        ? Math.max(0, Math.round((Date.now() - Date.parse(lastSuccessAt)) / 1000))
        : null;
      const { health, why } = classify({
        enabled: cc.enabled,
        breaker: c.health,
        lastRun: c.lastRun,
        lagSeconds,
        lagLimit,
      });
      const h = mine(hooks);
      const count = (...st: string[]) => h.filter((x) => st.includes(x.status)).reduce((a, x) => a + num(x.n), 0);
      const lastCounts = json(mine(runs).at(-1)?.counts);
      let mineBudgets: BudgetView[] | null = null;
      if (budgets) {
        // The budget keys this connection's client uses (engine/client.ts): global, per connection, per credential.
        const scopes = new Set([cc.connector, `${org.id}/${cc.name}`]);
        try {
          const secrets = resolveSecrets(cc, org.id, o.env ?? process.env);
          scopes.add(`${cc.connector}:${credentialFingerprint(secrets)}`);
          for (const v of Object.values(secrets)) scopes.add(`${cc.connector}:${fingerprint(v)}`);
        } catch {
          // a secret is missing: the connection cannot have used a credential budget
        }
        mineBudgets = budgets
          .filter((b) => {
            const [spec, name] = b.key.split(':');
            return spec === cc.connector && scopes.has(b.key.slice(`${spec}:${name}:`.length));
          })
          .map((b) => ({
            name: b.key.split(':')[1] ?? b.key,
            limit: num(b.lim),
            windowSeconds: num(b.window_ms) / 1000,
            used: Math.min(num(b.lim), num(b.recent) * num(b.chunk)),
            pausedUntil: b.paused_until && Date.parse(iso(b.paused_until)) > Date.now() ? iso(b.paused_until) : null,
          }));
      }
      connections.push({
        organizationId: org.id,
        connection: c.connection,
        connector: cc.connector,
        enabled: cc.enabled,
        health,
        why,
        lastSuccessAt,
        lagSeconds,
        lastRun: c.lastRun,
        running: c.running,
        runs: points,
        streams: [...new Set([...c.streams.map((s) => s.stream), ...mine(totals).map((t) => t.stream)])]
          .sort()
          .map((stream) => ({
            stream,
            records: num(mine(totals).find((t) => t.stream === stream)?.n),
            lastRun: points.at(-1)?.streams[stream] ?? 0,
            lastSuccessAt: c.streams.find((s) => s.stream === stream)?.lastSuccessfulSync ?? null,
            series: points.map((p) => p.streams[stream] ?? 0),
          })),
        failedRuns24h: num(mine(failed)[0]?.n),
        openDeadLetters: c.openDeadLetters,
        latestDeadLetters: mine(dead).map((d) => ({
          id: d.id,
          stream: d.stream,
          errorClass: d.error_class,
          errorCode: d.error_code,
          message: d.message,
          recordKey: d.record_key,
          createdAt: iso(d.created_at),
          retryCount: num(d.retry_count),
        })),
        webhooks: {
          accepted: count('received', 'processing', 'processed', 'failed'),
          rejected: count('rejected'),
          duplicate: count('duplicate'),
        },
        rate: {
          requests: c.lastRun?.requests ?? 0,
          rateLimited: num(lastCounts.rate_limited),
          budgets: mineBudgets,
        },
        alerts: alerts.filter((a) => a.organizationId === org.id && a.connection === c.connection),
      });
    }
    orgs.push({ id: org.id, name: oc.name, connections });
  }
  const shown = new Set(orgs.flatMap((x) => x.connections.map((c) => `${x.id}/${c.connection}`)));
  return {
    generatedAt: new Date().toISOString(),
    organizations: orgs,
    instances,
    alerts: alerts.filter((a) => shown.has(`${a.organizationId}/${a.connection}`)),
  };
}

export function classify(x: {
  enabled: boolean;
  breaker: {
    status: string;
    paused: boolean;
    pausedUntil: string | null;
    lastErrorCode: string | null;
    lastError: string | null;
  } | null;
  lastRun: RunInfo | null;
  lagSeconds: number | null;
  lagLimit: number;
}): { health: Health; why: string } {
  if (!x.enabled) return { health: 'paused', why: 'disabled in the configuration' };
  const b = x.breaker;
  if (b?.status === 'down')
    return { health: 'failing', why: `authentication failed: ${b.lastErrorCode ?? ''} ${b.lastError ?? ''}`.trim() };
  if (b?.status === 'paused' && b.paused)
    return { health: 'paused', why: `paused by the circuit breaker until ${b.pausedUntil}` };
  if (x.lastRun?.status === 'failed')
    return { health: 'failing', why: `last run failed: ${x.lastRun.errorCode ?? ''} ${x.lastRun.error ?? ''}`.trim() };
  if (x.lagSeconds === null) return { health: 'lagging', why: x.lastRun ? 'no successful sync yet' : 'never synced' };
  if (x.lagSeconds > x.lagLimit)
    return {
      health: 'lagging',
      why: `last success ${Math.round(x.lagSeconds / 60)} min ago (over ${x.lagLimit / 60} min)`,
    };
  if (x.lastRun?.status === 'partial') return { health: 'lagging', why: 'last run was partial (some streams failed)' };
  return { health: 'ok', why: 'synced' };
}
