/**
 * Reconcile marks (`identity_reconcile_marks`, migration 0020): an identity inserted, changed, deleted, restored or
 * moved by a manual merge is marked, and the next reconcile pass re-matches its neighbourhood (neighbourhood.ts).
 */

/**
 * `dml`, an UPDATE or INSERT of `patient_identities` aliased `t` with no RETURNING, as a statement that also marks
 * every identity it wrote (a mark already there keeps its `previous` and takes the new time). `out`: the select list
 * the statement returns, over `w` (the written rows: `t.*` columns named in `returning`).
 */
export function marking(dml: string, returning = '', out = '1 as n'): string {
  return `with w as (${dml}
     returning t.organization_id as mark_org, t.id as mark_id${returning ? `, ${returning}` : ''}),
   m as (insert into identity_reconcile_marks (organization_id, identity_id) select mark_org, mark_id from w
     on conflict (organization_id, identity_id) do update set marked_at = now())
   select ${out} from w`;
}
