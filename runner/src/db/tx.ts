import type { Database } from './database.ts';

/** A query function bound to one connection or transaction. */
export type Querier = <T = Record<string, unknown>>(sql: string, params?: readonly unknown[]) => Promise<T[]>;

/** Run fn in one transaction; it gets a querier bound to that transaction. */
export async function transaction<T>(db: Database, fn: (q: Querier) => Promise<T>): Promise<T> {
  return db.em().transactional(async (em) => {
    const conn = em.getConnection();
    const ctx = em.getTransactionContext();
    const q: Querier = async <R>(sql: string, params: readonly unknown[] = []) =>
      (await conn.execute(sql, params as unknown[], 'all', ctx)) as R[];
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
      throw new Error('hooks may not control transactions (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/SET)');
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

const TX_CONTROL = /^\s*(begin|start|commit|end|rollback|abort|savepoint|release|prepare|set|reset|discard|lock)\b/i;

/** Database errors carry the SQL, and with it patient data: keep only the driver's own message. */
export function safeMessage(err: unknown): string {
  const m = (err as Error)?.message ?? String(err);
  if (/^\s*(insert|update|select|with|delete)\b/i.test(m)) {
    const i = m.lastIndexOf(' - ');
    return `database error: ${i >= 0 ? m.slice(i + 3) : 'statement failed'}`;
  }
  return m;
}
