import { Migration } from '@mikro-orm/migrations';

/**
 * The unified schema: the contract the dashboard reads.
 * Every tenant table carries organization_id (text: a Clerk org id, not a UUID) and a natural unique key
 * (organization_id, source, external_id) so a re-sync is an idempotent upsert. Platform ids are text
 * (Cliniko ids exceed 2^53). Lineage columns (source_hash, spec_version, stream, last_sync_run_id) trace
 * every row to the connector, spec version and mapping that wrote it.
 * Keep this SQL valid on PostgreSQL 15 (CI server) and on PGlite (PostgreSQL 18).
 */
export class Migration0001UnifiedSchema extends Migration {
  override async up(): Promise<void> {
    const lineage = `
      source_hash text,
      spec_version text,
      stream text,
      last_sync_run_id uuid,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()`;

    this.addSql(`create table organizations (
      id text primary key,
      name text not null,
      default_country char(2) not null default 'AU',
      timezone text not null default 'UTC',
      settings jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`);

    this.addSql(`create table patients (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      first_name text,
      last_name text,
      display_name text,
      email text,
      phone_e164 text,
      date_of_birth date,
      primary_source text,
      merged_into uuid references patients(id),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz
    )`);
    this.addSql(
      'create index patients_org_phone_idx on patients (organization_id, phone_e164) where phone_e164 is not null',
    );
    this.addSql(
      'create index patients_org_email_idx on patients (organization_id, lower(email)) where email is not null',
    );

    this.addSql(`create table patient_identities (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      patient_id uuid not null references patients(id),
      source text not null,
      external_id text not null,
      first_name text,
      last_name text,
      display_name text,
      email text,
      phone text,
      phone_e164 text,
      phone_valid boolean,
      date_of_birth date,
      cross_refs jsonb not null default '[]'::jsonb,
      match_method text not null default 'new',
      match_confidence numeric(4,3) not null default 1,
      metadata jsonb not null default '{}'::jsonb,
      archived_at timestamptz,
      deleted_at timestamptz,
      ${lineage},
      constraint patient_identities_natural_key unique (organization_id, source, external_id)
    )`);
    this.addSql('create index patient_identities_patient_idx on patient_identities (patient_id)');
    this.addSql(
      'create index patient_identities_phone_idx on patient_identities (organization_id, phone_e164) where phone_e164 is not null',
    );
    this.addSql(
      'create index patient_identities_email_idx on patient_identities (organization_id, lower(email)) where email is not null',
    );

    this.addSql(`create table conversations (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      source text not null,
      external_id text not null,
      patient_id uuid references patients(id),
      patient_external_id text,
      channel text,
      status text,
      inbox text,
      started_at timestamptz,
      last_activity_at timestamptz,
      metadata jsonb not null default '{}'::jsonb,
      deleted_at timestamptz,
      ${lineage},
      constraint conversations_natural_key unique (organization_id, source, external_id)
    )`);
    this.addSql('create index conversations_patient_idx on conversations (organization_id, patient_id)');

    this.addSql(`create table messages (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      conversation_id uuid references conversations(id),
      conversation_external_id text not null,
      source text not null,
      external_id text not null,
      direction text check (direction in ('inbound', 'outbound')),
      sender_type text not null check (sender_type in ('patient', 'agent', 'bot', 'system')),
      sender_external_id text,
      content text,
      content_type text,
      is_private boolean not null default false,
      sent_at timestamptz not null,
      deleted_at timestamptz,
      metadata jsonb not null default '{}'::jsonb,
      ${lineage},
      constraint messages_natural_key unique (organization_id, source, external_id)
    )`);
    this.addSql('create index messages_conversation_idx on messages (conversation_id, sent_at)');
    this.addSql(
      'create index messages_conversation_ext_idx on messages (organization_id, source, conversation_external_id)',
    );

    this.addSql(`create table attachments (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      message_id uuid references messages(id),
      message_external_id text not null,
      source text not null,
      external_id text not null,
      file_type text,
      url text,
      content_type text,
      size bigint,
      metadata jsonb not null default '{}'::jsonb,
      deleted_at timestamptz,
      ${lineage},
      constraint attachments_natural_key unique (organization_id, source, external_id)
    )`);

    this.addSql(`create table practitioners (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      source text not null,
      external_id text not null,
      first_name text,
      last_name text,
      display_name text,
      title text,
      active boolean,
      metadata jsonb not null default '{}'::jsonb,
      deleted_at timestamptz,
      ${lineage},
      constraint practitioners_natural_key unique (organization_id, source, external_id)
    )`);

    this.addSql(`create table appointment_types (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      source text not null,
      external_id text not null,
      name text,
      category text,
      duration_minutes integer,
      metadata jsonb not null default '{}'::jsonb,
      archived_at timestamptz,
      deleted_at timestamptz,
      ${lineage},
      constraint appointment_types_natural_key unique (organization_id, source, external_id)
    )`);

    this.addSql(`create table appointments (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      source text not null,
      external_id text not null,
      patient_id uuid references patients(id),
      patient_external_id text,
      practitioner_external_id text,
      appointment_type text,
      appointment_type_external_id text,
      starts_at timestamptz,
      ends_at timestamptz,
      status text not null check (status in ('booked', 'cancelled', 'did_not_arrive', 'arrived')),
      cancelled_at timestamptz,
      cancellation_reason text,
      archived_at timestamptz,
      deleted_at timestamptz,
      notes text,
      metadata jsonb not null default '{}'::jsonb,
      ${lineage},
      constraint appointments_natural_key unique (organization_id, source, external_id)
    )`);
    this.addSql('create index appointments_patient_idx on appointments (organization_id, patient_id, starts_at)');

    // --- sync bookkeeping ---
    this.addSql(`create table sync_state (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      connector text not null,
      stream text not null,
      partition text not null default '',
      cursor jsonb,
      last_sync_timestamp timestamptz,
      last_successful_sync timestamptz,
      status text not null default 'idle',
      records_processed bigint not null default 0,
      errors_count integer not null default 0,
      metadata jsonb not null default '{}'::jsonb,
      updated_at timestamptz not null default now(),
      constraint sync_state_key unique (organization_id, connector, stream, partition)
    )`);

    this.addSql(`create table sync_runs (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      connector text not null,
      connection text not null,
      correlation_id text not null,
      status text not null check (status in ('running', 'succeeded', 'partial', 'failed', 'abandoned')),
      full_refresh boolean not null default false,
      started_at timestamptz not null default now(),
      heartbeat_at timestamptz not null default now(),
      finished_at timestamptz,
      host text,
      pid integer,
      spec_version text,
      requests integer not null default 0,
      records_processed bigint not null default 0,
      records_written bigint not null default 0,
      dead_letters integer not null default 0,
      counts jsonb not null default '{}'::jsonb,
      error_code text,
      error text
    )`);
    this.addSql(
      "create index sync_runs_running_idx on sync_runs (organization_id, connection) where status = 'running'",
    );
    this.addSql('create index sync_runs_recent_idx on sync_runs (organization_id, started_at desc)');

    this.addSql(`create table sync_errors (
      id uuid primary key default gen_random_uuid(),
      organization_id text not null references organizations(id),
      connector text not null,
      connection text not null,
      stream text,
      sync_run_id uuid,
      error_class text not null check (error_class in ('transient', 'rate_limited', 'auth', 'permanent', 'mapping', 'validation', 'hook', 'write')),
      error_code text not null,
      message text not null,
      details jsonb not null default '{}'::jsonb,
      record_key text,
      payload jsonb,
      spec_version text,
      retry_count integer not null default 0,
      resolved boolean not null default false,
      resolved_at timestamptz,
      resolution text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`);
    this.addSql('create index sync_errors_open_idx on sync_errors (organization_id, connector, resolved, created_at)');

    this.addSql(`create table service_health (
      component text not null,
      organization_id text not null default '',
      connection text not null default '',
      status text not null check (status in ('ok', 'degraded', 'down', 'paused')),
      details jsonb not null default '{}'::jsonb,
      checked_at timestamptz not null default now(),
      primary key (component, organization_id, connection)
    )`);

    this.addSql(`create table audit_log (
      id bigserial primary key,
      organization_id text,
      actor text not null,
      action text not null,
      resource_type text not null,
      resource_id text,
      details jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now()
    )`);
    this.addSql('create index audit_log_org_idx on audit_log (organization_id, created_at desc)');

    this.addSql(`create table raw_records (
      organization_id text not null references organizations(id),
      source text not null,
      stream text not null,
      external_id text not null,
      source_hash text not null,
      spec_version text,
      payload jsonb not null,
      fetched_at timestamptz not null default now(),
      primary key (organization_id, source, stream, external_id)
    )`);
    this.addSql('create index raw_records_fetched_idx on raw_records (fetched_at)');
  }
}
