/** @routiq/runner — the programmatic API shared by the CLI and the service. */
export { ENV_OVERRIDES, loadConfig, resolveSecrets } from './config/load.ts';
export type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from './config/types.ts';
export type { Database, DatabaseOptions } from './db/database.ts';
export { openDatabase, redact } from './db/database.ts';
export { databaseFailure, isDatabaseFailureCode } from './db/failure.ts';
export { assertMigrated, migrate } from './db/migrate.ts';
export { type PurgeOptions, type PurgeResult, purgeExpired } from './db/retention.ts';
export { crossOrganization, type DbScope, forOrganization, safeMessage, transaction } from './db/tx.ts';
export type {
  ConnectionHealth,
  ConnectionStatus,
  DeadLetter,
  DeadLetterFilter,
  ErrorClass,
  OrganizationStatus,
  ReplayOptions,
  ReplayOutcome,
  ReplayStatus,
  ResolveOptions,
  ResolveResult,
  RunInfo,
  StatusReport,
  StreamCheckpoint,
} from './dlq/index.ts';
export {
  assertDeadLetterId,
  countDeadLetters,
  ERROR_CLASSES,
  getDeadLetter,
  getStatus,
  hasSelector,
  listDeadLetters,
  parseAge,
  RECORD_CLASSES,
  REQUEST_CLASSES,
  replayDeadLetters,
  resolveDeadLetters,
  validateFilter,
} from './dlq/index.ts';
export type { PayloadLimits, PayloadRejection } from './engine/payload-limits.ts';
export { checkJsonDepth, checkPayload, DEFAULT_PAYLOAD_LIMITS, tooLarge } from './engine/payload-limits.ts';
export type { SyncFilter } from './engine/run-all.ts';
export { syncAll } from './engine/run-all.ts';
export { closeDeadRuns } from './engine/runs.ts';
export { ensureOrganization, openSession, Session } from './engine/session.ts';
export type { ConnectionSummary, ReconcileSummary, StreamSummary } from './engine/sync.ts';
export { syncConnection } from './engine/sync.ts';
export type { IngestOptions, WebhookResult } from './engine/webhooks.ts';
export { ingestWebhook } from './engine/webhooks.ts';
export type { CodeInfo } from './errors/registry.ts';
export { codes, isRoutiqError, RoutiqError } from './errors/registry.ts';
export type {
  DuplicateList,
  ListDuplicatesOptions,
  MergeMethod,
  MergeOptions,
  MergeResult,
  ReconcileMerge,
  ReconcileOptions,
  ReconcileResult,
  UnmergeOptions,
  UnmergeResult,
} from './identity/index.ts';
export { listDuplicates, mergePatients, reconcileOrganization, unmergePatients } from './identity/index.ts';
export type { Logger } from './logger.ts';
export { createLogger } from './logger.ts';
export type { Actor, ActorType, AuditEntry } from './security/audit.ts';
export { actorOf, auditTo, CLI_CORRELATION_ID, cliActor, recordAudit } from './security/audit.ts';
export type { CredentialInfo, CredentialRef, RotationResult } from './security/credentials.ts';
export {
  deleteCredential,
  listCredentials,
  loadCredentials,
  rotateCredentials,
  setCredential,
} from './security/credentials.ts';
export type { KeyRing } from './security/crypto.ts';
export { KEYS_VARIABLE, keyRingFromEnv, parseKeyRing, requireKeyRing } from './security/crypto.ts';
export type { ServiceOptions, ServiceSettings } from './service/service.ts';
export { DEFAULT_SETTINGS, Service } from './service/service.ts';
export { listConnectors, loadConnector, loadSpecFile } from './spec/load.ts';
export type { ConnectorSpec, StreamSpec } from './spec/types.ts';
export type { Progress, ProgressListener } from './util/progress.ts';
export { redactUrlCredentials } from './util/redact.ts';
