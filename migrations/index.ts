import type { MigrationObject } from '@mikro-orm/core';
import { Migration0001UnifiedSchema } from './0001_unified_schema.ts';
import { Migration0002SharedRateLimits } from './0002_shared_rate_limits.ts';
import { Migration0003RowVersions } from './0003_row_versions.ts';
import { Migration0004WebhookInbox } from './0004_webhook_inbox.ts';
import { Migration0005IdentityLookupIndexes } from './0005_identity_lookup_indexes.ts';
import { Migration0006RateLimitBudgets } from './0006_rate_limit_budgets.ts';
import { Migration0010IdentityNameKeys } from './0010_identity_name_keys.ts';

/** Every migration this version knows, in order. Names are stable forever: they are stored in the database. */
export const migrations: MigrationObject[] = [
  { name: '0001_unified_schema', class: Migration0001UnifiedSchema },
  { name: '0002_shared_rate_limits', class: Migration0002SharedRateLimits },
  { name: '0003_row_versions', class: Migration0003RowVersions },
  { name: '0004_webhook_inbox', class: Migration0004WebhookInbox },
  { name: '0005_identity_lookup_indexes', class: Migration0005IdentityLookupIndexes },
  { name: '0006_rate_limit_budgets', class: Migration0006RateLimitBudgets },
  { name: '0010_identity_name_keys', class: Migration0010IdentityNameKeys },
];

export const MIGRATIONS_TABLE = 'routiq_migrations';
