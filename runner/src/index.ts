/** @routiq/runner — the programmatic API shared by the CLI and the service. */
export { loadConfig, resolveSecrets, ENV_OVERRIDES } from './config/load.ts';
export type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from './config/types.ts';
export { openDatabase, redact } from './db/database.ts';
export type { Database, DatabaseOptions } from './db/database.ts';
export { assertMigrated, migrate } from './db/migrate.ts';
export { codes, isRoutiqError, RoutiqError } from './errors/registry.ts';
export type { CodeInfo } from './errors/registry.ts';
export { createLogger } from './logger.ts';
export type { Logger } from './logger.ts';
export { listConnectors, loadConnector, loadSpecFile } from './spec/load.ts';
export type { ConnectorSpec, StreamSpec } from './spec/types.ts';
export { syncAll } from './engine/run-all.ts';
export type { SyncFilter } from './engine/run-all.ts';
export { ensureOrganization, syncConnection, transaction } from './engine/sync.ts';
export type { ConnectionSummary, StreamSummary } from './engine/sync.ts';
export { closeDeadRuns } from './engine/runs.ts';
export { ingestWebhook } from './engine/webhooks.ts';
export type { WebhookResult, IngestOptions } from './engine/webhooks.ts';
