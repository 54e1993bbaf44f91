/**
 * Client-side pacing so a declared budget is never exceeded: a sliding log of request start times per
 * budget key guarantees at most N requests in ANY interval of the window length, so it also holds under
 * the platform's fixed windows. One limiter per (budget, credential) is shared by every stream and
 * connection of this process (Cliniko's 200/min is per user, across keys).
 * Across several processes the budget must be shared through Postgres (see docs/resilience.md).
 */
/** Paces requests on one budget. */
export interface Limiter {
  acquire(): Promise<void>;
  pauseUntil(until: number): void;
}

export class SlidingWindowLimiter implements Limiter {
  private readonly starts: number[] = [];
  private pausedUntil = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = defaultSleep,
  ) {}

  /** Wait for a slot. Calls are served in order. */
  acquire(): Promise<void> {
    const next = this.chain.then(() => this.take());
    this.chain = next.catch(() => {});
    return next;
  }

  /** A platform told us to wait (429 + reset header): nobody on this key sends before `until`. */
  pauseUntil(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
  }

  private async take(): Promise<void> {
    for (;;) {
      const now = this.now();
      if (now < this.pausedUntil) {
        await this.sleep(this.pausedUntil - now);
        continue;
      }
      // Small margin: the server counts by arrival, we count by send.
      const horizon = now - this.windowMs - 25;
      while (this.starts.length && (this.starts[0] as number) <= horizon) this.starts.shift();
      if (this.starts.length < this.limit) {
        this.starts.push(now);
        return;
      }
      await this.sleep((this.starts[0] as number) - horizon + 1);
    }
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const shared = new Map<string, SlidingWindowLimiter>();

/** The process-wide limiter for a budget key. */
export function limiterFor(key: string, limit: number, windowMs: number): SlidingWindowLimiter {
  const id = `${key}|${limit}|${windowMs}`;
  let l = shared.get(id);
  if (!l) {
    l = new SlidingWindowLimiter(limit, windowMs);
    shared.set(id, l);
  }
  return l;
}
