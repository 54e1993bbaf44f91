import { Migrator } from '@mikro-orm/migrations';
import { type EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { MIGRATIONS_TABLE, migrations, ROLE_PREFIX_OPTION, roleNames } from '@routiq/migrations';
import { RoutiqError } from '../errors/registry.ts';
import { type EmbeddedDb, startEmbedded } from './embedded.ts';

export interface DatabaseOptions {
  /** A PostgreSQL URL; when absent the embedded database at embeddedDir is used. */
  url?: string | undefined;
  embeddedDir?: string;
  poolMax?: number;
  schema?: string;
  /** Embedded only: connections besides the ORM's one (pg-boss in `routiq serve`). */
  extraConnections?: number;
  /** Driver warnings (e.g. a connection dropped by a server restart). Default: a JSON line on stderr. */
  onWarn?: (message: string) => void;
  /** Names of the roles migrations create: `<prefix>_owner`, `_app`, `_admin` (docs/database.md). Default `routiq`. */
  rolePrefix?: string;
  /** TLS to a server (docs/database.md#tls); default: verify-full unless the host is local. */
  tls?: DatabaseTls;
}

export interface DatabaseTls {
  mode?: 'disable' | 'require' | 'verify-ca' | 'verify-full' | undefined;
  /** PEM of the certificate authority (verify-ca / verify-full); default: the system's. */
  ca?: string | undefined;
}

export interface Database {
  kind: 'postgres' | 'embedded';
  orm: MikroORM;
  /** A fresh EntityManager fork per unit of work. */
  em(): EntityManager;
  /** Run SQL with `?` placeholders (inlined by MikroORM: one simple-protocol message, safe on PGlite). */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  close(): Promise<void>;
  /** Where the data lives, for messages (never includes a password). */
  describe: string;
  /** The connection URL (with its credentials: never log it), for other clients such as pg-boss. */
  connectionUrl: string;
  /** The schema the tables live in. */
  schema: string;
  /** The driver's TLS setting (db/database.ts tlsOptions), for other clients such as pg-boss. */
  ssl?: PgSsl | undefined;
  /** Set by forOrganization / crossOrganization (db/tx.ts): whose rows this handle's transactions see. */
  scope?: import('./tx.ts').DbScope;
  /** The unscoped database a scoped handle was made from. */
  base?: Database;
  /**
   * A handle on a pool of its own (one connection, opened on first use, closed with this database): its statements
   * never queue behind the shared pool's (the webhook inbox's commits behind processing). Embedded: this database
   * itself (it has a single connection).
   */
  reserved?: () => Promise<Database>;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  let embedded: EmbeddedDb | undefined;
  let url = opts.url;
  if (!url) {
    embedded = await startEmbedded(opts.embeddedDir ?? '.routiq/db', 1 + (opts.extraConnections ?? 0));
    url = embedded.url;
  }
  const schema = opts.schema ?? 'public';
  const rolePrefix = opts.rolePrefix ?? 'routiq';
  roleNames(rolePrefix); // validates
  const ssl = embedded ? undefined : tlsOptions(url, opts.tls);
  const connection = {
    ...(schema !== 'public' ? { options: `-c search_path=${schema}` } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
  };
  const init = (poolMax: number) =>
    MikroORM.init({
      clientUrl: url,
      // No ORM entities: every table is read and written with SQL (set-based upserts, see engine/writer.ts).
      entities: [],
      ...(schema !== 'public' ? { schema } : {}),
      discovery: { warnWhenNoEntities: false },
      pool: { min: 0, max: poolMax },
      driverOptions: Object.keys(connection).length ? { connection } : {},
      // Read by migration 0007 (the names of the roles it creates).
      ...({ [ROLE_PREFIX_OPTION]: rolePrefix } as object),
      extensions: [Migrator],
      migrations: {
        migrationsList: migrations,
        tableName: MIGRATIONS_TABLE,
        transactional: true,
        allOrNothing: true,
        snapshot: false,
        silent: true,
      },
      allowGlobalContext: false,
      debug: false,
      ensureDatabase: false,
    });
  let orm: MikroORM;
  try {
    // Embedded: exactly one connection (see embedded.ts).
    orm = await init(embedded ? 1 : (opts.poolMax ?? 10));
    await orm.em.getConnection().execute('select 1');
    routeWarnings(orm, opts.onWarn);
  } catch (err) {
    await embedded?.close();
    throw new RoutiqError(
      'RQ4001',
      `could not connect to ${embedded ? `the embedded database (${embedded.dataDir})` : redact(url)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const describe = embedded ? `embedded PostgreSQL (PGlite) at ${embedded.dataDir}` : redact(url);
  const handle = (o: MikroORM): Database => ({
    kind: embedded ? 'embedded' : 'postgres',
    orm: o,
    describe,
    connectionUrl: url,
    schema,
    ssl,
    em: () => o.em.fork(),
    async query<T>(sql: string, params: readonly unknown[] = []) {
      return (await o.em.getConnection().execute(sql, params as unknown[], 'all')) as T[];
    },
    close: () => o.close(true),
  });
  const db = handle(orm);
  let reserved: Promise<MikroORM> | undefined;
  let reservedDb: Database | undefined;
  db.reserved = async () => {
    if (embedded) return db;
    reserved ??= init(1).then((o) => {
      routeWarnings(o, opts.onWarn);
      return o;
    });
    // A failed open is tried again by the next caller.
    const o = await reserved.catch((err) => {
      reserved = undefined;
      throw err;
    });
    if (reservedDb?.orm !== o) reservedDb = handle(o);
    return reservedDb;
  };
  db.close = async () => {
    const extra = reserved;
    reserved = undefined;
    await orm.close(true);
    await (await extra?.catch(() => undefined))?.close(true);
    await embedded?.close();
  };
  return db;
}

/** knex prints pool warnings with console.log (stdout, which is for data): route them to stderr. */
function routeWarnings(orm: MikroORM, onWarn: ((m: string) => void) | undefined): void {
  const warn =
    onWarn ??
    ((m: string) => process.stderr.write(`${JSON.stringify({ level: 'warn', service: 'routiq', msg: m })}\n`));
  const client = (
    orm.em.getConnection().getKnex() as unknown as { client: { logger: { _warn?: (m: string) => void } } }
  ).client;
  client.logger._warn = warn;
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]*)@/, '//$1:***@');
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);
const MODES = new Set(['disable', 'require', 'verify-ca', 'verify-full']);

export type PgSsl = false | { rejectUnauthorized: boolean; ca?: string; checkServerIdentity?: () => undefined };

/**
 * The pg driver's `ssl` option (MikroORM drops the URL's query, so `sslmode` is read here). The config's
 * `database.tls` wins, then the URL's `sslmode` (`disable`, `require`, `verify-ca`, `verify-full`), else
 * verify-full for any server not on this machine: patient data never crosses a network in clear by default.
 */
export function tlsOptions(url: string, tls: DatabaseTls | undefined): PgSsl {
  const u = new URL(url);
  const fromUrl = u.searchParams.get('sslmode') ?? undefined;
  const local = LOCAL_HOSTS.has(u.hostname) || (u.searchParams.get('host') ?? '').startsWith('/');
  const mode = tls?.mode ?? (fromUrl && MODES.has(fromUrl) ? fromUrl : local ? 'disable' : 'verify-full');
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  const ca = tls?.ca ? { ca: tls.ca } : {};
  // verify-ca: the chain is checked, the host name is not (as libpq's verify-ca).
  return mode === 'verify-ca'
    ? { rejectUnauthorized: true, ...ca, checkServerIdentity: () => undefined }
    : { rejectUnauthorized: true, ...ca };
}
