/**
 * Reconcile marks (`identity_reconcile_marks`, migration 0020): an identity inserted, changed, patched, deleted,
 * restored or moved by a manual merge is marked, and the next reconcile pass re-matches its neighbourhood
 * (neighbourhood.ts).
 */

export interface MarkingOptions {
  /** More `t.*` columns the written rows return (for `out`). */
  returning?: string;
  /** The select list the statement returns, over `w` (the written rows). Default: a row per identity written. */
  out?: string;
  /** The identity before this write (an expression over the statement's rows), kept unless a mark holds one. */
  previous?: string;
}

/**
 * `dml`, an UPDATE or INSERT of `patient_identities` aliased `t` with no RETURNING, as one statement that also marks
 * every identity it wrote. A mark already there takes the new time and keeps its `previous` (the identity as the last
 * pass saw it is the one before the first change since).
 */
export function marking(dml: string, o: MarkingOptions = {}): string {
  return `with w as (${dml}
     returning t.organization_id as mark_org, t.id as mark_id, ${o.previous ?? 'null::jsonb'} as mark_previous${o.returning ? `, ${o.returning}` : ''}),
   m as (insert into identity_reconcile_marks as r (organization_id, identity_id, previous)
     select mark_org, mark_id, mark_previous from w
     on conflict (organization_id, identity_id) do update set marked_at = now(), previous = coalesce(r.previous, excluded.previous))
   select ${o.out ?? '1 as n'} from w`;
}
