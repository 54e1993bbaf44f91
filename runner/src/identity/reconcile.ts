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

import { type PatientMerge, planPatientMerges } from '@routiq/sdk/identity';
import type { Querier } from '../engine/writer.ts';
import { type Progress, type ProgressListener, progressReporter } from '../util/progress.ts';
import { type MergeResult, mergePatients } from './merge.ts';
import { clearMarks, loadMarks, loadNeighbourhood, MAX_MARKS, type Mark } from './neighbourhood.ts';
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
  /** Planning (identities matched), then merges applied of those planned. */
  onProgress?: ProgressListener | undefined;
  /**
   * `all` (the default): every live identity of the organization is matched again. `changed`: only the
   * neighbourhood of the identities written since their last pass (their marks; see neighbourhood.ts), which
   * is what a sync runs after writing; it plans the whole organization when the marks or the neighbourhood are too
   * many (a first sync). Either clears the marks of what it saw (not in a dry run).
   */
  scope?: 'all' | 'changed';
}

function reconcileProgress(o: ReconcileOptions) {
  const report = progressReporter(o.onProgress);
  return (p: Omit<Progress, 'task' | 'unit'>) =>
    report({ task: `reconcile ${o.organizationId}`, unit: 'merges', ...p });
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
  /** What was planned: the whole organization, or the neighbourhood of the identities written since the last pass. */
  scope: 'all' | 'changed';
  /** Identities written since the last pass (their marks). */
  marked: number;
  /** Merges applied (or, in a dry run, that would be). */
  merges: ReconcileMerge[];
  /** Planned merges left out: a pair kept apart by an unmerge. */
  skipped: Array<PatientMerge & { reason: 'kept_apart' }>;
  durationMs: number;
}

interface Plan {
  organizationId: string;
  identities: number;
  /** Identity rows (id, patient, updated_at) the plan was made from (`identitiesVersion`; '' for a neighbourhood). */
  version: string;
  planned: PatientMerge[];
  scope: 'all' | 'changed';
  /** The marks the plan saw, cleared once it is applied. */
  marks: Mark[];
}

/** Changes whenever an identity is inserted, updated (the writer bumps updated_at) or moved to another patient. */
async function identitiesVersion(q: Querier, organizationId: string): Promise<string> {
  const rows = await q<{ v: string | null; n: string | number }>(
    `select count(*) as n, md5(coalesce(string_agg(i.id::text || ':' || i.patient_id::text || ':' ||
       extract(epoch from i.updated_at)::text, ',' order by i.id), '')) as v
     from patient_identities i where i.organization_id = ?`,
    [organizationId],
  );
  return `${rows[0]?.n ?? 0}:${rows[0]?.v ?? ''}`;
}

async function plan(q: Querier, o: ReconcileOptions): Promise<Plan> {
  const org = await loadOrganization(q, o.organizationId);
  const settings = o.settings ?? org.settings;
  let marks: Mark[] | undefined;
  if (o.scope === 'changed') {
    marks = await loadMarks(q, org.id, MAX_MARKS + 1);
    if (marks.length === 0)
      return { organizationId: org.id, identities: 0, version: '', planned: [], scope: 'changed', marks };
    const near = await loadNeighbourhood(q, org.id, org.defaultCountry, settings, marks);
    if (near) {
      reconcileProgress(o)({
        done: 0,
        step: `matching ${near.rematch.size} identities near ${marks.length} written`,
        counts: { identities: near.identities.length },
      });
      const planned = planPatientMerges(near.identities, {
        defaultCountry: org.defaultCountry,
        settings,
        rematch: near.rematch,
        links: near.links,
      });
      // No version: under the lock a neighbourhood plan is made again rather than checked (reconcileOrganization).
      const identities = near.identities.length;
      return { organizationId: org.id, identities, version: '', planned, scope: 'changed', marks };
    }
    // The whole organization instead: every mark, unless the first read already held them all.
    if (marks.length > MAX_MARKS) marks = undefined;
  }
  marks ??= await loadMarks(q, org.id);
  const version = await identitiesVersion(q, org.id);
  const identities = await loadStoredIdentities(q, org.id);
  reconcileProgress(o)({
    done: 0,
    step: `matching ${identities.length} identities`,
    counts: { identities: identities.length },
  });
  const planned = planPatientMerges(identities, { defaultCountry: org.defaultCountry, settings });
  return { organizationId: org.id, identities: identities.length, version, planned, scope: 'all', marks };
}

/**
 * The plan keeps each group on its smallest patient id; the engine keeps it on the oldest patient instead (the id
 * the dashboard most likely already shows). One merge per other member of the group, into that patient.
 */
async function oldestKeeps(q: Querier, planned: readonly PatientMerge[]): Promise<PatientMerge[]> {
  if (planned.length === 0) return [];
  const ids = [...new Set(planned.flatMap((m) => [m.from, m.into]))];
  const rows = await q<{ id: string }>(
    `select id::text as id from patients where id in (${ids.map(() => '?::uuid').join(', ')}) order by created_at, id`,
    ids,
  );
  const age = new Map(rows.map((r, i) => [r.id, i]));
  const groups = new Map<string, Map<string, string>>(); // plan's keeper → member → via
  for (const m of planned) {
    const g = groups.get(m.into) ?? new Map<string, string>();
    if (!g.has(m.from)) g.set(m.from, m.via);
    groups.set(m.into, g);
  }
  const out: PatientMerge[] = [];
  for (const [root, members] of groups) {
    const all = [root, ...members.keys()];
    const keeper = all.reduce((a, b) => ((age.get(b) ?? Infinity) < (age.get(a) ?? Infinity) ? b : a));
    const firstVia = members.values().next().value ?? '';
    for (const p of all) if (p !== keeper) out.push({ from: p, into: keeper, via: members.get(p) ?? firstVia });
  }
  return out;
}

/** Apply (or, in a dry run, list) a plan's merges, leaving out pairs kept apart by an unmerge. */
async function apply(q: Querier, o: ReconcileOptions, p: Plan, started: number): Promise<ReconcileResult> {
  // The marks the plan read; the pass's own merges below leave none (identity/merge.ts).
  if (!o.dryRun) await clearMarks(q, p.organizationId, p.marks);
  const planned = await oldestKeeps(q, p.planned);
  const keptApart = await loadKeptApart(q, p.organizationId);
  // Current holder of each patient as merges are applied (planned `into` is already the group's final patient).
  const rootOf = new Map<string, string>();
  const root = (id: string): string => {
    let cur = id;
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
  const progress = reconcileProgress(o);
  const counts = () => ({ identities: p.identities, 'kept apart': skipped.length });
  for (const [i, m] of planned.entries()) {
    progress({ done: i, total: planned.length, step: o.dryRun ? 'planning merges' : 'merging', counts: counts() });
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
        organizationId: p.organizationId,
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
  progress({ done: planned.length, total: planned.length, counts: counts(), finished: true });
  return {
    organizationId: p.organizationId,
    dryRun: o.dryRun ?? false,
    identities: p.identities,
    scope: p.scope,
    marked: p.marks.length,
    merges,
    skipped,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Plan and apply the organization's merges. Planning (the expensive part: every identity re-matched) runs
 * without the identity lock; when it finds merges, they are applied in one transaction under the lock, after
 * checking that no identity changed since the plan was made (otherwise it plans again under the lock). Most runs
 * find nothing and never take the lock. Given a querier, everything runs in the caller's transaction, under
 * the lock. Call it outside any other transaction (the embedded database has one connection).
 */
export async function reconcileOrganization(dbq: DbOrQuerier, o: ReconcileOptions): Promise<ReconcileResult> {
  const started = performance.now();
  if (typeof dbq === 'function') {
    if (!o.dryRun) await lockIdentities(dbq, o.organizationId);
    return apply(dbq, o, await plan(dbq, o), started);
  }
  const first = await inTransaction(dbq, (q) => plan(q, o), o.organizationId);
  if (o.dryRun || first.planned.length === 0)
    return inTransaction(dbq, (q) => apply(q, o, first, started), o.organizationId);
  return inTransaction(
    dbq,
    async (q) => {
      await lockIdentities(q, first.organizationId);
      // A neighbourhood plan is cheap: made again under the lock rather than checked (its version covers only
      // what it read, not an identity written since that would join the neighbourhood).
      const current =
        first.scope === 'all' && (await identitiesVersion(q, first.organizationId)) === first.version
          ? first
          : await plan(q, o);
      return apply(q, o, current, started);
    },
    o.organizationId,
  );
}
