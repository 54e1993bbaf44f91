import type { Database } from './database.ts';

/** A query function bound to one connection or transaction. */
export type Querier = <T = Record<string, unknown>>(sql: string, params?: readonly unknown[]) => Promise<T[]>;

const BOUND = Symbol('routiq.bound');
type BoundQuery = <T>(sql: string, params: readonly unknown[]) => Promise<T[]>;
// PostgreSQL's Bind message counts parameters in 16 bits.
const MAX_BIND_PARAMS = 65535;

/**
 * `sql` (with `?` placeholders and no other `?`) with its values sent as bind parameters when `q` is a
 * transaction's querier: the values travel as they are, instead of being quoted into the statement's text. For the
 * large writes (raw payloads, upserts of hundreds of rows) inlining cost more runner CPU than the rest of the write
 * (quoting every character of every value, then measuring and copying the whole text again). Elsewhere (and above
 * the protocol's parameter limit) it is `q(sql, params)`.
 */
export function boundQuery<T = Record<string, unknown>>(
  q: Querier,
  sql: string,
  params: readonly unknown[],
): Promise<T[]> {
  const b = (q as Querier & { [BOUND]?: BoundQuery })[BOUND];
  return b && params.length <= MAX_BIND_PARAMS ? b<T>(sql, params) : q<T>(sql, params);
}

const INLINE_FIRST_BELOW = 16_384;
function textLength(params: readonly unknown[]): number {
  let n = 0;
  for (const p of params) n += typeof p === 'string' ? p.length : 8;
  return n;
}

/** `?` → `$1`, `$2`, … (the statements given to boundQuery hold no other `?`). */
function positional(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/**
 * Whose rows a transaction may touch (docs/database.md#tenant-isolation). Every transaction() runs as the app role
 * (`SET LOCAL ROLE`): with an organization it sees that organization's rows only; without one, no tenant row at all.
 * `crossOrganization` runs as the admin role and sees every organization: only the documented paths use it.
 */
export type DbScope = { organizationId: string } | { crossOrganization: string };

/** The database scoped to one organization: its transactions and its `query` (one transaction each) see only it. */
export function forOrganization(db: Database, organizationId: string): Database {
  if (!organizationId) throw new Error('forOrganization needs an organization id');
  return scoped(db, { organizationId });
}

/**
 * The narrow cross-organization path (scheduler, webhook inbox, admin status and DLQ views across organizations,
 * retention purge): `purpose` names why, for readers and logs. Prefer forOrganization wherever the organization is known.
 */
export function crossOrganization(db: Database, purpose: string): Database {
  return scoped(db, { crossOrganization: purpose });
}

function scoped(db: Database, scope: DbScope): Database {
  const base = db.base ?? db;
  const out: Database = {
    ...base,
    base,
    scope,
    query: <T>(sql: string, params: readonly unknown[] = []) => oneStatement<T>(out, sql, params),
  };
  return out;
}

interface Roles {
  app: string;
  admin: string;
}
const rolesCache = new WeakMap<object, Roles>();

/** The roles migration 0007 created (undefined before it: such a database is refused by assertMigrated anyway). */
async function rolesOf(db: Database): Promise<Roles | undefined> {
  const cached = rolesCache.get(db.orm);
  if (cached) return cached;
  // Outside the transaction: a snapshot taken here would forbid a later `set transaction read only`.
  const base = db.base ?? db;
  const [fn] = await base.query<{ ok: boolean }>("select to_regprocedure('routiq_role(text)') is not null as ok");
  if (!fn?.ok) return undefined;
  const [r] = await base.query<Roles>("select routiq_role('app') as app, routiq_role('admin') as admin");
  if (!r?.app || !r.admin) return undefined;
  rolesCache.set(db.orm, r);
  return r;
}

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string) => {
  if (s.includes('\0')) throw new Error('an organization id may not contain NUL');
  return `'${s.replace(/'/g, "''")}'`;
};

/** The statements that put a transaction in its scope (see DbScope), and how many results they return. */
async function enterScope(db: Database): Promise<{ sql: string; results: number } | undefined> {
  const roles = await rolesOf(db);
  if (!roles) return undefined;
  const scope = db.scope;
  // SET LOCAL statements rather than set_config(): the app role may not execute set_config (migration 0007).
  if (scope && 'crossOrganization' in scope) return { sql: `set local role ${ident(roles.admin)}`, results: 1 };
  if (!scope) return { sql: `set local role ${ident(roles.app)}`, results: 1 };
  return {
    sql: `set local role ${ident(roles.app)}; set local app.organization_id = ${literal(scope.organizationId)}`,
    results: 2,
  };
}

/**
 * One statement in the database's scope as one message: PostgreSQL runs the statements of a simple query message as
 * one implicit transaction (SET LOCAL holds until its end, an error rolls all of it back), so this is
 * `transaction(db, (q) => q(sql))` in one round trip instead of three.
 */
async function oneStatement<T>(db: Database, sql: string, params: readonly unknown[]): Promise<T[]> {
  return executeEntered<T>(db.em().getConnection(), await enterScope(db), sql, params);
}

type Connection = ReturnType<ReturnType<Database['em']>['getConnection']>;

/**
 * `sql` on `conn` (in transaction `ctx` if given), preceded in the same message by the scope's statements when
 * `enter` is given: its own results only.
 */
async function executeEntered<T>(
  conn: Connection,
  enter: { sql: string; results: number } | undefined,
  sql: string,
  params: readonly unknown[],
  ctx?: Parameters<Connection['execute']>[3],
): Promise<T[]> {
  if (!enter) return (await conn.execute(sql, params as unknown[], 'all', ctx)) as T[];
  const text = `${enter.sql}; ${conn.getPlatform().formatQuery(sql, params as unknown[])}`;
  const own = ((await conn.execute(text, [], 'all', ctx)) as unknown[]).slice(enter.results);
  return (own.length === 1 ? own[0] : own) as T[];
}

interface TxClient {
  client: { acquireConnection(): Promise<unknown> };
}
interface PgConnection {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

/** Run fn in one transaction of the database's scope (see DbScope); it gets a querier bound to that transaction. */
export async function transaction<T>(db: Database, fn: (q: Querier) => Promise<T>): Promise<T> {
  const enter = await enterScope(db);
  // The connection's own transaction, not EntityManager.transactional: that one binds the fork through an
  // AsyncLocalStorage, which (on Node 20) puts a hook on every promise the process creates from then on, about a tenth
  // of the service's CPU under webhook load. Queries here carry their transaction explicitly and use no entities.
  const conn = db.em().getConnection();
  return conn.transactional(async (ctx) => {
    // The scope's SET LOCALs travel with the transaction's first statement, in one message: a round trip fewer per
    // transaction (each wakes the server; on a busy 2-core machine about 0.1 ms of this thread's time).
    let first = enter;
    const q: Querier = <R>(sql: string, params: readonly unknown[] = []) => {
      const entering = first;
      first = undefined;
      return executeEntered<R>(conn, entering, sql, params, ctx);
    };
    const bound: BoundQuery = async <R>(sql: string, params: readonly unknown[]) => {
      if (first) {
        // The extended protocol runs one statement a message, so the scope's statements would need a round trip of
        // their own: a small first statement travels with them inlined instead.
        if (textLength(params) < INLINE_FIRST_BELOW) return q<R>(sql, params);
        await q('select 1');
      }
      // The transaction's own connection (knex's transaction client always hands out that one).
      const pgConn = (await (ctx as unknown as TxClient).client.acquireConnection()) as PgConnection;
      return (await pgConn.query(positional(sql), params as unknown[])).rows as R[];
    };
    Object.assign(q, { [BOUND]: bound });
    return fn(q);
  });
}

/**
 * Read-only access for hooks, enforced by PostgreSQL rather than by reading the SQL: inside a transaction each
 * query runs in a savepoint with `transaction_read_only` on and is rolled back to it afterwards (writes, `WITH …
 * DELETE`, `set_config` all fail or vanish, and a failing query cannot abort the caller's transaction); outside
 * one, each query gets its own READ ONLY transaction. Transaction control is refused outright (a COMMIT would
 * end the caller's transaction early).
 */
export function readOnlyQuerier(db: Database, q?: Querier): Querier {
  return async <R>(sql: string, params: readonly unknown[] = []): Promise<R[]> => {
    if (TX_CONTROL.test(sql))
      throw new Error('hooks may not control transactions or sessions (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/SET/DO)');
    // A query without parameters goes over the simple protocol, which runs several statements: one only.
    if (severalStatements(sql)) throw new Error('hooks may send one SQL statement per query');
    if (!q)
      return transaction(db, async (t) => {
        await t('set transaction read only');
        return t<R>(sql, params);
      });
    await q('savepoint routiq_hook');
    try {
      await q('set local transaction_read_only = on');
      return await q<R>(sql, params);
    } finally {
      await q('rollback to savepoint routiq_hook');
      await q('release savepoint routiq_hook');
    }
  };
}

/** True when a `;` ends one statement and another follows (string literals, identifiers and comments aside). */
export function severalStatements(sql: string): boolean {
  const code = sql
    .replace(/\$([A-Za-z_]*)\$[\s\S]*?\$\1\$/g, ' ')
    .replace(/'(?:[^']|'')*'/g, ' ')
    .replace(/"(?:[^"]|"")*"/g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ');
  return /;\s*\S/.test(code);
}

// `do`: a DO block could SET ROLE or raise an exception carrying data the transaction's role cannot read.
const TX_CONTROL = /^\s*(begin|start|commit|end|rollback|abort|savepoint|release|prepare|set|reset|discard|lock|do)\b/i;

/** Database errors carry the SQL, and with it patient data: keep only the driver's own message. */
export function safeMessage(err: unknown): string {
  const m = (err as Error)?.message ?? String(err);
  if (/^\s*(insert|update|select|with|delete)\b/i.test(m)) {
    const i = m.lastIndexOf(' - ');
    return `database error: ${i >= 0 ? m.slice(i + 3) : 'statement failed'}`;
  }
  return m;
}
