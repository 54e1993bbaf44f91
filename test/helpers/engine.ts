import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '@routiq/runner';
import { createLogger } from '@routiq/runner';

/** A connectors dir holding the given specs (name → YAML text). */
export function connectorsDir(specs: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'routiq-connectors-'));
  for (const [name, text] of Object.entries(specs)) {
    mkdirSync(path.join(dir, name), { recursive: true });
    writeFileSync(path.join(dir, name, 'connector.yaml'), text);
  }
  return dir;
}

export function testConfig(
  dir: string,
  orgs: OrganizationConfig[],
  runner: Partial<RoutiqConfig['runner']> = {},
): RoutiqConfig {
  return {
    file: 'test',
    env: 'test',
    database: { embeddedDir: 'memory://', poolMax: 4, schema: 'public', rolePrefix: 'routiq', tls: {} },
    retention: { deadLetterDays: 30, pushedRecordDays: 30, webhookInboxDays: 7 },
    log: { level: 'silent' },
    http: { timeoutMs: 5000, minTlsVersion: 'TLSv1.3' },
    runner: {
      batchSize: 500,
      concurrency: 4,
      heartbeatSeconds: 5,
      staleAfterSeconds: 60,
      deadlineSeconds: 120,
      maxRetries: 5,
      retryWindowSeconds: 60,
      sharedRateLimits: true,
      breakerThreshold: 3,
      breakerCooldownSeconds: 300,
      rawRetentionDays: 30,
      ...runner,
    },
    service: {
      host: '127.0.0.1',
      port: 0,
      concurrency: 2,
      intervalMinutes: 5,
      bodyLimitBytes: 1048576,
      drainSeconds: 10,
      shutdownTimeoutSeconds: 20,
      webhookConcurrency: 8,
      webhookStaleSeconds: 60,
      webhookMaxAttempts: 5,
      pollingIntervalSeconds: 0.5,
    },
    connectorsDir: dir,
    organizations: orgs,
  };
}

export function org(
  id: string,
  connections: Array<Partial<ConnectionConfig> & { connector: string }>,
): OrganizationConfig {
  return {
    id,
    name: `Org ${id}`,
    defaultCountry: 'AU',
    timezone: 'Australia/Sydney',
    settings: {},
    connections: connections.map((c) => ({
      name: c.connector,
      enabled: true,
      config: {},
      secrets: {},
      allowInsecureHttp: false,
      ...c,
    })),
  };
}

export const silentLogger = createLogger('silent');
