import { Migration } from '@mikro-orm/migrations';

/**
 * The children's reference indexes (0001, 0015) led with (organization_id, source), as the natural key does. On a
 * table without statistics (written from empty: a first sync, before autovacuum's first ANALYZE; the app role may not
 * run ANALYZE) the planner's estimates for a natural-key lookup tie between the two, and it took the reference index
 * with `external_id` as a filter: each lookup read the organization's rows (an attachment's message: every message;
 * a message's conversation: every conversation), so a first sync of a large organization cost the square of its
 * size. Leading with the reference column keeps the relink's lookups by reference (`= any` on it, then organization
 * and source) and leaves the reference index of no use to a lookup by natural key.
 */
const INDEXES: ReadonlyArray<[name: string, table: string, reference: string]> = [
  ['messages_conversation_ext_idx', 'messages', 'conversation_external_id'],
  ['attachments_message_ext_idx', 'attachments', 'message_external_id'],
  ['conversations_patient_ext_idx', 'conversations', 'patient_external_id'],
  ['conversations_inbox_idx', 'conversations', 'inbox'],
  ['appointments_patient_ext_idx', 'appointments', 'patient_external_id'],
  ['appointments_type_ext_idx', 'appointments', 'appointment_type_external_id'],
];

export class Migration0016ReferenceFirstIndexes extends Migration {
  override async up(): Promise<void> {
    for (const [name, table, reference] of INDEXES) {
      this.addSql(`drop index if exists ${name}`);
      this.addSql(`create index ${name} on ${table} (${reference}, organization_id, source)`);
    }
  }
}
