import { Migration } from '@mikro-orm/migrations';

/**
 * Encrypted per-organization credentials, and an audit log that is structured and append-only.
 *
 * `organization_credentials`: one row per (organization, connection, secret name), the value sealed with
 * AES-256-GCM under the key named by `key_id` (runner/src/security/crypto.ts). The plaintext never reaches the
 * database; `version` grows on every write so a rotation never overwrites a value set meanwhile.
 *
 * `audit_log`: the actor becomes structured (`actor_type` from a closed set, `actor_id`), and gains a `count` and a
 * `correlation_id` (a run id, an HTTP request id, a CLI invocation). A trigger refuses UPDATE, DELETE and TRUNCATE
 * whoever runs them (a trigger binds table owners too, unlike a missing grant); only dropping the trigger, which needs
 * the owning (migrating) role, lifts it.
 */
export class Migration0011CredentialsAndAudit extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table organization_credentials (
      organization_id text not null references organizations(id),
      connection text not null,
      name text not null,
      key_id text not null,
      iv bytea not null,
      ciphertext bytea not null,
      tag bytea not null,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (organization_id, connection, name)
    )`);
    this.addSql('create index organization_credentials_key_idx on organization_credentials (key_id)');
    // A tenant table: owner, grants, forced row-level security (0007).
    this.addSql(`select routiq_protect_table('organization_credentials')`);

    this.addSql(`alter table audit_log
      add column actor_type text not null default 'system'
        check (actor_type in ('system', 'cli', 'service_token', 'user', 'anonymous')),
      add column actor_id text,
      add column count integer,
      add column correlation_id text`);
    // Rows written before: `kind:id` strings (cli:alice, service-token, system).
    this.addSql(`update audit_log set
      actor_type = case when actor like 'cli:%' then 'cli' when actor like 'user:%' then 'user'
                        when actor like 'service%' then 'service_token' else 'system' end,
      actor_id = case when position(':' in actor) > 0 then substr(actor, position(':' in actor) + 1) else actor end`);
    this.addSql('alter table audit_log alter column actor_type drop default');
    this.addSql('create index audit_log_action_idx on audit_log (action, created_at desc)');
    this.addSql(`create function audit_log_append_only() returns trigger language plpgsql as $$
      begin
        raise exception 'audit_log is append-only: % refused', tg_op using errcode = '42501';
      end $$`);
    this.addSql(`create trigger audit_log_no_change before update or delete on audit_log
      for each row execute function audit_log_append_only()`);
    this.addSql(`create trigger audit_log_no_truncate before truncate on audit_log
      for each statement execute function audit_log_append_only()`);
  }
}
