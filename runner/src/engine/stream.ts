/**
 * One stream of a sync pass: pages fetched, records filtered by the cursor, mapped, and handed to the stream's
 * write-behind, which writes several pages (and child partitions) with their checkpoints in one transaction while
 * the next pages are fetched; child streams work through their durable list of pending partitions.
 */
import { getHook } from '@routiq/sdk';
import pLimit from 'p-limit';
import { safeMessage, transaction } from '../db/tx.ts';
import { RoutiqError } from '../errors/registry.ts';
import type { StreamSpec } from '../spec/types.ts';
import {
  type CursorValue,
  compareCursor,
  cursorBindings,
  filterPageByCursor,
  markPartitionFailed,
  pendingPartitions,
  readCursor,
  retryFailedPartitions,
  type StateKey,
  shiftCursor,
} from './cursor.ts';
import { ListingTracker } from './deletions.ts';
import { durationMs } from './durations.ts';
import { type Bindings, evaluate, renderString } from './expr.ts';
import { type HttpClient, HttpFailure } from './http.ts';
import { mapRecords } from './map.ts';
import { paginate } from './paginate.ts';
import { forgetRecordHashes } from './record-hash.ts';
import { buildRequest } from './request.ts';
import type { Session } from './session.ts';
import { stageEnd, stageStart } from './stage-clock.ts';
import { WriteBehind } from './write-behind.ts';

export interface StreamSummary {
  stream: string;
  status: 'ok' | 'failed' | 'skipped';
  pages: number;
  records: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deadLetters: number;
  partitions: number;
  /** Rows given deleted_at because a complete listing no longer returned them (spec `deletions`). */
  markedDeleted?: number;
  durationMs: number;
  error?: string;
  errorCode?: string;
}

export function emptySummary(stream: string): StreamSummary {
  return {
    stream,
    status: 'ok',
    pages: 0,
    records: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    deadLetters: 0,
    partitions: 0,
    durationMs: 0,
  };
}

export class StreamRunner {
  /** Identities inserted or changed: the organization is reconciled after the pass when > 0. */
  identitiesChanged = 0;

  constructor(
    private readonly session: Session,
    private readonly client: HttpClient,
    private readonly runId: string,
    private readonly fullRefresh: boolean,
    /** Aborted (service shutdown): stop before the next page or partition; checkpoints make the next run resume. */
    private readonly signal?: AbortSignal | undefined,
    /** Told after each page is counted (progress display); the summary is the stream's, as it grows. */
    private readonly onPage?: ((sum: StreamSummary) => void) | undefined,
  ) {}

  private checkStop(): void {
    if (this.signal?.aborted)
      throw new RoutiqError('RQ6003', 'stopped for shutdown at a checkpoint; the next run resumes from there');
  }

  /** A stream (or all pending partitions of a child stream); failures end up in the summary, never thrown. */
  async run(s: StreamSpec): Promise<StreamSummary> {
    const started = Date.now();
    const sum = emptySummary(s.name);
    const wb = this.writeBehind(s, sum);
    try {
      if (s.parent) await this.runChildStream(s, sum, wb);
      else await this.runPartition(s, '', undefined, undefined, sum, wb);
      await wb.drain();
    } catch (err) {
      // Pages fetched before the failure are still written with their checkpoints (a failed write writes nothing more).
      await wb.drain().catch(() => {});
      sum.status = 'failed';
      sum.error = safeMessage(err);
      sum.errorCode = (err as { code?: string }).code ?? 'RQ6002';
      this.session.log.error(
        { stream: s.name, err: { message: sum.error, code: sum.errorCode } },
        'stream failed; its checkpoint is kept',
      );
      if (err instanceof HttpFailure && err.failureClass === 'permanent') {
        await this.requestDeadLetter(s, err, undefined);
        sum.deadLetters++;
      }
    }
    sum.durationMs = Date.now() - started;
    return sum;
  }

  private async requestDeadLetter(s: StreamSpec, err: HttpFailure, partition: string | undefined): Promise<void> {
    await transaction(this.session.db, (q) =>
      this.session.deadLetter(q, {
        stream: s.name,
        runId: this.runId,
        errorClass: 'permanent',
        errorCode: err.code,
        message: err.message,
        details: { status: err.status, body: err.responseBody, ...(partition !== undefined ? { partition } : {}) },
        recordKey: partition ?? null,
        payload: null,
      }),
    );
  }

  /** Children read the partitions their parent marked: a stream's writes are drained before the next stream. */
  private writeBehind(s: StreamSpec, sum: StreamSummary): WriteBehind {
    const batchSize = this.session.config.runner.batchSize;
    return new WriteBehind(this.session, {
      stream: s.name,
      runId: this.runId,
      marking: { fullRefresh: this.fullRefresh },
      storeRaw: true,
      flushRows: batchSize * 4,
      maxDelayMs: 1000,
      writeThrough: !!(s.hooks?.before_request || s.hooks?.after_fetch || s.hooks?.after_map),
      onWritten: (res) => {
        sum.inserted += res.inserted;
        sum.updated += res.updated;
        sum.unchanged += res.unchanged;
        sum.deadLetters += res.deadLetters;
        this.identitiesChanged += res.identitiesChanged;
      },
    });
  }

  private stateKey(s: StreamSpec, partition: string): StateKey {
    return { organizationId: this.session.org.id, connection: this.session.conn.name, stream: s.name, partition };
  }

  /** A child stream works through its durable list of pending partitions (parents that changed). */
  private async runChildStream(s: StreamSpec, sum: StreamSummary, wb: WriteBehind): Promise<void> {
    const { db, config } = this.session;
    const key = { organizationId: this.session.org.id, connection: this.session.conn.name, stream: s.name };
    await retryFailedPartitions(db.query.bind(db), key);
    const limit = pLimit(config.runner.concurrency);
    let fatal: unknown;
    let after = '';
    for (;;) {
      const rows = await pendingPartitions(db.query.bind(db), key, after, 200);
      if (!rows.length || fatal) break;
      after = (rows[rows.length - 1] as { partition: string }).partition;
      await Promise.all(
        rows.map((r) =>
          limit(async () => {
            if (fatal) return;
            try {
              this.checkStop();
              await this.runPartition(s, r.partition, r.parent, { cursor: r.cursor }, sum, wb);
              sum.partitions++;
            } catch (err) {
              if (err instanceof HttpFailure && err.failureClass === 'permanent') {
                // One parent's children are unreachable (e.g. 404): dead-letter it, keep going with the others.
                // Its pages fetched before are written first: their checkpoints must not overwrite the mark.
                try {
                  await wb.drain();
                  await this.requestDeadLetter(s, err, r.partition);
                  await markPartitionFailed(db.query.bind(db), { ...key, partition: r.partition });
                  sum.deadLetters++;
                } catch (e) {
                  fatal ??= e;
                }
              } else {
                fatal ??= err;
              }
            }
          }),
        ),
      );
    }
    if (fatal) throw fatal;
  }

  private async runPartition(
    s: StreamSpec,
    partition: string,
    parent: unknown,
    /** The stored cursor when the caller read it already (pending partitions come with theirs). */
    known: { cursor: CursorValue | undefined } | undefined,
    sum: StreamSummary,
    wb: WriteBehind,
  ): Promise<void> {
    const { session } = this;
    const { db, config } = session;
    const inc = s.incremental;
    const cursorType = inc?.type ?? 'datetime';
    const stateKey = this.stateKey(s, partition);
    const stored = known ? known.cursor : await readCursor(db.query.bind(db), stateKey);
    const tracker = partition
      ? undefined
      : await ListingTracker.open(db, s, {
          organizationId: session.org.id,
          connection: session.conn.name,
          source: session.spec.name,
          stream: s.name,
          runId: this.runId,
        });
    // A listing due for deletion detection ignores the cursor: only a complete listing says what is gone.
    const fullListing = this.fullRefresh || !!tracker?.fullListingDue;
    let startCursor: CursorValue | undefined = fullListing ? undefined : stored;
    const runStartedAt = new Date().toISOString();
    if (startCursor === undefined && inc?.start && !tracker?.fullListingDue) {
      const b = session.bindings('incremental_start', { parent, run_started_at: runStartedAt });
      const v = await renderString(inc.start, b);
      if (v) startCursor = v;
    }
    const lookback = durationMs(inc?.lookback);
    const effective = startCursor === undefined || !inc ? undefined : shiftCursor(startCursor, cursorType, lookback);
    const values: Bindings = {
      parent,
      run_started_at: runStartedAt,
      ...cursorBindings(effective, cursorType),
    };
    const data = session.bindings('data', { parent });
    let maxCursor: CursorValue | undefined = startCursor;
    let reachedOld = false;
    const hookContext = () => session.hookContext(undefined, s.name);
    const requestOpts = {
      c: session.cctx,
      stream: s,
      bindings: session.bindings('request', values),
      hasCursor: effective !== undefined,
      timeoutMs: config.http.timeoutMs,
      hookContext,
    };
    const pager = paginate({
      pagination: s.pagination,
      client: this.client,
      records: s.records,
      dataBindings: data,
      cursor: s.pagination.type === 'id_window' ? startCursor : undefined,
      bindings: session.bindings('pagination', values),
      build: (query, follow, page, body) =>
        buildRequest(requestOpts, { query, follow, page, ...(body ? { body } : {}) }),
      stopAfter: () => reachedOld,
    });
    const mapInput = {
      stream: s.name,
      maps: s.map,
      primaryKey: s.primary_key,
      bindings: session.bindings('mapping', { parent }),
      afterMap: s.hooks?.after_map,
      hookContext,
      requireKey: true,
    };
    let pageCount = 0;
    const pages = pager[Symbol.asyncIterator]();
    try {
      for (;;) {
        const fetchClock = stageStart();
        const next = await pages.next();
        stageEnd('http', fetchClock);
        if (next.done) break;
        const page = next.value;
        this.checkStop();
        sum.pages++;
        pageCount++;
        let records = page.records;
        if (s.hooks?.after_fetch) {
          const h = getHook(s.hooks.after_fetch, 'after_fetch');
          if (h) {
            records = await h(records, hookContext());
            // A hook may change records in place: their hashes are taken again when they are mapped.
            forgetRecordHashes(page.records);
          }
        }
        let pageMax: CursorValue | undefined;
        if (inc) {
          const f = await filterPageByCursor(inc, records, data, effective);
          records = f.records;
          pageMax = f.pageMax;
          if (f.reachedOld) reachedOld = true;
        }
        sum.records += records.length;
        this.onPage?.(sum);
        const { dead, parents } = await mapRecords(mapInput, records);
        if (pageMax !== undefined && (maxCursor === undefined || compareCursor(pageMax, maxCursor, cursorType) > 0))
          maxCursor = pageMax;
        // Ascending feeds checkpoint every page; newest-first or unsorted feeds only at the end of the pass.
        const checkpoint = inc?.order === 'asc' && maxCursor !== undefined ? maxCursor : undefined;
        const processed = records.length;
        await wb.push({
          partition: partition || undefined,
          parents,
          dead,
          checkpoint:
            checkpoint === undefined
              ? undefined
              : { key: stateKey, cursor: checkpoint, status: 'running', processed, done: false },
        });
        await tracker?.page(parents, dead, effective === undefined);
      }
    } finally {
      await pages.return?.(undefined);
    }
    // End of stream/partition: the cursor for unsorted or newest-first feeds is promoted only now, after its pages.
    const final = maxCursor;
    await wb.push({
      partition: partition || undefined,
      parents: [],
      dead: [],
      checkpoint: { key: stateKey, cursor: final, status: 'idle', processed: 0, done: true },
    });
    if (tracker) {
      // The listing's verdict comes after its pages are written (a failed batch throws here, before any marking).
      await wb.drain();
      const capped = s.pagination.type !== 'none' && pageCount >= (s.pagination.max_pages ?? 100_000);
      const marked = await tracker.finish(effective === undefined && !reachedOld && !capped);
      if (marked !== undefined) {
        sum.markedDeleted = (sum.markedDeleted ?? 0) + marked;
        if (marked > 0) session.log.info({ stream: s.name, marked }, 'complete listing: absent records marked deleted');
      }
    }
  }
}
