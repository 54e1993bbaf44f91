/**
 * Retention of operational data holding patient data (docs/database.md#retention): resolved dead letters, raw
 * platform payloads, pushed records kept in sync_state partitions, handled webhook deliveries. Run daily by the
 * service (pg-boss `routiq-purge`) and on demand by `routiq purge`. Nothing still needed is touched: open dead
 * letters stay (unless retention.open_dead_letter_days says otherwise), deliveries still waiting stay, and a
 * partition keeps its pushed record while it is pending, failed or named by an open dead letter.
 */
import { randomUUID } from 'node:crypto';
import type { RoutiqConfig } from '../config/types.ts';
import { type Actor, recordAudit } from '../security/audit.ts';
import type { Database } from './database.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from './tx.ts';

export interface PurgeOptions {
  /** One organization only (default: every organization, through the cross-organization path). */
  organizationId?: string | undefined;
  /** Count what would go, change nothing (not audited: it reads counts only). */
  dryRun?: boolean | undefined;
  /** Who purges, for the audit log (default: the system's daily job). */
  actor?: Actor | string | undefined;
  /** Ties the audit rows of one purge together (default: a fresh UUID). */
  correlationId?: string | undefined;
}

export interface PurgeResult {
  /** Resolved dead letters deleted. */
  deadLetters: number;
  /** Open dead letters deleted (only with retention.open_dead_letter_days). */
  openDeadLetters: number;
  rawRecords: number;
  /** sync_state partitions whose pushed record was removed. */
  pushedRecords: number;
  webhookDeliveries: number;
  dryRun: boolean;
}

type Counts = Omit<PurgeResult, 'dryRun'>;
const ZERO: Counts = { deadLetters: 0, openDeadLetters: 0, rawRecords: 0, pushedRecords: 0, webhookDeliveries: 0 };

class DryRun extends Error {
  constructor(readonly result: PurgeResult) {
    super('dry run');
  }
}

/** Rows the statement changed, per organization. */
const count = async (q: Querier, sql: string): Promise<Map<string, number>> => {
  const rows = await q<{ o: string; n: number | string }>(
    `with x as (${sql} returning organization_id) select organization_id as o, count(*)::int as n from x group by 1`,
  );
  return new Map(rows.map((r) => [r.o, Number(r.n)]));
};
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

export async function purgeExpired(
  db: Database,
  config: Pick<RoutiqConfig, 'retention' | 'runner'>,
  o: PurgeOptions = {},
): Promise<PurgeResult> {
  const r = config.retention;
  const scoped =
    o.organizationId !== undefined
      ? forOrganization(db, o.organizationId)
      : crossOrganization(db, 'retention purge: expired rows of every organization');
  const days = (n: number) => `now() - make_interval(days => ${Math.max(0, Math.floor(n))})`;
  const run = async (q: Querier): Promise<PurgeResult> => {
    const per: Record<keyof Counts, Map<string, number>> = {
      deadLetters: await count(
        q,
        `delete from sync_errors where resolved and coalesce(resolved_at, updated_at) < ${days(r.deadLetterDays)}`,
      ),
      openDeadLetters:
        r.openDeadLetterDays === undefined
          ? new Map()
          : await count(q, `delete from sync_errors where not resolved and created_at < ${days(r.openDeadLetterDays)}`),
      rawRecords: await count(q, `delete from raw_records where fetched_at < ${days(config.runner.rawRetentionDays)}`),
      pushedRecords: await count(
        q,
        `update sync_state s set metadata = s.metadata - 'parent'
         where s.partition <> '' and s.status not in ('pending', 'error', 'running') and s.metadata->'parent' is not null
           and s.updated_at < ${days(r.pushedRecordDays)}
           and not exists (select 1 from sync_errors e where not e.resolved and e.organization_id = s.organization_id
             and e.connection = s.connector and e.stream = s.stream and e.details->>'partition' = s.partition)`,
      ),
      webhookDeliveries: await count(
        q,
        `delete from webhook_inbox where status in ('processed', 'failed', 'rejected', 'duplicate')
           and coalesce(processed_at, received_at) < ${days(r.webhookInboxDays)}`,
      ),
    };
    const keys = Object.keys(ZERO) as Array<keyof Counts>;
    const out: PurgeResult = { ...ZERO, dryRun: !!o.dryRun };
    for (const k of keys) out[k] = total(per[k]);
    if (o.dryRun) throw new DryRun(out);
    // In the purge's transaction: the rows go and the audit says so, or neither. One row per organization whose
    // rows went (or one row saying nothing went), sharing the purge's correlation id.
    const orgs = [...new Set(keys.flatMap((k) => [...per[k].keys()]))].sort();
    const correlationId = o.correlationId ?? randomUUID();
    const rows: Array<[string | null, Counts]> = orgs.length
      ? orgs.map((id) => [id, Object.fromEntries(keys.map((k) => [k, per[k].get(id) ?? 0])) as Counts])
      : [[o.organizationId ?? null, ZERO]];
    for (const [organizationId, c] of rows)
      await recordAudit(q, {
        actor: o.actor ?? { type: 'system', id: 'retention-purge' },
        organizationId,
        action: 'retention.purge',
        resourceType: 'retention',
        count: keys.reduce((n, k) => n + c[k], 0),
        correlationId,
        details: {
          scope: o.organizationId === undefined ? 'every organization' : 'one organization',
          counts: {
            dead_letters: c.deadLetters,
            open_dead_letters: c.openDeadLetters,
            raw_records: c.rawRecords,
            pushed_records: c.pushedRecords,
            webhook_deliveries: c.webhookDeliveries,
          },
          tables: {
            sync_errors: c.deadLetters + c.openDeadLetters,
            raw_records: c.rawRecords,
            sync_state: c.pushedRecords,
            webhook_inbox: c.webhookDeliveries,
          },
        },
      });
    return out;
  };
  try {
    return await transaction(scoped, run);
  } catch (err) {
    if (err instanceof DryRun) return err.result;
    throw err;
  }
}
