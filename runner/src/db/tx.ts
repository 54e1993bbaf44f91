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
 * A READ ONLY transaction: PostgreSQL itself refuses every write (including `WITH … DELETE` and
 * `set_config` of a non-local setting is harmless there), so hooks cannot change data whatever SQL they send.
 */
export async function readOnlyTransaction<T>(db: Database, fn: (q: Querier) => Promise<T>): Promise<T> {
  return transaction(db, async (q) => {
    await q('set transaction read only');
    return fn(q);
  });
}

/** Database errors carry the SQL, and with it patient data: keep only the driver's own message. */
export function safeMessage(err: unknown): string {
  const m = (err as Error)?.message ?? String(err);
  if (/^\s*(insert|update|select|with|delete)\b/i.test(m)) {
    const i = m.lastIndexOf(' - ');
    return `database error: ${i >= 0 ? m.slice(i + 3) : 'statement failed'}`;
  }
  return m;
}
