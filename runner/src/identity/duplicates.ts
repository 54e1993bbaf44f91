/**
 * Likely-duplicate patients of an organization, for human review: `findLikelyDuplicates` (sdk) over the stored
 * live identities of live (not merged) patients. Pairs of identities already linked to one patient are never
 * compared, and a pair a person separated with an unmerge is left out.
 */

import {
  type DuplicateStats,
  findLikelyDuplicatesWithStats,
  type LikelyDuplicate,
  readIdentitySettings,
} from '@routiq/sdk/identity';
import type { Database } from '../db/database.ts';
import type { Querier } from '../engine/writer.ts';
import { inTransaction, loadKeptApart, loadOrganization, loadStoredIdentities } from './store.ts';

export interface ListDuplicatesOptions {
  organizationId: string;
  /**
   * Organization settings to use instead of the stored `organizations.settings`
   * (`identity.review_threshold`, `identity.merge_threshold`).
   */
  settings?: Readonly<Record<string, unknown>>;
  /** Also report unlinked pairs at or above the merge threshold (default true). */
  includeAboveMerge?: boolean;
  /** Blocks with more identities than this are skipped (default 50). */
  maxBlockSize?: number;
}

export interface DuplicateList {
  organizationId: string;
  /** Best-scoring pairs first. */
  duplicates: LikelyDuplicate[];
  stats: DuplicateStats & { keptApart: number };
}

export async function listDuplicates(db: Database | Querier, o: ListDuplicatesOptions): Promise<DuplicateList> {
  return inTransaction(
    db,
    async (q) => {
      const org = await loadOrganization(q, o.organizationId);
      const settings = readIdentitySettings(o.settings ?? org.settings);
      const identities = await loadStoredIdentities(q, org.id);
      const { duplicates, stats } = findLikelyDuplicatesWithStats(identities, {
        defaultCountry: org.defaultCountry,
        reviewThreshold: settings.reviewThreshold,
        mergeThreshold: settings.mergeThreshold,
        ...(o.includeAboveMerge !== undefined ? { includeAboveMerge: o.includeAboveMerge } : {}),
        ...(o.maxBlockSize !== undefined ? { maxBlockSize: o.maxBlockSize } : {}),
      });
      const apart = new Set((await loadKeptApart(q, org.id)).map(([a, b]) => (a < b ? `${a} ${b}` : `${b} ${a}`)));
      const kept = duplicates.filter((d) => !apart.has(`${d.patientIds[0]} ${d.patientIds[1]}`));
      return {
        organizationId: org.id,
        duplicates: kept,
        stats: { ...stats, keptApart: duplicates.length - kept.length },
      };
    },
    o.organizationId,
  );
}
