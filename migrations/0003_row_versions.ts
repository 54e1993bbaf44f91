import { Migration } from '@mikro-orm/migrations';

/**
 * Lineage for untrusted input: every unified row records the platform version of the write that last changed it
 * (an `updated_at`, a webhook's event time, or the fetch time of a polled record) so an older delivery never
 * overwrites a newer one, and whether text in it was sanitized (NUL / lone surrogates replaced with U+FFFD).
 */
export class Migration0003RowVersions extends Migration {
  override async up(): Promise<void> {
    for (const table of [
      'patient_identities',
      'conversations',
      'messages',
      'attachments',
      'practitioners',
      'appointment_types',
      'appointments',
    ]) {
      this.addSql(`alter table ${table} add column source_version timestamptz`);
      this.addSql(`alter table ${table} add column sanitized boolean not null default false`);
    }
  }
}
