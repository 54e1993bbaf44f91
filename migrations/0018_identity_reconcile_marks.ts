import { Migration } from '@mikro-orm/migrations';

/**
 * `patient_identities.needs_reconcile`: set by the writer on every identity it inserts or changes, cleared by the
 * reconcile pass once it has re-matched that identity's neighbourhood (identity/reconcile.ts, `scope: 'changed'`).
 * After a sync, the pass then reads the identities near what changed, not every identity of the organization:
 * re-planning a 100,000-patient practice after each small sync read 73,000 rows and took seconds of CPU. The
 * partial index holds only the marked rows. Existing rows start unmarked: the full pass that ran after their sync
 * saw them. The predicate is a bare boolean column (leakproof under row-level security, 0007).
 *
 * `reconcile_previous`: the identity as the last pass saw it (names, email, phones, date of birth, cross-references,
 * evidence), kept by the writer's first change after that pass. A phone changed from X to Y changes the candidates
 * of X's other holders too, and the pass must look at them: they are found through these old keys.
 */
export class Migration0018IdentityReconcileMarks extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table patient_identities add column needs_reconcile boolean not null default false');
    this.addSql('alter table patient_identities add column reconcile_previous jsonb');
    this.addSql(
      'create index patient_identities_needs_reconcile_idx on patient_identities (organization_id) where needs_reconcile',
    );
  }
}
