/**
 * Stored webhook deliveries waiting to be processed, queued per (organization, connection). A drainer takes all
 * of a pair's queued ids (up to `batchSize`) and processes them as one batch; while it writes, the next batch
 * accumulates, so the batch size follows the load by itself. Drainers of all pairs share `concurrency` slots,
 * taken in turn (a pair that was just drained goes to the back), so one busy organization cannot starve others.
 * The ids are in memory only: the inbox holds every delivery, and the sweeper finds what a crash or the cap left.
 */
export interface QueuedDelivery {
  id: string;
  /** Epoch ms of its receipt on this instance (the latency metric); undefined for the sweeper's and retries. */
  receivedAt: number | undefined;
}

export interface DeliveryQueueOptions {
  concurrency: () => number;
  batchSize: number;
  /** Ids queued across pairs at most; past it enqueue refuses (the sweeper processes them later). */
  maxQueued: number;
  process: (pair: string, batch: QueuedDelivery[]) => Promise<void>;
  onError: (pair: string, err: unknown) => void;
}

export class DeliveryQueue {
  private readonly queued = new Map<string, Map<string, number | undefined>>();
  /** Pairs with queued ids and no drainer, in turn order. */
  private readonly turns = new Set<string>();
  private readonly draining = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private size = 0;

  constructor(private readonly o: DeliveryQueueOptions) {}

  /** Queue a stored delivery; false when the queue is full (it stays in the inbox for the sweeper). */
  enqueue(pair: string, id: string, receivedAt?: number): boolean {
    let ids = this.queued.get(pair);
    if (ids?.has(id)) return true;
    if (this.size >= this.o.maxQueued) return false;
    if (!ids) {
      ids = new Map();
      this.queued.set(pair, ids);
    }
    ids.set(id, receivedAt);
    this.size++;
    if (!this.draining.has(pair)) this.turns.add(pair);
    this.pump();
    return true;
  }

  /** Ids waiting (not yet taken by a drainer). */
  get waiting(): number {
    return this.size;
  }

  /** Resolves when nothing is queued or being processed. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    while (this.running.size < Math.max(1, this.o.concurrency()) && this.turns.size) {
      const pair = this.turns.values().next().value as string;
      this.turns.delete(pair);
      const ids = this.queued.get(pair);
      if (!ids?.size) continue;
      const batch: QueuedDelivery[] = [];
      for (const [id, receivedAt] of ids) {
        if (batch.length >= this.o.batchSize) break;
        batch.push({ id, receivedAt });
      }
      for (const d of batch) ids.delete(d.id);
      this.size -= batch.length;
      this.draining.add(pair);
      const p: Promise<void> = this.o
        .process(pair, batch)
        .catch((err) => this.o.onError(pair, err))
        .finally(() => {
          this.running.delete(p);
          this.draining.delete(pair);
          // Its next batch waits behind the pairs already waiting for a turn.
          if (this.queued.get(pair)?.size) this.turns.add(pair);
          else this.queued.delete(pair);
          this.pump();
        });
      this.running.add(p);
    }
  }
}
