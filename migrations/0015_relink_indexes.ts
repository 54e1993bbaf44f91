import { Migration } from '@mikro-orm/migrations';

/**
 * Relinking what a write touched (engine/writer.ts relinkWritten): a parent written reaches the children that name it
 * by their reference column, within one organization and source. Without an index on that column each parent written
 * scans the organization's children. `messages (organization_id, source, conversation_external_id)` exists (0001);
 * the children found through their own natural key need none. Plain btree `=` conditions: leakproof, so they stay
 * index conditions under row-level security (0007); indexes carry no policy of their own.
 */
export class Migration0015RelinkIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      'create index conversations_patient_ext_idx on conversations (organization_id, source, patient_external_id)',
    );
    this.addSql('create index conversations_inbox_idx on conversations (organization_id, source, inbox)');
    this.addSql(
      'create index appointments_patient_ext_idx on appointments (organization_id, source, patient_external_id)',
    );
    this.addSql(
      'create index appointments_type_ext_idx on appointments (organization_id, source, appointment_type_external_id)',
    );
    this.addSql(
      'create index attachments_message_ext_idx on attachments (organization_id, source, message_external_id)',
    );
  }
}
