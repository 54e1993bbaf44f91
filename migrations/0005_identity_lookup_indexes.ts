import { Migration } from '@mikro-orm/migrations';

/**
 * Identity matching looks candidates up by phone, email, cross-reference and last name + date of birth, OR-ed in
 * one query (engine/writer.ts findCandidates). Without an index on every branch PostgreSQL scans the organization's
 * identities once per new identity — quadratic in the organization's size; with one, it is a bitmap OR of index
 * scans. The GIN index has no pending list (fastupdate off): lookups follow every insert, and a pending list is
 * scanned linearly.
 */
export class Migration0005IdentityLookupIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      'create index patient_identities_cross_refs_idx on patient_identities using gin (cross_refs jsonb_path_ops) with (fastupdate = off)',
    );
    this.addSql(
      `create index patient_identities_name_dob_idx on patient_identities (organization_id, lower(last_name), date_of_birth)
       where last_name is not null and date_of_birth is not null`,
    );
  }
}
