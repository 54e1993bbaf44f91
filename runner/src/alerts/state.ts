/**
 * Alert state in service_health (component `alert:<rule>`), shared by every instance: a condition notifies only on
 * the statement that changes its row, so two instances evaluating at once send one notice, and a condition that
 * keeps holding sends nothing more until it has cleared.
 */
import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization } from '../db/tx.ts';

const component = (rule: string) => `alert:${rule}`;

/** The condition holds: true when this call started it (notify), false when it already held. */
export async function startAlert(
  db: Database,
  k: { rule: string; organizationId: string; connection: string },
  summary: string,
): Promise<boolean> {
  const rows = await forOrganization(db, k.organizationId).query(
    `insert into service_health (component, organization_id, connection, status, details, checked_at)
     values (?, ?, ?, 'down', ?::jsonb, now())
     on conflict (component, organization_id, connection) do update
       set status = 'down', details = excluded.details, checked_at = now()
       where service_health.status <> 'down'
     returning 1 as changed`,
    [component(k.rule), k.organizationId, k.connection, JSON.stringify({ summary, since: new Date().toISOString() })],
  );
  return rows.length === 1;
}

/** The condition no longer holds: true when this call ended it (send the recovery notice). */
export async function clearAlert(
  db: Database,
  k: { rule: string; organizationId: string; connection: string },
  summary: string,
): Promise<boolean> {
  const rows = await forOrganization(db, k.organizationId).query(
    `update service_health set status = 'ok', checked_at = now(),
       details = details || jsonb_build_object('cleared', ?::text, 'cleared_at', now())
     where component = ? and organization_id = ? and connection = ? and status = 'down'
     returning 1 as changed`,
    [summary, component(k.rule), k.organizationId, k.connection],
  );
  return rows.length === 1;
}

export interface ActiveAlert {
  rule: string;
  organizationId: string;
  connection: string;
  summary: string;
  since: string;
}

/** Alerts holding now (for the status page and the `routiq_alerts_firing` gauge). */
export async function activeAlerts(db: Database): Promise<ActiveAlert[]> {
  // Every organization's (or, given a scoped database, its organization's): the status page shows them.
  const sdb = db.scope ? db : crossOrganization(db, 'alerts: active alerts of every organization');
  const rows = await sdb.query<{ component: string; organization_id: string; connection: string; details: unknown }>(
    `select component, organization_id, connection, details from service_health
     where component like 'alert:%' and status = 'down' order by organization_id, connection, component`,
  );
  return rows.map((r) => {
    const d = (typeof r.details === 'string' ? JSON.parse(r.details) : (r.details ?? {})) as Record<string, unknown>;
    return {
      rule: r.component.slice('alert:'.length),
      organizationId: r.organization_id,
      connection: r.connection,
      summary: String(d.summary ?? ''),
      since: String(d.since ?? ''),
    };
  });
}
