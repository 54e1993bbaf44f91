/**
 * Deletions the platform never announces (spec `deletions: { detect: absent_after_full_listing }`).
 *
 * Every page of a stream's listing records the keys it returned in `listing_seen` with the run's id. When a listing
 * is complete — every page read to its natural end, without a cursor, without a failure — one set-based statement
 * marks the keys this run did not see (`absent_since`) and gives the unified rows they key `deleted_at`. A partial,
 * incremental, capped or failed listing marks nothing, and nothing is ever hard-deleted. A key seen again clears
 * the mark it caused (only that one: a `deleted_at` the platform itself sent is left alone).
 *
 * Cost per record is flat: one upserted key per listed record, then one pass over the stream's keys of the
 * organization at the end of a complete listing — never a lookup per stored row.
 */
import type { UnifiedTarget } from '@routiq/schemas';
import type { Database } from '../db/database.ts';
import { type Querier, transaction } from '../db/tx.ts';
import { marking } from '../identity/marks.ts';
import type { StreamSpec } from '../spec/types.ts';
import { durationMs } from './durations.ts';
import type { DeadRecord, ParentInfo } from './map.ts';

/** Keys per upsert statement (a page is usually far smaller). */
const CHUNK = 500;

export interface ListingScope {
  organizationId: string;
  connection: string;
  /** The connector name: `source` of the unified rows. */
  source: string;
  stream: string;
  runId: string;
}

/** The unified tables a stream's deletions apply to: declared, or the mappings that take the record itself. */
export function deletionTargets(s: StreamSpec): UnifiedTarget[] {
  const declared = s.deletions?.targets;
  if (declared?.length) return [...new Set(declared)];
  return [...new Set(s.map.filter((m) => !m.input).map((m) => m.target))];
}

export class ListingTracker {
  /** A listed record without a usable key: the listing cannot say what is absent. */
  private unkeyed = 0;
  private seen = 0;

  private constructor(
    private readonly db: Database,
    private readonly scope: ListingScope,
    private readonly targets: UnifiedTarget[],
    /** The stream must list everything on this pass (its last complete listing is too old, or there was none). */
    readonly fullListingDue: boolean,
  ) {}

  /** A tracker for a top-level stream that declares deletions; undefined otherwise. */
  static async open(db: Database, s: StreamSpec, scope: ListingScope): Promise<ListingTracker | undefined> {
    if (!s.deletions || s.parent) return undefined;
    let due = false;
    if (s.incremental && s.deletions.full_listing_every) {
      const rows = await db.query<{ at: string | null }>(
        `select metadata->>'last_complete_listing_at' as at from sync_state
         where organization_id = ? and connector = ? and stream = ? and partition = ''`,
        [scope.organizationId, scope.connection, scope.stream],
      );
      const at = rows[0]?.at ? Date.parse(rows[0].at) : Number.NaN;
      due = !(Date.now() - at < durationMs(s.deletions.full_listing_every));
    }
    return new ListingTracker(db, scope, deletionTargets(s), due);
  }

  /**
   * What one page listed (records written or dead-lettered alike: both exist on the platform). Marks are cleared
   * on every pass; keys are recorded only on a pass that can be complete (`record`), since only such a pass
   * reads them back.
   */
  async page(parents: ParentInfo[], dead: DeadRecord[], record: boolean): Promise<void> {
    const keys = new Set<string>();
    for (const r of [...parents, ...dead]) {
      if (r.key === null) this.unkeyed++;
      else keys.add(r.key);
    }
    const list = [...keys];
    this.seen += list.length;
    for (let i = 0; i < list.length; i += CHUNK) {
      const chunk = list.slice(i, i + CHUNK);
      await transaction(this.db, async (q) => {
        await this.restore(q, chunk);
        if (record) await this.markSeen(q, chunk);
      });
    }
  }

  /** Rows whose absence this tracker marked get their `deleted_at` back to null when their key is listed again. */
  private async restore(q: Querier, keys: string[]): Promise<void> {
    const { organizationId, connection, source, stream } = this.scope;
    const inList = keys.map(() => '?').join(', ');
    const marked = await q<{ external_id: string; absent_since: unknown }>(
      `select external_id, absent_since from listing_seen
       where organization_id = ? and connection = ? and stream = ? and absent_since is not null and external_id in (${inList})`,
      [organizationId, connection, stream, ...keys],
    );
    if (!marked.length) return;
    for (const target of this.targets) {
      await q(
        reconcileMarked(
          target,
          `update ${target} t set deleted_at = null, updated_at = now()
         from listing_seen s
         where s.organization_id = ? and s.connection = ? and s.stream = ? and s.absent_since is not null
           and s.external_id in (${marked.map(() => '?').join(', ')})
           and t.organization_id = s.organization_id and t.source = ? and t.external_id = s.external_id
           and t.deleted_at = s.absent_since`,
        ),
        [organizationId, connection, stream, ...marked.map((m) => m.external_id), source],
      );
    }
    await q(
      `update listing_seen set absent_since = null
       where organization_id = ? and connection = ? and stream = ? and external_id in (${marked.map(() => '?').join(', ')})`,
      [organizationId, connection, stream, ...marked.map((m) => m.external_id)],
    );
  }

  private async markSeen(q: Querier, keys: string[]): Promise<void> {
    const { organizationId, connection, stream, runId } = this.scope;
    const params: unknown[] = [];
    const tuples = keys.map((k) => {
      params.push(organizationId, connection, stream, k, runId);
      return '(?, ?, ?, ?, ?::uuid)';
    });
    await q(
      `insert into listing_seen (organization_id, connection, stream, external_id, last_seen_run_id) values ${tuples.join(', ')}
       on conflict (organization_id, connection, stream, external_id)
       do update set last_seen_run_id = excluded.last_seen_run_id`,
      params,
    );
  }

  /**
   * End of the stream's pass. `complete`: every page was read to its natural end without a cursor. Only then are
   * absent keys marked; returns how many unified rows got `deleted_at` (undefined when nothing could be marked).
   */
  async finish(complete: boolean): Promise<number | undefined> {
    if (!complete || this.unkeyed > 0) return undefined;
    const { organizationId, connection, source, stream, runId } = this.scope;
    return transaction(this.db, async (q) => {
      // An empty listing of a stream that listed records before is far more likely an API or permission change
      // than a platform emptied in a day: it marks nothing (the next non-empty complete listing will).
      if (this.seen === 0) return undefined;
      const gone = await q<{ n: number }>(
        `update listing_seen set absent_since = now()
         where organization_id = ? and connection = ? and stream = ? and absent_since is null and last_seen_run_id <> ?::uuid
         returning 1 as n`,
        [organizationId, connection, stream, runId],
      );
      let marked = 0;
      if (gone.length) {
        for (const target of this.targets) {
          const rows = await q(
            reconcileMarked(
              target,
              `update ${target} t set deleted_at = s.absent_since, updated_at = now(), last_sync_run_id = ?::uuid
             from listing_seen s
             where s.organization_id = ? and s.connection = ? and s.stream = ? and s.absent_since = now()
               and t.organization_id = s.organization_id and t.source = ? and t.external_id = s.external_id
               and t.deleted_at is null`,
              'returning 1 as n',
            ),
            [runId, organizationId, connection, stream, source],
          );
          marked += rows.length;
        }
      }
      await q(
        `update sync_state set metadata = metadata || jsonb_build_object('last_complete_listing_at', now())
         where organization_id = ? and connector = ? and stream = ? and partition = ''`,
        [organizationId, connection, stream],
      );
      return marked;
    });
  }
}

/**
 * An identity that disappears or comes back changes who its neighbours match: the reconcile pass looks again (its
 * mark, identity/marks.ts). Other tables: the statement as it is, with `returning` when given.
 */
function reconcileMarked(target: string, update: string, returning = ''): string {
  if (target === 'patient_identities') return marking(update);
  return returning ? `${update}\n${returning}` : update;
}
