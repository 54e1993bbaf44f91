import type { Logger } from 'pino';
import type { RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { databaseFailure } from '../db/failure.ts';
import { safeMessage } from '../db/tx.ts';
import { isRoutiqError, RoutiqError } from '../errors/registry.ts';
import type { ProgressListener } from '../util/progress.ts';
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
  /** Progress of each connection's pass; its task is prefixed with the connection's place (`[2/3] org / conn`). */
  onProgress?: ProgressListener,
): Promise<ConnectionSummary[]> {
  const orgs = config.organizations.filter((o) => !filter.org || o.id === filter.org);
  if (filter.org && !orgs.length) {
    throw new RoutiqError(
      'RQ1008',
      `organization "${filter.org}" is not in ${config.file} (configured: ${config.organizations.map((o) => o.id).join(', ') || 'none'})`,
    );
  }
  const out: ConnectionSummary[] = [];
  const selected = orgs.flatMap((org) =>
    org.connections
      .filter(
        (conn) =>
          conn.enabled && (!filter.connector || conn.connector === filter.connector || conn.name === filter.connector),
      )
      .map((conn) => ({ org, conn })),
  );
  for (const [i, { org, conn }] of selected.entries()) {
    const place = selected.length > 1 ? `[${i + 1}/${selected.length}] ` : '';
    try {
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
          ...(onProgress ? { onProgress: (p) => onProgress({ ...p, task: `${place}${p.task}` }) } : {}),
        }),
      );
    } catch (err) {
      // The database itself (RQ4xxx, or the server going away mid-run): nothing else can run either.
      const lost = databaseFailure(err);
      if (lost) throw lost;
      // One connection that cannot start (paused circuit, missing secret, bad settings) does not stop the others.
      const code = isRoutiqError(err) ? err.code : 'RQ6002';
      logger.error(
        { org: org.id, connection: conn.name, error_code: code, err: { message: safeMessage(err) } },
        'connection not synced',
      );
      out.push(notStarted(org.id, conn.name, conn.connector, code, safeMessage(err)));
    }
  }
  return out;
}

function notStarted(
  organizationId: string,
  connection: string,
  connector: string,
  errorCode: string,
  error: string,
): ConnectionSummary {
  return {
    organizationId,
    connection,
    connector,
    specVersion: '',
    runId: '',
    correlationId: '',
    status: 'failed',
    requests: 0,
    rateLimited: 0,
    durationMs: 0,
    streams: [],
    error,
    errorCode,
  };
}
