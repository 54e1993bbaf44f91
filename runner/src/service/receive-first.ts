/**
 * Receiving comes before processing (issue #18): a webhook answer must never wait on processing, whatever the
 * backlog (Chatwoot waits 5 s for it and never retries). Receives and processing share one event loop; processing
 * batches give it back at their turns (`turn`), and while receives are being handled or the loop lags they hold
 * back — briefly, so processing still progresses — and the delivery queue runs one batch at a time (`concurrency`).
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface ReceiveFirstOptions {
  /** Loop delay (ms, the worst of a sample window) from which processing backs off. */
  lagMs?: number;
  /** Sample window of the loop delay (ms). */
  sampleMs?: number;
  /** Longest back-off of one processing turn (ms): processing never stops altogether. */
  backoffMs?: number;
  /** Receives also come first while this holds (embedded: deliveries waiting for the inbox's commit). */
  also?: () => boolean;
}

export class ReceiveFirst {
  private receiving = 0;
  private lagging = false;
  private lastLagMs = 0;
  private readonly lagMs: number;
  private readonly sampleMs: number;
  private readonly backoffMs: number;
  private readonly delay: IntervalHistogram;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  private readonly also: () => boolean;

  constructor(o: ReceiveFirstOptions = {}) {
    this.also = o.also ?? (() => false);
    this.lagMs = o.lagMs ?? 25;
    this.sampleMs = o.sampleMs ?? 50;
    this.backoffMs = o.backoffMs ?? 50;
    this.delay = monitorEventLoopDelay({ resolution: 10 });
  }

  start(): void {
    if (this.timer) return;
    this.delay.enable();
    this.timer = setInterval(() => {
      this.lastLagMs = this.delay.max / 1e6;
      this.lagging = this.lastLagMs > this.lagMs;
      this.delay.reset();
      this.wake();
    }, this.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.delay.disable();
    this.lagging = false;
    this.wake(true);
  }

  /** A receive starts being handled (until its delivery is handed to the inbox writer or refused). */
  begin(): void {
    this.receiving++;
  }

  end(): void {
    this.receiving--;
    this.wake();
  }

  /** Receives come first now: being handled, or the loop lagging. */
  get pressed(): boolean {
    return this.receiving > 0 || this.lagging || this.also();
  }

  /** For metrics and logs: receives being handled, and the worst loop delay of the last window (ms). */
  get state(): { receiving: number; lagMs: number } {
    return { receiving: this.receiving, lagMs: Math.round(this.lastLagMs) };
  }

  /** Delivery batches processed at once: the configured number, one while receives come first. */
  concurrency(configured: number): number {
    return this.pressed ? 1 : Math.max(1, configured);
  }

  /**
   * A processing turn: gives the loop back (I/O, i.e. new requests, is polled), then while receives come first
   * waits until they are handled or the loop caught up, at most `backoffMs`.
   */
  async turn(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    if (!this.pressed || !this.timer) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(done, this.backoffMs);
      this.waiters.push(done);
    });
  }

  private wake(all = false): void {
    if (!this.waiters.length || (!all && this.pressed)) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
