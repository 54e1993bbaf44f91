/**
 * Fixed-window counters aligned to the epoch, the way rack-attack throttles
 * (the cache key includes `floor(now / period)`), so every client sees the same window edges.
 */
export interface LimitResult {
  allowed: boolean;
  count: number;
  /** When the current window ends (ms since epoch). */
  resetAtMs: number;
}

export class FixedWindowLimiter {
  private windows = new Map<string, { start: number; count: number }>();
  private hits = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    readonly enabled = true,
  ) {}

  hit(key: string, now = Date.now()): LimitResult {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    const resetAtMs = start + this.windowMs;
    if (!this.enabled) return { allowed: true, count: 0, resetAtMs };
    let w = this.windows.get(key);
    if (!w || w.start !== start) {
      w = { start, count: 0 };
      this.windows.set(key, w);
    }
    w.count += 1;
    if (++this.hits % 10_000 === 0) this.sweep(start);
    return { allowed: w.count <= this.limit, count: w.count, resetAtMs };
  }

  reset(): void {
    this.windows.clear();
  }

  private sweep(currentStart: number): void {
    for (const [k, w] of this.windows) if (w.start < currentStart) this.windows.delete(k);
  }
}
