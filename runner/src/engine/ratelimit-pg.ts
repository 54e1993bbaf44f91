import type { Database } from '../db/database.ts';
import type { Limiter } from './ratelimit.ts';

/**
 * The same sliding-window guarantee as SlidingWindowLimiter, but shared through PostgreSQL by every process on
 * the database: each request takes a slot row under a transaction-scoped advisory lock on the budget key, using
 * the database clock, so N instances together never exceed the budget.
 */
export class PgSlidingWindowLimiter implements Limiter {
  constructor(
    private readonly db: Database,
    readonly key: string,
    readonly limit: number,
    readonly windowMs: number,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async acquire(): Promise<void> {
    for (;;) {
      const wait = await this.db.em().transactional(async (em) => {
        const conn = em.getConnection();
        const ctx = em.getTransactionContext();
        const q = async <T>(sql: string, params: unknown[]) => (await conn.execute(sql, params, 'all', ctx)) as T[];
        await q('select pg_advisory_xact_lock(hashtext(?))', [`routiq:rl:${this.key}`]);
        const pause = await q<{ ms: number }>(
          `select greatest(0, extract(epoch from (until - clock_timestamp())) * 1000)::float8 as ms from rate_limit_pauses where key = ?`,
          [this.key],
        );
        const paused = Number(pause[0]?.ms ?? 0);
        if (paused > 0) return paused;
        const windowSql = `(? || ' milliseconds')::interval`;
        await q(`delete from rate_limit_slots where key = ? and taken_at <= clock_timestamp() - ${windowSql}`, [
          this.key,
          String(this.windowMs + 25),
        ]);
        const rows = await q<{ n: number; oldest_ms: number | null }>(
          `select count(*)::int as n, (extract(epoch from (min(taken_at) + ${windowSql} - clock_timestamp())) * 1000)::float8 as oldest_ms
           from rate_limit_slots where key = ?`,
          [String(this.windowMs + 25), this.key],
        );
        const n = Number(rows[0]?.n ?? 0);
        if (n < this.limit) {
          await q('insert into rate_limit_slots (key) values (?)', [this.key]);
          return 0;
        }
        return Math.max(1, Number(rows[0]?.oldest_ms ?? 1) + 1);
      });
      if (wait <= 0) return;
      await this.sleep(wait);
    }
  }

  pauseUntil(until: number): void {
    void this.db
      .query(
        `insert into rate_limit_pauses (key, until) values (?, to_timestamp(? / 1000.0))
         on conflict (key) do update set until = greatest(rate_limit_pauses.until, excluded.until)`,
        [this.key, until],
      )
      .catch(() => {});
  }
}
