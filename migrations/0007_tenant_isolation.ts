import { Migration } from '@mikro-orm/migrations';

/**
 * Tenant isolation enforced by PostgreSQL (docs/database.md#tenant-isolation):
 * - roles `<prefix>_owner` (owns every table; NOLOGIN), `<prefix>_app` (tenant work: DML grants, NOINHERIT, never
 *   owner, superuser or BYPASSRLS) and `<prefix>_admin` (the cross-organization path: same grants plus a policy that
 *   sees every organization; reached only by `SET LOCAL ROLE` from the runtime's crossOrganization()). The prefix is
 *   the `database.role_prefix` setting (default `routiq`); roles are cluster-wide, so creating them tolerates a
 *   concurrent migration of another database creating the same names;
 * - row-level security ENABLEd and FORCEd on every table with `organization_id` (and on `organizations`, keyed on
 *   `id`), keyed on the per-transaction setting `app.organization_id`: without it a query sees and writes nothing;
 * - tenant-scoped foreign keys: `(organization_id, x_id)` references `(organization_id, id)`, so a row can never point
 *   at another organization's row;
 * - `set_config()` is not executable by PUBLIC: the runtime enters a tenant with `SET LOCAL` statements (refused to
 *   hooks), so SQL running as the app role cannot switch organization or role mid-statement.
 * Later migrations add a tenant table with `select routiq_protect_table('t')` (or `routiq_grant_table('t')` for a
 * table without `organization_id`); the catalog test (tenant-isolation.integration.test.ts) fails otherwise.
 */
export const ROLE_PREFIX_OPTION = 'routiqRolePrefix';

export function roleNames(prefix: string): { owner: string; app: string; admin: string } {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix))
    throw new Error(`database.role_prefix "${prefix}" must be lower-case letters, digits and _ (at most 41)`);
  return { owner: `${prefix}_owner`, app: `${prefix}_app`, admin: `${prefix}_admin` };
}

/** Referenced (organization_id, id) pairs, and the single-column foreign keys they replace. */
const TENANT_FKS: Array<{ table: string; column: string; references: string; old: string }> = [
  { table: 'patients', column: 'merged_into', references: 'patients', old: 'patients_merged_into_fkey' },
  {
    table: 'patient_identities',
    column: 'patient_id',
    references: 'patients',
    old: 'patient_identities_patient_id_fkey',
  },
  { table: 'conversations', column: 'patient_id', references: 'patients', old: 'conversations_patient_id_fkey' },
  { table: 'messages', column: 'conversation_id', references: 'conversations', old: 'messages_conversation_id_fkey' },
  { table: 'attachments', column: 'message_id', references: 'messages', old: 'attachments_message_id_fkey' },
  { table: 'appointments', column: 'patient_id', references: 'patients', old: 'appointments_patient_id_fkey' },
];

export class Migration0007TenantIsolation extends Migration {
  override async up(): Promise<void> {
    const prefix = (this.config.get(ROLE_PREFIX_OPTION as never) as string | undefined) ?? 'routiq';
    const r = roleNames(prefix);

    // Roles: created once per cluster; a concurrent creator (another database's migration) is not an error.
    for (const [name, attrs] of [
      [r.owner, 'nologin nobypassrls'],
      [r.admin, 'nologin nobypassrls'],
      [r.app, 'nologin noinherit nobypassrls'],
    ] as const) {
      this.addSql(`do $$ begin
        if not exists (select 1 from pg_roles where rolname = '${name}') then create role ${name} ${attrs}; end if;
      exception when duplicate_object or unique_violation then null; end $$`);
    }
    // The app role may become admin only by an explicit SET ROLE (NOINHERIT: admin's policy never applies to it
    // otherwise); the migrating role must be a member of the owner to hand tables to it.
    for (const [role, member] of [
      [r.admin, r.app],
      [r.owner, 'current_user'],
    ]) {
      this.addSql(`do $$ begin
        if not pg_has_role(${member === 'current_user' ? 'current_user' : `'${member}'`}, '${role}', 'member') then
          execute format('grant %I to %s', '${role}', ${member === 'current_user' ? 'quote_ident(current_user)' : `quote_ident('${member}')`});
        end if;
      exception when duplicate_object or unique_violation then null; end $$`);
    }

    // Composite keys first (the policies do not matter to a superuser migrating, but the FKs need the unique keys).
    for (const t of ['patients', 'conversations', 'messages'])
      this.addSql(`alter table ${t} add constraint ${t}_org_id_key unique (organization_id, id)`);
    for (const fk of TENANT_FKS) {
      this.addSql(`alter table ${fk.table} drop constraint ${fk.old}`);
      this.addSql(
        `alter table ${fk.table} add constraint ${fk.table}_${fk.column}_org_fkey foreign key (organization_id, ${fk.column}) references ${fk.references} (organization_id, id)`,
      );
    }

    // The helpers later migrations call. SECURITY INVOKER: only a role allowed to alter the table can use them.
    this.addSql(`create or replace function routiq_grant_table(t regclass) returns void language plpgsql as $f$
      begin
        execute format('alter table %s owner to %I', t, '${r.owner}');
        execute format('grant select, insert, update, delete on %s to %I, %I', t, '${r.app}', '${r.admin}');
      end $f$`);
    this.addSql(`create or replace function routiq_protect_table(t regclass, key_column text default 'organization_id')
      returns void language plpgsql as $f$
      begin
        perform routiq_grant_table(t);
        execute format('alter table %s enable row level security', t);
        execute format('alter table %s force row level security', t);
        execute format('drop policy if exists tenant_isolation on %s', t);
        execute format('drop policy if exists cross_organization on %s', t);
        -- nullif: a setting once set in a session reads '' after its transaction, and '' is no organization.
        execute format($p$create policy tenant_isolation on %s
          using (%I = nullif(current_setting('app.organization_id', true), ''))
          with check (%I = nullif(current_setting('app.organization_id', true), ''))$p$, t, key_column, key_column);
        execute format('create policy cross_organization on %s to %I using (true) with check (true)', t, '${r.admin}');
      end $f$`);
    // The runtime reads the role names from the database (a config with another prefix cannot mismatch them).
    this.addSql(`create or replace function routiq_role(kind text) returns text language sql immutable as $f$
      select case kind when 'owner' then '${r.owner}' when 'app' then '${r.app}' when 'admin' then '${r.admin}' end $f$`);

    this.addSql(`do $$ declare t regclass; begin
      for t in
        select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p')
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped)
      loop perform routiq_protect_table(t); end loop;
      for t in
        select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and c.relname <> 'organizations'
          and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped)
      loop perform routiq_grant_table(t); end loop;
    end $$`);
    this.addSql(`select routiq_protect_table('organizations', 'id')`);
    // Bookkeeping of the migrator: the runtime only reads it (assertMigrated).
    this.addSql(`revoke insert, update, delete on routiq_migrations from ${r.app}, ${r.admin}`);
    this.addSql(`do $$ begin
      execute format('grant usage on all sequences in schema %I to %I, %I', current_schema(), '${r.app}', '${r.admin}');
      execute format('grant usage on schema %I to %I, %I', current_schema(), '${r.app}', '${r.admin}');
      execute format('grant execute on function routiq_role(text) to %I, %I', '${r.app}', '${r.admin}');
    end $$`);
    // set_config() would let SQL running as the app role change its organization (or role) in the middle of a
    // statement (e.g. before query_to_xml plans its query). Only the bootstrap superuser may revoke it: elsewhere
    // (Supabase) the notice says so and docs/database.md gives the statement to run.
    this.addSql(`do $$ begin
      revoke execute on function pg_catalog.set_config(text, text, boolean) from public;
    exception when insufficient_privilege then
      raise notice 'routiq: could not revoke set_config from PUBLIC (not the owner of pg_catalog); see docs/database.md';
    end $$`);
  }
}
