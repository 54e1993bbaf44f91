/**
 * Retention of operational data holding patient data (docs/database.md#retention): resolved dead letters, raw
 * platform payloads, pushed records kept in sync_state partitions, handled webhook deliveries. Run daily by the
 * service (pg-boss `routiq-purge`) and on demand by `routiq purge`. Nothing still needed is touched: open dead
 * letters stay (unless retention.open_dead_letter_days says otherwise), deliveries still waiting stay, and a
 * partition keeps its pushed record while it is pending, failed or named by an open dead letter.
 */
import type { RoutiqConfig } from '../config/types.ts';
import type { Database } from './database.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from './tx.ts';

export interface PurgeOptions {
  /** One organization only (default: every organization, through the cross-organization path). */
  organizationId?: string | undefined;
  /** Count what would go, change nothing. */
  dryRun?: boolean | undefined;
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

class DryRun extends Error {
  constructor(readonly result: PurgeResult) {
    super('dry run');
  }
}

const count = async (q: Querier, sql: string, params: unknown[]): Promise<number> => {
  const [r] = await q<{ n: number | string }>(
    `with x as (${sql} returning 1) select count(*)::int as n from x`,
    params,
  );
  return Number(r?.n ?? 0);
};

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
    const out: PurgeResult = {
      deadLetters: await count(
        q,
        `delete from sync_errors where resolved and coalesce(resolved_at, updated_at) < ${days(r.deadLetterDays)}`,
        [],
      ),
      openDeadLetters:
        r.openDeadLetterDays === undefined
          ? 0
          : await count(
              q,
              `delete from sync_errors where not resolved and created_at < ${days(r.openDeadLetterDays)}`,
              [],
            ),
      rawRecords: await count(
        q,
        `delete from raw_records where fetched_at < ${days(config.runner.rawRetentionDays)}`,
        [],
      ),
      pushedRecords: await count(
        q,
        `update sync_state s set metadata = s.metadata - 'parent'
         where s.partition <> '' and s.status not in ('pending', 'error', 'running') and s.metadata->'parent' is not null
           and s.updated_at < ${days(r.pushedRecordDays)}
           and not exists (select 1 from sync_errors e where not e.resolved and e.organization_id = s.organization_id
             and e.connection = s.connector and e.stream = s.stream and e.details->>'partition' = s.partition)`,
        [],
      ),
      webhookDeliveries: await count(
        q,
        `delete from webhook_inbox where status in ('processed', 'failed', 'rejected', 'duplicate')
           and coalesce(processed_at, received_at) < ${days(r.webhookInboxDays)}`,
        [],
      ),
      dryRun: !!o.dryRun,
    };
    if (o.dryRun) throw new DryRun(out);
    return out;
  };
  try {
    return await transaction(scoped, run);
  } catch (err) {
    if (err instanceof DryRun) return err.result;
    throw err;
  }
}
