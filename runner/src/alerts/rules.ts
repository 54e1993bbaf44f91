/**
 * The alert rules of an organization, evaluated from the database every process shares (so any instance can judge
 * them): one condition per (rule, configured connection), holding or not. See docs/alerts.md.
 */
import type { AlertRule, OrganizationConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { forOrganization } from '../db/tx.ts';

export interface Condition {
  rule: AlertRule;
  connection: string;
  holds: boolean;
  /** What holds (or what was last seen), in words for the notice. */
  summary: string;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const json = (v: unknown): Record<string, unknown> =>
  (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>;
const ms = (v: unknown): number | null => (v === null || v === undefined ? null : new Date(v as string).getTime());

export async function evaluateRules(base: Database, org: OrganizationConfig): Promise<Condition[]> {
  const a = org.alerts;
  if (!a) return [];
  const on = new Set(a.rules);
  const id = org.id;
  // Under the organization's row-level security scope: an app-role login's raw query sees no tenant row.
  const db = forOrganization(base, id);
  const [health, success, recent, dead, rejected, clock] = await Promise.all([
    db.query<{ connection: string; status: string; details: unknown }>(
      "select connection, status, details from service_health where component = 'connection' and organization_id = ?",
      [id],
    ),
    db.query<{ connection: string; last_ok: unknown; first_run: unknown }>(
      `select r.connection,
         greatest(max(r.finished_at) filter (where r.status = 'succeeded'),
                  (select max(s.last_successful_sync) from sync_state s where s.organization_id = r.organization_id and s.connector = r.connection)) as last_ok,
         min(r.started_at) as first_run
       from sync_runs r where r.organization_id = ? group by r.organization_id, r.connection`,
      [id],
    ),
    db.query<{ connection: string; status: string; error_code: string | null; error: string | null }>(
      `select connection, status, error_code, error from (
         select connection, status, error_code, error,
           row_number() over (partition by connection order by started_at desc, id desc) as n
         from sync_runs where organization_id = ? and status <> 'running') t
       where n <= ?::int order by connection, n`,
      [id, a.runFailures],
    ),
    db.query<{ connection: string; n: unknown }>(
      `select connection, count(*)::int as n from sync_errors
       where organization_id = ? and not resolved and created_at > now() - ?::int * interval '1 minute'
       group by connection`,
      [id, a.windowMinutes],
    ),
    db.query<{ connection: string; n: unknown }>(
      `select connection, count(*)::int as n from webhook_inbox
       where organization_id = ? and status = 'rejected' and reason like 'webhook rejected%'
         and received_at > now() - ?::int * interval '1 minute'
       group by connection`,
      [id, a.windowMinutes],
    ),
    db.query<{ now: unknown }>('select now() as now'),
  ]);
  const now = ms(clock[0]?.now) ?? Date.now();
  const out: Condition[] = [];
  for (const c of org.connections) {
    const h = health.find((x) => x.connection === c.name);
    const d = json(h?.details);
    const until = typeof d.paused_until === 'string' ? Date.parse(d.paused_until) : 0;
    const lastError = `${d.last_error_code ?? ''} ${d.last_error ?? ''}`.trim();
    const add = (rule: AlertRule, holds: boolean, summary: string) => {
      if (on.has(rule)) out.push({ rule, connection: c.name, holds, summary });
    };
    // The breaker marks a connection `down` at its first authentication failure (RQ3003); new credentials reopen it.
    add(
      'auth_failure',
      h?.status === 'down' && d.last_error_code === 'RQ3003',
      h?.status === 'down' ? `authentication failed: ${lastError}` : 'authentication works again',
    );
    add(
      'circuit_paused',
      h?.status === 'paused' && until > now,
      h?.status === 'paused'
        ? `paused by the circuit breaker until ${new Date(until).toISOString()} after ${num(d.consecutive_failures)} failed runs: ${lastError}`
        : 'the circuit breaker is closed again',
    );
    const s = success.find((x) => x.connection === c.name);
    const since = ms(s?.last_ok) ?? ms(s?.first_run);
    const lagMin = since === null ? 0 : (now - since) / 60_000;
    add(
      'lag',
      c.enabled && since !== null && lagMin > a.lagMinutes,
      s?.last_ok
        ? `last successful sync ${Math.round(lagMin)} min ago (threshold ${a.lagMinutes} min)`
        : `no successful sync in the ${Math.round(lagMin)} min since its first run (threshold ${a.lagMinutes} min)`,
    );
    const n = num(dead.find((x) => x.connection === c.name)?.n);
    add(
      'dlq_growth',
      n >= a.dlqGrowth,
      `${n} new open dead letter(s) in the last ${a.windowMinutes} min (threshold ${a.dlqGrowth})`,
    );
    const runs = recent.filter((x) => x.connection === c.name);
    const failing = runs.length >= a.runFailures && runs.every((r) => r.status === 'failed');
    add(
      'run_failures',
      failing,
      failing
        ? `the last ${a.runFailures} runs failed; latest: ${runs[0]?.error_code ?? ''} ${runs[0]?.error ?? ''}`.trim()
        : 'runs succeed again',
    );
    const r = num(rejected.find((x) => x.connection === c.name)?.n);
    add(
      'webhook_signature',
      r >= a.webhookRejections,
      `${r} webhook deliveries rejected for their signature or token in the last ${a.windowMinutes} min (threshold ${a.webhookRejections})`,
    );
  }
  return out;
}
