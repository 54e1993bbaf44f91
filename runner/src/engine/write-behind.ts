/**
 * Write-behind for one stream of a sync pass: mapped pages (of one partition or of several child partitions) are
 * buffered and written in one transaction of hundreds to thousands of rows together with the checkpoints of exactly
 * those pages, while the next pages are fetched. Batches commit strictly in the order their pages were fetched, at
 * most one at a time: a checkpoint is never committed before the rows of the pages it covers, nor before any
 * earlier page. After a failed batch nothing later is written (its checkpoints would skip the lost pages); the
 * error surfaces at the next push or at drain, and the next run resumes from the last committed checkpoint.
 */
import type { Querier } from '../db/tx.ts';
import { type Checkpoint, saveCursors } from './cursor.ts';
import type { DeadRecord, ParentInfo } from './map.ts';
import type { ChildMarking, Session } from './session.ts';
import { isDataError, type PageWrite, type PageWritten, writePage } from './write-page.ts';

export interface BufferedPage {
  /** A child partition: its letters keep it so a replay can rebuild $parent. */
  partition?: string | undefined;
  parents: ParentInfo[];
  dead: DeadRecord[];
  /** The page's checkpoint, saved in the batch's transaction after every row of the batch (the batch's in one statement). */
  checkpoint?: Checkpoint | undefined;
  /** Run in the batch's transaction after every row of the batch, in page order (before the checkpoints). */
  finish?: ((q: Querier) => Promise<void>) | undefined;
}

export interface WriteBehindOptions {
  stream: string;
  runId: string;
  marking: ChildMarking;
  storeRaw: boolean;
  /** A batch is written once it holds this many rows. */
  flushRows: number;
  /** ... or this long after its first page arrived (slow or rate-limited feeds still commit progress). */
  maxDelayMs: number;
  /**
   * Each page is committed before push returns: a stream with hooks that read the database per page
   * (before_request, after_fetch, after_map) sees what its earlier pages wrote.
   */
  writeThrough?: boolean;
  /** Counts of each committed batch. */
  onWritten: (w: PageWritten) => void;
}

export class WriteBehind {
  private buffer: BufferedPage[] = [];
  private rows = 0;
  private tail: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private error: unknown;
  private failed = false;
  /** Batches queued for writing and not yet written. */
  private inFlight = 0;

  constructor(
    private readonly session: Session,
    private readonly o: WriteBehindOptions,
  ) {}

  /**
   * Queue a page. Resolves at once unless the batch before the one this page completes is still being written
   * (back-pressure: one batch written while the next one fills). Throws the error of a failed batch.
   */
  async push(p: BufferedPage): Promise<void> {
    this.throwIfFailed();
    this.buffer.push(p);
    for (const x of p.parents) this.rows += x.rows.length;
    this.rows += p.dead.length;
    if (this.o.writeThrough) {
      await this.drain();
    } else if (this.rows >= this.o.flushRows) {
      const before = this.tail;
      this.enqueue();
      await before;
      this.throwIfFailed();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.enqueue(), this.o.maxDelayMs);
      this.timer.unref();
    }
    // Batches the timer queued while the writer lags (each under flushRows) are waited for too: at most one batch
    // is written while the next fills, whatever started it, so memory stays bounded when fetching outpaces writing.
    if (this.inFlight > 1) {
      await this.tail;
      this.throwIfFailed();
    }
  }

  /** Write everything queued so far and wait for it; throws the error of a failed batch. */
  async drain(): Promise<void> {
    this.enqueue();
    await this.tail;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.error;
  }

  private enqueue(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buffer.length) return;
    const batch = this.buffer;
    this.buffer = [];
    this.rows = 0;
    this.inFlight++;
    this.tail = this.tail.then(async () => {
      await this.write(batch);
      this.inFlight--;
    });
  }

  private async write(batch: BufferedPage[]): Promise<void> {
    if (this.failed) return;
    try {
      this.o.onWritten(await this.writeSplitting(batch));
    } catch (err) {
      this.failed = true;
      this.error = err;
    }
  }

  /**
   * One transaction for the batch; if the database refuses it for a data reason, each half is written on its own
   * (in order, with its own checkpoints), down to the one page that is then written record by record (RQ5004).
   */
  private async writeSplitting(batch: BufferedPage[]): Promise<PageWritten> {
    const single = batch.length === 1;
    try {
      return await writePage(this.session, this.merge(batch), { oneByOne: single });
    } catch (err) {
      if (single || !isDataError(err)) throw err;
    }
    const mid = Math.ceil(batch.length / 2);
    const a = await this.writeSplitting(batch.slice(0, mid));
    const b = await this.writeSplitting(batch.slice(mid));
    return {
      inserted: a.inserted + b.inserted,
      updated: a.updated + b.updated,
      unchanged: a.unchanged + b.unchanged,
      deadLetters: a.deadLetters + b.deadLetters,
      identitiesChanged: a.identitiesChanged + b.identitiesChanged,
    };
  }

  private merge(batch: BufferedPage[]): PageWrite {
    const checkpoints = batch.flatMap((p) => (p.checkpoint ? [p.checkpoint] : []));
    const finishes = batch.flatMap((p) => (p.finish ? [p.finish] : []));
    const partitionOf = new Map<ParentInfo, string>();
    for (const p of batch) if (p.partition) for (const x of p.parents) partitionOf.set(x, p.partition);
    return {
      stream: this.o.stream,
      runId: this.o.runId,
      parents: batch.flatMap((p) => p.parents),
      partitionOf,
      // A letter names its partition; the batch itself has none.
      dead: batch.flatMap((p) =>
        p.partition
          ? p.dead.map((d) => ({ ...d, details: { ...(d.details as object), partition: p.partition } }))
          : p.dead,
      ),
      marking: this.o.marking,
      storeRaw: this.o.storeRaw,
      finish:
        checkpoints.length || finishes.length
          ? async (q) => {
              for (const f of finishes) await f(q);
              await saveCursors(q, checkpoints);
            }
          : undefined,
    };
  }
}
