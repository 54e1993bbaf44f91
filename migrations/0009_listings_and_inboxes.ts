import { Migration } from '@mikro-orm/migrations';

/**
 * Deletions without a signal (spec `deletions: { detect: absent_after_full_listing }`): `listing_seen` remembers,
 * per (organization, connection, stream), the records a listing returned and the run that last saw each. After a
 * complete listing one set-based UPDATE marks what that run did not see (`absent_since`, copied to the unified
 * rows' `deleted_at`); a record seen again clears the mark it caused. A small table of its own, so marking a
 * record seen never rewrites a wide unified row.
 *
 * Inboxes (Chatwoot `/inboxes`, a ManyChat page): a unified table, and `conversations.inbox_name` filled from it by
 * relink, so a rename reaches every conversation.
 */
export class Migration0009ListingsAndInboxes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table listing_seen (
      organization_id text not null references organizations(id),
      connection text not null,
      stream text not null,
      external_id text not null,
      last_seen_run_id uuid not null,
      absent_since timestamptz,
      primary key (organization_id, connection, stream, external_id)
    )`);

    this.addSql(`create table inboxes (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      source text not null,
      external_id text not null,
      name text,
      channel text,
      metadata jsonb not null default '{}'::jsonb,
      deleted_at timestamptz,
      source_hash text,
      spec_version text,
      stream text,
      last_sync_run_id uuid,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      source_version timestamptz,
      sanitized boolean not null default false,
      constraint inboxes_natural_key unique (organization_id, source, external_id)
    )`);
    this.addSql('alter table conversations add column inbox_name text');
    // Tenant tables: owner, grants, forced row-level security (0007).
    this.addSql(`select routiq_protect_table('listing_seen')`);
    this.addSql(`select routiq_protect_table('inboxes')`);
  }
}
