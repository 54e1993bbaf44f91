import {
  type Database,
  DEFAULT_SETTINGS,
  type Logger,
  migrate,
  openDatabase,
  type RoutiqConfig,
  Service,
  type ServiceSettings,
} from '@routiq/runner';
import { createTestDatabase } from '../helpers/db.ts';
import { silentLogger } from '../helpers/engine.ts';

/**
 * `routiq serve` in-process for the serve-*.test.ts files: a fresh test database of either kind (the embedded one
 * with the extra connections pg-boss needs, as the CLI opens it), the Service listening on 127.0.0.1 at a free
 * port, and real HTTP to it.
 */
export interface RunningService {
  service: Service;
  url: string;
  db: Database;
  /** Drain and close the service (if still open), then close and drop the database. */
  close(): Promise<void>;
}

/**
 * A schedule per connection that cannot fire while a test runs (a daily minute twelve hours away), so a
 * scheduled sync never writes into rows a test compares; POST /api/syncs still runs them on demand.
 */
export function quietSchedules(config: RoutiqConfig): Record<string, string> {
  const later = new Date(Date.now() + 12 * 3600_000);
  const cron = `${later.getUTCMinutes()} ${later.getUTCHours()} * * *`;
  const out: Record<string, string> = {};
  for (const o of config.organizations) for (const c of o.connections) out[`${o.id}/${c.name}`] = cron;
  return out;
}

export async function startService(
  kind: 'embedded' | 'postgres',
  config: RoutiqConfig,
  env: NodeJS.ProcessEnv,
  settings: Partial<ServiceSettings> = {},
  logger: Logger = silentLogger,
): Promise<RunningService> {
  const target = await createTestDatabase(kind, { migrated: true });
  const db = await openDatabase({ url: target.url, embeddedDir: target.embeddedDir, extraConnections: 2 });
  const drop = async () => {
    await db.close();
    await target.drop();
  };
  try {
    await migrate(db);
    const service = new Service({
      db,
      config,
      env,
      logger,
      settings: {
        ...DEFAULT_SETTINGS,
        ...config.service,
        host: '127.0.0.1',
        port: 0,
        schedules: quietSchedules(config),
        token: undefined,
        ...settings,
      },
    });
    const { url } = await service.start();
    return {
      service,
      url,
      db,
      async close() {
        await service.close();
        await drop();
      },
    };
  } catch (err) {
    await drop();
    throw err;
  }
}

/** POST a raw body; the answer's status and JSON body. */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** Poll `check` until it returns a value other than undefined, or fail after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
