import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  assertMigrated,
  createLogger,
  type Database,
  type Logger,
  loadConfig,
  openDatabase,
  type RoutiqConfig,
} from '@routiq/runner';

export interface CommandContext {
  config: RoutiqConfig;
  logger: Logger;
}

/** Where `npm start` (routiq demo) leaves its config; its database is beside it. */
export const DEMO_CONFIG = '.routiq/demo/routiq.yaml';

/**
 * The config a command runs with. Without --config, ROUTIQ_ENV, DATABASE_URL or ROUTIQ_DB_DIR, and before the
 * default embedded database exists, the demo's config is used when `npm start` left one: `routiq status`, `sql`,
 * `dlq` … after the demo look at the demo's data (said on stderr, with how to choose otherwise).
 */
export function loadContext(file: string | undefined): CommandContext {
  let config = loadConfig({ file });
  const env = process.env;
  if (
    file === undefined &&
    !env.ROUTIQ_ENV &&
    !env.DATABASE_URL &&
    !env.ROUTIQ_DB_DIR &&
    !config.database.url &&
    !existsSync(config.database.embeddedDir) &&
    existsSync(DEMO_CONFIG)
  ) {
    config = loadConfig({ file: DEMO_CONFIG });
    process.stderr.write(
      `using the demo's database (${config.database.embeddedDir}, from ${DEMO_CONFIG}): ${path.resolve('.routiq/db')} does not exist yet; pass --config, or set DATABASE_URL / ROUTIQ_DB_DIR, to choose another\n`,
    );
  }
  return { config, logger: createLogger(config.log.level) };
}

export async function withDatabase<T>(
  config: RoutiqConfig,
  fn: (db: Database) => Promise<T>,
  opts: { requireMigrated?: boolean } = {},
): Promise<T> {
  const db = await openDatabase({
    url: config.database.url,
    embeddedDir: config.database.embeddedDir,
    poolMax: config.database.poolMax,
    schema: config.database.schema,
    rolePrefix: config.database.rolePrefix,
    tls: config.database.tls,
  });
  try {
    if (opts.requireMigrated !== false) await assertMigrated(db);
    return await fn(db);
  } finally {
    await db.close();
  }
}
