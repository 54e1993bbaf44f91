import { Migration } from '@mikro-orm/migrations';

/**
 * The reconcile marks (0018) in a table of their own, `identity_reconcile_marks`: one row per identity written since
 * the last reconcile pass, with `previous` (the identity as that pass saw it) and `marked_at` (the pass clears a mark
 * only if no write re-marked it since it was read). As two columns of `patient_identities`, clearing a mark was an
 * update of the identity's row, and not a HOT one (the partial index's predicate column changed): every identity a
 * first sync wrote was written twice, ~40 µs of PostgreSQL each (0.6 s for a 20,000-patient practice, 3.5 s for
 * 100,000). A mark row is inserted and deleted instead. No foreign key (its check locks the identity row): the pass
 * deletes the mark of an identity that is gone. Existing marks move over.
 */
export class Migration0020ReconcileMarksTable extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table identity_reconcile_marks (
      organization_id text not null,
      identity_id uuid not null,
      marked_at timestamptz not null default now(),
      previous jsonb,
      primary key (organization_id, identity_id)
    )`);
    this.addSql(`insert into identity_reconcile_marks (organization_id, identity_id, marked_at, previous)
      select organization_id, id, updated_at, reconcile_previous from patient_identities where needs_reconcile`);
    this.addSql('drop index if exists patient_identities_needs_reconcile_idx');
    this.addSql('alter table patient_identities drop column needs_reconcile, drop column reconcile_previous');
    // A tenant table: owner, grants, forced row-level security (0007).
    this.addSql(`select routiq_protect_table('identity_reconcile_marks')`);
  }
}
