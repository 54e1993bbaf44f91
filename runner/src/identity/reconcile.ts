/**
 * The reconcile pass: re-run the matching rules over every stored identity of an organization
 * (`planPatientMerges` from the sdk) and apply the merges it plans with `mergePatients` (method `reconcile`:
 * audited, reversible with `unmergePatients`).
 *
 * Matching is incremental, so arrival order can split one person over two patients (their WhatsApp contact and
 * their email contact arrive before the clinic record that carries both keys, and an identity joins one patient
 * only). With all identities known, the plan links them. A pair a person separated with an unmerge is never
 * merged again by this pass.
 */

import { type PatientMerge, planPatientMerges } from '../../../sdk/src/identity/index.ts';
import type { Querier } from '../engine/writer.ts';
import { type MergeResult, mergePatients } from './merge.ts';
import {
  type DbOrQuerier,
  inTransaction,
  loadKeptApart,
  loadOrganization,
  loadStoredIdentities,
  lockIdentities,
} from './store.ts';

export interface ReconcileOptions {
  organizationId: string;
  /** Recorded as the audit actor (default `system`). */
  actor?: string;
  /** Plan only: nothing is written. */
  dryRun?: boolean;
  /** Organization settings to use instead of the stored `organizations.settings` (thresholds). */
  settings?: Readonly<Record<string, unknown>>;
}

export interface ReconcileMerge extends PatientMerge {
  /** The `patients.merge` audit row (absent in a dry run). */
  auditId?: string;
  identityIds?: string[];
}

export interface ReconcileResult {
  organizationId: string;
  dryRun: boolean;
  /** Live identities the plan looked at. */
  identities: number;
  /** Merges applied (or, in a dry run, that would be). */
  merges: ReconcileMerge[];
  /** Planned merges left out: a pair kept apart by an unmerge. */
  skipped: Array<PatientMerge & { reason: 'kept_apart' }>;
  durationMs: number;
}

async function reconcileIn(q: Querier, o: ReconcileOptions): Promise<ReconcileResult> {
  const started = performance.now();
  const org = await loadOrganization(q, o.organizationId);
  const identities = await loadStoredIdentities(q, org.id);
  const planned = planPatientMerges(identities, {
    defaultCountry: org.defaultCountry,
    settings: o.settings ?? org.settings,
  });
  const keptApart = await loadKeptApart(q, org.id);

  // Current holder of each patient as merges are applied (planned `into` is already the group's final patient).
  const rootOf = new Map<string, string>();
  const root = (p: string): string => {
    let cur = p;
    for (let next = rootOf.get(cur); next !== undefined && next !== cur; next = rootOf.get(cur)) cur = next;
    return cur;
  };
  const apart = (a: string, b: string): boolean =>
    keptApart.some(([x, y]) => {
      const rx = root(x);
      const ry = root(y);
      return (rx === a && ry === b) || (rx === b && ry === a);
    });

  const merges: ReconcileMerge[] = [];
  const skipped: ReconcileResult['skipped'] = [];
  for (const m of planned) {
    const from = root(m.from);
    const into = root(m.into);
    if (from === into) continue; // planned twice (a group that grew), or already applied
    if (apart(from, into)) {
      skipped.push({ ...m, reason: 'kept_apart' });
      continue;
    }
    if (o.dryRun) {
      merges.push({ from, into, via: m.via });
    } else {
      const r: MergeResult = await mergePatients(q, {
        organizationId: org.id,
        from,
        into,
        actor: o.actor ?? 'system',
        reason: `reconcile: ${m.via} links both patients`,
        method: 'reconcile',
        via: m.via,
      });
      merges.push({ from, into, via: m.via, auditId: r.auditId, identityIds: r.identityIds });
    }
    rootOf.set(from, into);
  }
  return {
    organizationId: org.id,
    dryRun: o.dryRun ?? false,
    identities: identities.length,
    merges,
    skipped,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Plan and apply the organization's merges in one transaction under its identity lock (so identities written
 * concurrently by a webhook wait, and the plan is applied to exactly the data it was made from).
 * Call it outside any other transaction (the embedded database has one connection).
 */
export async function reconcileOrganization(dbq: DbOrQuerier, o: ReconcileOptions): Promise<ReconcileResult> {
  return inTransaction(dbq, async (q) => {
    if (!o.dryRun) await lockIdentities(q, o.organizationId);
    return reconcileIn(q, o);
  });
}
