import type { Logger } from 'pino';
import type { RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { RoutiqError } from '../errors/registry.ts';
import { type ConnectionSummary, syncConnection } from './sync.ts';

export interface SyncFilter {
  org?: string | undefined;
  connector?: string | undefined;
  stream?: string | undefined;
  fullRefresh?: boolean | undefined;
}

/** One pass over every matching organization and connection, one after another. */
export async function syncAll(
  db: Database,
  config: RoutiqConfig,
  filter: SyncFilter,
  logger: Logger,
  env?: NodeJS.ProcessEnv,
): Promise<ConnectionSummary[]> {
  const orgs = config.organizations.filter((o) => !filter.org || o.id === filter.org);
  if (filter.org && !orgs.length) {
    throw new RoutiqError(
      'RQ1008',
      `organization "${filter.org}" is not in ${config.file} (configured: ${config.organizations.map((o) => o.id).join(', ') || 'none'})`,
    );
  }
  const out: ConnectionSummary[] = [];
  for (const org of orgs) {
    for (const conn of org.connections) {
      if (!conn.enabled) continue;
      if (filter.connector && conn.connector !== filter.connector && conn.name !== filter.connector) continue;
      out.push(
        await syncConnection({
          db,
          config,
          org,
          conn,
          streams: filter.stream ? [filter.stream] : undefined,
          fullRefresh: !!filter.fullRefresh,
          logger,
          ...(env ? { env } : {}),
        }),
      );
    }
  }
  return out;
}
