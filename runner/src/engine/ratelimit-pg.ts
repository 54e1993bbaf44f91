import type { Database } from '../db/database.ts';
import type { Limiter } from './ratelimit.ts';

/**
 * Chunks per budget. Grants are remembered per chunk of ceil(N / CHUNKS) consecutive grants (the latest time of
 * each), so the row has a fixed size whatever the budget. Budgets of up to CHUNKS requests are an exact sliding log;
 * larger ones are conservative by at most one chunk: never more than N in a window, at least N − chunk + 1.
 */
const CHUNKS = 32;
/** The platform counts by arrival, we count by grant: every window is this much longer. */
export const MARGIN_MS = 25;

/** A grant the database decided: when the request may be sent (epoch ms, database clock). */
export interface Grant {
  at: number;
  /** How long the caller had to wait when it was granted. */
  waitMs: number;
}

interface Waiter {
  resolve: (g: Grant) => void;
  reject: (err: unknown) => void;
}

/**
 * The sliding-window guarantee of SlidingWindowLimiter (at most N requests in any interval of the window), shared
 * through PostgreSQL by every process on the database at a constant cost: one UPDATE of one row per grant
 * statement, and one statement grants every caller of this process waiting at the time (up to N), all at one time.
 *
 * Grants are numbered per budget key; grant j gets the time max(now, previous grant, pause, latest grant of
 * chunk(j − N) + window), and its caller sleeps until then. The latest grant of chunk(j − N) is no earlier than grant
 * j − N, so any N + 1 consecutive grants span at least a window. Times are the database's (clock_timestamp), the row
 * lock orders processes, and a grant is a reservation: waiting for it costs no further statement.
 * (A GCRA with burst tolerance W − W/N is not enough: after a burst of N at t it grants again at t + W/N, so one
 * window can hold 2N − 1.)
 */
export class PgSlidingWindowLimiter implements Limiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly chunk: number;
  private readonly ring: number;
  private readonly queue: Waiter[] = [];
  private busy = false;
  private pausedUntil = 0;

  constructor(
    private readonly db: Database,
    readonly key: string,
    limit: number,
    windowMs: number,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    // Integers, inlined in the statements below (a budget allows at least one request).
    this.limit = Math.max(1, Math.floor(limit));
    this.windowMs = Math.max(1, Math.ceil(windowMs));
    this.chunk = Math.ceil(this.limit / CHUNKS);
    // Chunks chunk(j − N) to chunk(j) must all be in the ring at once.
    this.ring = Math.floor(this.limit / this.chunk) + 2;
  }

  async acquire(): Promise<void> {
    await this.take();
  }

  /** Wait for a grant; resolves at its time. Calls are served in order. */
  take(): Promise<Grant> {
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.pump();
    });
  }

  /** A platform told us to wait (429 + reset header): no grant on this key, in any process, before `until`. */
  pauseUntil(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
    void this.db
      .query(
        `${this.insertSql('to_timestamp(? / 1000.0)')}
         on conflict (key) do update set paused_until = greatest(b.paused_until, excluded.paused_until)`,
        [this.key, until],
      )
      .catch(() => {});
  }

  /** One statement at a time: callers arriving meanwhile are granted together by the next one. */
  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const batch = this.queue.splice(0, this.limit);
    this.grant(batch.length).then(
      (g) => {
        this.busy = false;
        this.pump();
        void this.handOut(batch, g);
      },
      (err: unknown) => {
        this.busy = false;
        for (const w of batch) w.reject(err);
        this.pump();
      },
    );
  }

  private async handOut(batch: Waiter[], g: Grant): Promise<void> {
    if (g.waitMs > 0) await this.sleep(Math.ceil(g.waitMs));
    if (this.pausedUntil > g.at) {
      // A pause learned while waiting: the grants are given up (unused grants only make the budget stricter).
      this.queue.unshift(...batch);
      this.pump();
      return;
    }
    for (const w of batch) w.resolve(g);
  }

  private async grant(k: number): Promise<Grant> {
    for (;;) {
      const rows = await this.db.query<{ at_ms: number; wait_ms: number }>(this.grantSql(k), [
        this.pausedUntil,
        this.key,
      ]);
      const r = rows[0];
      if (r) return { at: Number(r.at_ms), waitMs: Number(r.wait_ms) };
      await this.db.query(this.resetSql(), [this.key]);
    }
  }

  /**
   * Grants k at once (parameters: this process's own pause in epoch ms, the key); no row when the key is new here or
   * was last used with another budget. Every right-hand side reads the row as it was; the time is computed once
   * (the OFFSET 0 subquery) and written to the chunks of grants j … j + k − 1.
   */
  private grantSql(k: number): string {
    const { limit: n, chunk: m, ring: r } = this;
    const last = `(granted + ${k - 1})`;
    const at = `greatest(
        clock_timestamp(),
        case when granted > 0 then marks[((granted - 1) / ${m} % ${r})::int + 1] end,
        paused_until,
        case when ${last} >= ${n} then marks[((${last} - ${n}) / ${m} % ${r})::int + 1] + interval '${this.windowMs + MARGIN_MS} milliseconds' end,
        to_timestamp(? / 1000.0))`;
    const mine = `marks[((granted - 1) / ${m} % ${r})::int + 1]`;
    return `update rate_limit_budgets set granted = granted + ${k},
        marks = (select array(
            select case when (s - granted / ${m} % ${r} + ${r}) % ${r} <= ${last} / ${m} - granted / ${m} then x.at else marks[s + 1] end
            from generate_series(0, ${r - 1}) s order by s)
          from (select ${at} as at offset 0) x)
      where key = ? and lim = ${n} and window_ms = ${this.windowMs} and chunk = ${m} and cardinality(marks) = ${r}
      returning (extract(epoch from ${mine}) * 1000)::float8 as at_ms,
        (extract(epoch from ${mine} - clock_timestamp()) * 1000)::float8 as wait_ms`;
  }

  /**
   * Creates the key's row, or restarts one last used with another budget (a spec changed while another process still
   * runs the old one) conservatively: every earlier grant is taken to be at the latest, so the next N wait for a
   * window after it.
   */
  private resetSql(): string {
    const { limit: n, chunk: m, ring: r } = this;
    return `${this.insertSql('null')}
      on conflict (key) do update set lim = ${n}, window_ms = ${this.windowMs}, chunk = ${m}, granted = ${n},
        marks = array_fill(case when b.granted > 0 then b.marks[((b.granted - 1) / b.chunk % cardinality(b.marks))::int + 1] end, array[${r}])
      where not (b.lim = ${n} and b.window_ms = ${this.windowMs} and b.chunk = ${m} and cardinality(b.marks) = ${r})`;
  }

  private insertSql(pausedUntil: string): string {
    return `insert into rate_limit_budgets as b (key, lim, window_ms, chunk, granted, marks, paused_until)
      values (?, ${this.limit}, ${this.windowMs}, ${this.chunk}, 0, array_fill(null::timestamptz, array[${this.ring}]), ${pausedUntil})`;
  }
}

const shared = new WeakMap<Database, Map<string, PgSlidingWindowLimiter>>();

/** The process-wide limiter for a budget key on a database (callers of every run share its grant statements). */
export function pgLimiterFor(db: Database, key: string, limit: number, windowMs: number): PgSlidingWindowLimiter {
  let byKey = shared.get(db);
  if (!byKey) {
    byKey = new Map();
    shared.set(db, byKey);
  }
  const id = `${key}|${limit}|${windowMs}`;
  let l = byKey.get(id);
  if (!l) {
    l = new PgSlidingWindowLimiter(db, key, limit, windowMs);
    byKey.set(id, l);
  }
  return l;
}
