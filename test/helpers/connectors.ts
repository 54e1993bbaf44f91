import path from 'node:path';
import type { ConnectionConfig, ConnectionSummary, Database } from '@routiq/runner';
import { syncConnection } from '@routiq/runner';
import '@routiq/sdk';
import { org, silentLogger, testConfig } from './engine.ts';

export const CONNECTORS_DIR = path.resolve(import.meta.dirname, '../../connectors');

/** Run the bundled connector for one organization (secrets passed as an env map, as in production). */
export function connectorRunner(
  db: Database,
  orgId: string,
  conn: Partial<ConnectionConfig> & { connector: string },
  env: NodeJS.ProcessEnv,
  country = 'AU',
) {
  const o = { ...org(orgId, [conn]), defaultCountry: country };
  const config = testConfig(CONNECTORS_DIR, [o], { deadlineSeconds: 300 });
  return {
    org: o,
    config,
    sync: (opts: { fullRefresh?: boolean } = {}): Promise<ConnectionSummary> =>
      syncConnection({
        db,
        config,
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
        env,
        ...(opts.fullRefresh ? { fullRefresh: true } : {}),
      }),
  };
}

export const iso = (v: unknown): string | null =>
  v === null || v === undefined || v === '' ? null : new Date(typeof v === 'number' ? v : String(v)).toISOString();
export const blank = (v: unknown): unknown => (v === '' || v === undefined ? null : v);
