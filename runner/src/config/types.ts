export interface ConnectionConfig {
  connector: string;
  name: string;
  enabled: boolean;
  config: Record<string, unknown>;
  /** secret name -> ${ENV_VAR} reference; resolved lazily by resolveSecrets(). */
  secrets: Record<string, string>;
  /** Secret settings not under `secrets` come from the encrypted credential store (security/credentials.ts). */
  credentialStore?: boolean;
  allowInsecureHttp: boolean;
  minTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  streams?: string[];
  /** `routiq serve`: a cron expression (UTC) overriding service.interval_minutes. */
  schedule?: string;
}

export type AlertRule = 'auth_failure' | 'circuit_paused' | 'lag' | 'dlq_growth' | 'run_failures' | 'webhook_signature';

/** An organization's `alerts:` block (docs/alerts.md). Channel URLs stay ${ENV_VAR} references until sending. */
export interface AlertsConfig {
  slackWebhookUrl?: string;
  email?: { smtpUrl: string; from: string; to: string[] };
  rules: AlertRule[];
  lagMinutes: number;
  dlqGrowth: number;
  runFailures: number;
  webhookRejections: number;
  windowMinutes: number;
}

export interface OrganizationConfig {
  id: string;
  name: string;
  defaultCountry: string;
  timezone: string;
  settings: Record<string, unknown>;
  connections: ConnectionConfig[];
  alerts?: AlertsConfig;
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
    /** The hard bound of a SIGTERM shutdown (service.ts close). */
    shutdownTimeoutSeconds: number;
    webhookConcurrency: number;
    webhookStaleSeconds: number;
    webhookMaxAttempts: number;
    pollingIntervalSeconds: number;
    /** Clerk JWTs on admin endpoints (service/auth.ts). */
    auth?: JwtAuthConfig;
  };
  connectorsDir: string;
  organizations: OrganizationConfig[];
}

export interface JwtAuthConfig {
  jwksUrl: string;
  issuer: string;
  audience?: string;
  authorizedParties: string[];
  organizationClaim: string;
  clockToleranceSeconds: number;
}
