/**
 * Receiving comes before processing (issue #18): a webhook answer must never wait on processing, whatever the
 * backlog (Chatwoot waits 5 s for it and never retries). Receives and processing share one event loop; processing
 * batches give it back at their turns (`turn`), and while receives pile up or the loop lags they hold back —
 * briefly, so processing still progresses — and the delivery queue runs one batch at a time (`concurrency`).
 * "Pile up" and "lags" have thresholds well above a steady load's: at 500 deliveries/s a few receives are always
 * in flight and answers take ~10–60 ms; backing off for each of them starved processing (a backlog after every
 * start, rows seen seconds late) while answers were nowhere near their 5 s.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface ReceiveFirstOptions {
  /** Loop delay (ms, the worst of a sample window) from which processing backs off. */
  lagMs?: number;
  /** Receives in flight (headers read, not yet handed to the inbox) from which processing backs off. */
  receivingMax?: number;
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
  private readonly receivingMax: number;
  private readonly sampleMs: number;
  private readonly backoffMs: number;
  private readonly delay: IntervalHistogram;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  private readonly also: () => boolean;

  constructor(o: ReceiveFirstOptions = {}) {
    this.also = o.also ?? (() => false);
    this.lagMs = o.lagMs ?? 100;
    this.receivingMax = Math.max(1, o.receivingMax ?? 32);
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

  /** Receives come first now: piling up, or the loop lagging. */
  get pressed(): boolean {
    return this.receiving >= this.receivingMax || this.lagging || this.also();
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
