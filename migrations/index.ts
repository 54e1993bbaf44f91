import type { MigrationObject } from '@mikro-orm/core';
import { Migration0001UnifiedSchema } from './0001_unified_schema.ts';
import { Migration0002SharedRateLimits } from './0002_shared_rate_limits.ts';
import { Migration0003RowVersions } from './0003_row_versions.ts';
import { Migration0004WebhookInbox } from './0004_webhook_inbox.ts';
import { Migration0005IdentityLookupIndexes } from './0005_identity_lookup_indexes.ts';
import { Migration0006RateLimitBudgets } from './0006_rate_limit_budgets.ts';
import { Migration0007TenantIsolation } from './0007_tenant_isolation.ts';
import { Migration0009ListingsAndInboxes } from './0009_listings_and_inboxes.ts';
import { Migration0010IdentityNameKeys } from './0010_identity_name_keys.ts';
import { Migration0011CredentialsAndAudit } from './0011_credentials_and_audit.ts';
import { Migration0012WebhookDeadLetters } from './0012_webhook_dead_letters.ts';
import { Migration0013BackfillIdentityNameKeys } from './0013_backfill_identity_name_keys.ts';
import { Migration0014IdentityKeys } from './0014_identity_keys.ts';
import { Migration0015RelinkIndexes } from './0015_relink_indexes.ts';
import { Migration0016ReferenceFirstIndexes } from './0016_reference_first_indexes.ts';
import { Migration0017AnalyzeForTheApp } from './0017_analyze_for_the_app.ts';
import { Migration0018IdentityReconcileMarks } from './0018_identity_reconcile_marks.ts';
import { Migration0019IdentityWriteCost } from './0019_identity_write_cost.ts';
import { Migration0020ReconcileMarksTable } from './0020_reconcile_marks_table.ts';

/** Every migration this version knows, in order. Names are stable forever: they are stored in the database. */
export const migrations: MigrationObject[] = [
  { name: '0001_unified_schema', class: Migration0001UnifiedSchema },
  { name: '0002_shared_rate_limits', class: Migration0002SharedRateLimits },
  { name: '0003_row_versions', class: Migration0003RowVersions },
  { name: '0004_webhook_inbox', class: Migration0004WebhookInbox },
  { name: '0005_identity_lookup_indexes', class: Migration0005IdentityLookupIndexes },
  { name: '0006_rate_limit_budgets', class: Migration0006RateLimitBudgets },
  { name: '0007_tenant_isolation', class: Migration0007TenantIsolation },
  { name: '0009_listings_and_inboxes', class: Migration0009ListingsAndInboxes },
  { name: '0010_identity_name_keys', class: Migration0010IdentityNameKeys },
  { name: '0011_credentials_and_audit', class: Migration0011CredentialsAndAudit },
  { name: '0012_webhook_dead_letters', class: Migration0012WebhookDeadLetters },
  { name: '0013_backfill_identity_name_keys', class: Migration0013BackfillIdentityNameKeys },
  { name: '0014_identity_keys', class: Migration0014IdentityKeys },
  { name: '0015_relink_indexes', class: Migration0015RelinkIndexes },
  { name: '0016_reference_first_indexes', class: Migration0016ReferenceFirstIndexes },
  { name: '0017_analyze_for_the_app', class: Migration0017AnalyzeForTheApp },
  { name: '0018_identity_reconcile_marks', class: Migration0018IdentityReconcileMarks },
  { name: '0019_identity_write_cost', class: Migration0019IdentityWriteCost },
  { name: '0020_reconcile_marks_table', class: Migration0020ReconcileMarksTable },
];

export const MIGRATIONS_TABLE = 'routiq_migrations';

export { ROLE_PREFIX_OPTION, roleNames } from './0007_tenant_isolation.ts';
export { NAME_KEY_BACKFILL_BATCH } from './0013_backfill_identity_name_keys.ts';
