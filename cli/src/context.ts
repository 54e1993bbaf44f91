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

export function loadContext(file: string | undefined): CommandContext {
  const config = loadConfig({ file });
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
