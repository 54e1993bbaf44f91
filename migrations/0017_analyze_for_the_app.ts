import { Migration } from '@mikro-orm/migrations';

/**
 * `routiq_analyze(table)`: ANALYZE of one unified table for the app and admin roles, which may not run it (only the
 * owner may). A table written from empty has no statistics until autovacuum's first ANALYZE, and a new organization
 * in an analyzed shared table is in none of them: the planner then takes `(organization_id, source)` to match a
 * single row and reads the organization's rows per page (engine/session.ts calls this as a run's writes grow).
 * SECURITY DEFINER, owned by the owner role, search_path fixed at creation; the table must be one of the list.
 */
const TABLES = [
  'patients',
  'patient_identities',
  'identity_keys',
  'conversations',
  'messages',
  'attachments',
  'appointments',
  'practitioners',
  'appointment_types',
  'inboxes',
];

export class Migration0017AnalyzeForTheApp extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function routiq_analyze(t text) returns void
      language plpgsql security definer set search_path from current as $f$
      begin
        if t is null or t not in (${TABLES.map((x) => `'${x}'`).join(', ')}) then
          raise exception 'routiq_analyze: "%" is not a unified table', t;
        end if;
        execute format('analyze %I', t);
      end $f$`);
    this.addSql(`do $$ begin
      execute format('alter function routiq_analyze(text) owner to %I', routiq_role('owner'));
      revoke all on function routiq_analyze(text) from public;
      execute format('grant execute on function routiq_analyze(text) to %I, %I', routiq_role('app'), routiq_role('admin'));
    end $$`);
  }
}
