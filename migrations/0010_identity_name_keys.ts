import { Migration } from '@mikro-orm/migrations';

/**
 * Identity matching by name and by evidence outside the record (issue #21.4), with indexed lookups only (#19):
 * - `name_key`: the normalized full name (sdk `identityNameKey`: folded, decorations and accents dropped,
 *   nickname-canonical first name + surname), written by the engine with every identity. Candidates with the same
 *   name are one index range, which is also how the uniqueness of a name in an organization is known. Rows
 *   written before this migration have none until they are next written: only the reconcile pass decides on
 *   unique names, and it computes the keys of every identity itself.
 * - `evidence`: phones (E.164) and emails found outside the record (contact inbox, messages), normalized, with a
 *   GIN index so that a later identity's phone or email finds them (`evidence @> '[{"value": …}]'`).
 */
export class Migration0010IdentityNameKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table patient_identities add column name_key text, add column evidence jsonb');
    this.addSql(
      'create index patient_identities_name_key_idx on patient_identities (organization_id, name_key) where name_key is not null',
    );
    this.addSql(
      'create index patient_identities_evidence_idx on patient_identities using gin (evidence jsonb_path_ops) with (fastupdate = off) where evidence is not null',
    );
  }
}
