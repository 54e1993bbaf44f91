export interface ConnectionConfig {
  connector: string;
  name: string;
  enabled: boolean;
  config: Record<string, unknown>;
  /** secret name -> ${ENV_VAR} reference; resolved lazily by resolveSecrets(). */
  secrets: Record<string, string>;
  allowInsecureHttp: boolean;
  minTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  streams?: string[];
  /** `routiq serve`: a cron expression (UTC) overriding service.interval_minutes. */
  schedule?: string;
}

export interface OrganizationConfig {
  id: string;
  name: string;
  defaultCountry: string;
  timezone: string;
  settings: Record<string, unknown>;
  connections: ConnectionConfig[];
}

export interface RoutiqConfig {
  /** The file the values came from (for messages). */
  file: string;
  env: string;
  database: {
    url?: string;
    embeddedDir: string;
    poolMax: number;
    schema: string;
    /** Roles of migration 0007: `<rolePrefix>_owner`, `_app`, `_admin`. */
    rolePrefix: string;
    /** TLS to a server: unset mode = the URL's sslmode, else verify-full unless local (db/database.ts tlsOptions). */
    tls: { mode?: 'disable' | 'require' | 'verify-ca' | 'verify-full'; ca?: string };
  };
  /** Retention of operational data (db/retention.ts); raw payloads follow runner.rawRetentionDays. */
  retention: {
    deadLetterDays: number;
    openDeadLetterDays?: number;
    pushedRecordDays: number;
    webhookInboxDays: number;
  };
  log: { level: string };
  http: { timeoutMs: number; minTlsVersion: 'TLSv1.2' | 'TLSv1.3' };
  runner: {
    batchSize: number;
    concurrency: number;
    heartbeatSeconds: number;
    staleAfterSeconds: number;
    deadlineSeconds: number;
    maxRetries: number;
    retryWindowSeconds: number;
    sharedRateLimits: boolean;
    breakerThreshold: number;
    breakerCooldownSeconds: number;
    rawRetentionDays: number;
  };
  /** `routiq serve` (docs/service.md). */
  service: {
    host: string;
    port: number;
    concurrency: number;
    intervalMinutes: number;
    bodyLimitBytes: number;
    drainSeconds: number;
    webhookConcurrency: number;
    webhookStaleSeconds: number;
    webhookMaxAttempts: number;
    pollingIntervalSeconds: number;
  };
  connectorsDir: string;
  organizations: OrganizationConfig[];
}
