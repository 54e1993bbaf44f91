import { Migration } from '@mikro-orm/migrations';

/**
 * Webhook deliveries as `routiq serve` receives them: an authenticated delivery is stored here (durably, before
 * the 2xx answer) and processed afterwards, so a crash between the two loses nothing; a rejected one is recorded
 * with its reason and without its body. A platform delivery id (when the spec names its header) is stored once.
 */
export class Migration0004WebhookInbox extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table webhook_inbox (
      id bigserial primary key,
      organization_id text not null,
      connection text not null,
      received_at timestamptz not null default now(),
      delivery_id text,
      headers jsonb not null default '{}'::jsonb,
      body text,
      status text not null default 'received' check (status in ('received', 'processing', 'processed', 'failed', 'rejected', 'duplicate')),
      reason text,
      attempts integer not null default 0,
      claimed_at timestamptz,
      processed_at timestamptz,
      result jsonb
    )`);
    this.addSql(
      "create index webhook_inbox_pending_idx on webhook_inbox (received_at) where status in ('received', 'processing')",
    );
    this.addSql(
      "create unique index webhook_inbox_delivery_idx on webhook_inbox (organization_id, connection, delivery_id) where delivery_id is not null and status in ('received', 'processing', 'processed', 'failed')",
    );
    this.addSql('create index webhook_inbox_org_idx on webhook_inbox (organization_id, connection, received_at desc)');
  }
}
