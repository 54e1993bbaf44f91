/**
 * `routiq serve`: the long-lived service (webhooks, schedules over pg-boss, health, metrics, status API).
 * SIGTERM/SIGINT drain and exit 0; SIGHUP or a change of the config file reloads non-secret settings.
 */
import { watch } from 'node:fs';
import {
  DEFAULT_SETTINGS,
  loadConfig,
  migrate,
  openDatabase,
  type RoutiqConfig,
  Service,
  type ServiceSettings,
} from '@routiq/runner';
import { loadContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

export interface ServeArgs {
  config?: string | undefined;
  port?: string | undefined;
  host?: string | undefined;
  migrate: boolean;
  json: boolean;
}

/** Settings from the config file's `service:` block, then the environment, then flags. */
export function serviceSettings(
  config: RoutiqConfig,
  a: Pick<ServeArgs, 'port' | 'host'>,
  env = process.env,
): ServiceSettings {
  const s: ServiceSettings = { ...DEFAULT_SETTINGS, ...config.service };
  const schedules: Record<string, string> = {};
  for (const o of config.organizations)
    for (const c of o.connections) if (c.schedule) schedules[`${o.id}/${c.name}`] = c.schedule;
  const port = a.port ?? env.PORT;
  return {
    ...s,
    schedules,
    ...(port !== undefined ? { port: Number(port) } : {}),
    ...(a.host !== undefined ? { host: a.host } : {}),
    token: env.ROUTIQ_SERVICE_TOKEN || undefined,
  };
}

export async function serveCommand(a: ServeArgs): Promise<number> {
  const { config, logger } = loadContext(a.config);
  const settings = serviceSettings(config, a);
  if (!Number.isInteger(settings.port) || settings.port < 0 || settings.port > 65535) {
    err(`RQ6001 --port must be a port number, got ${String(a.port ?? process.env.PORT)}`);
    return ExitCode.Usage;
  }
  // pg-boss needs connections of its own: on the embedded database they share its one backend (docs/service.md).
  const db = await openDatabase({
    url: config.database.url,
    embeddedDir: config.database.embeddedDir,
    poolMax: config.database.poolMax,
    schema: config.database.schema,
    rolePrefix: config.database.rolePrefix,
    tls: config.database.tls,
    extraConnections: 2,
  });
  if (a.migrate) await migrate(db);
  const service = new Service({
    db,
    config,
    settings,
    logger,
    reload: async () => {
      const next = loadConfig({ file: config.file });
      return { config: next, settings: serviceSettings(next, a) };
    },
  });
  let stopping: Promise<void> | undefined;
  let exitBy = Number.POSITIVE_INFINITY;
  const stop = (signal: string) => {
    if (stopping) return stopping;
    logger.info({ signal }, 'shutting down');
    // The hard bound (service.shutdown_timeout_seconds): whatever still hangs then, the process exits 0; its runs
    // resume from their checkpoints and its jobs are retried by another instance (docs/service.md).
    const bound = settings.shutdownTimeoutSeconds * 1000;
    exitBy = Date.now() + bound;
    setTimeout(() => {
      logger.warn({ shutdown_timeout_seconds: bound / 1000 }, 'shutdown bound reached: exiting now');
      process.exit(ExitCode.Ok);
    }, bound).unref();
    stopping = service.close().finally(() => db.close());
    return stopping;
  };
  const done = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
  });
  process.on('SIGHUP', () => void service.reload());
  let debounce: NodeJS.Timeout | undefined;
  const watcher = watch(config.file, () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void service.reload(), 500);
  });
  try {
    const { url } = await service.start();
    if (a.json) out(JSON.stringify({ url, pid: process.pid }));
    else err(`routiq serve: listening on ${url} (pid ${process.pid}); SIGTERM to stop, SIGHUP to reload`);
  } catch (e) {
    watcher.close();
    await service.close().catch(() => undefined);
    await db.close();
    throw e;
  }
  await done;
  watcher.close();
  // Everything is closed; a driver's idle timer must not keep a stopped service alive (orchestrators wait for exit).
  setTimeout(
    () => process.exit(process.exitCode ?? ExitCode.Ok),
    Math.max(0, Math.min(2000, exitBy - Date.now())),
  ).unref();
  return ExitCode.Ok;
}
