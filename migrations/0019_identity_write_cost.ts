import { Migration } from '@mikro-orm/migrations';

/**
 * What inserting an identity costs PostgreSQL, for the work it does:
 * - Four indexes no query uses since 0014 are dropped: `lower(email)` and `lower(last_name), dob` (the candidate
 *   query compares the stored `email_lower` / `last_name_lower`, indexed by 0014), and the GIN indexes on
 *   `cross_refs` and `evidence` (reverse cross-references and message evidence are looked up in `identity_keys`).
 *   Every insert and every non-HOT update paid for them, GIN with fastupdate off most of all.
 * - The insert trigger that writes an identity's `identity_keys` runs only for an identity that has any: with no
 *   cross-reference and no evidence (most identities on arrival) `patient_identity_keys` returns no row, and the
 *   plpgsql call per row was the cost. The update trigger is unchanged (a key removed must be deleted).
 */
export class Migration0019IdentityWriteCost extends Migration {
  override async up(): Promise<void> {
    this.addSql('drop index if exists patient_identities_email_idx');
    this.addSql('drop index if exists patient_identities_name_dob_idx');
    this.addSql('drop index if exists patient_identities_cross_refs_idx');
    this.addSql('drop index if exists patient_identities_evidence_idx');
    this.addSql('drop trigger patient_identities_keys_insert on patient_identities');
    this.addSql(`create trigger patient_identities_keys_insert after insert on patient_identities
      for each row when (new.cross_refs <> '[]'::jsonb or new.evidence is not null)
      execute function patient_identity_keys_sync()`);
  }
}
