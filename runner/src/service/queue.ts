/**
 * The job queue of `routiq serve`: pg-boss on the same database. Queues:
 * - `routiq-sync`: one job per due or requested connection; policy `short` with the pair as singleton key, so a
 *   pair has at most one job waiting (no pile-up behind a slow run) and organizations are served in turn. Every
 *   instance enqueues the schedule's slots every few seconds, each with a job id derived from the slot, so a slot
 *   is one job whichever instances are up (schedule.ts); the last minute's slots are enqueued again at every check,
 *   so a slot missed while every instance was down, or refused while the pair's previous job still waited, follows.
 * - `routiq-webhook`: stored deliveries whose in-line processing failed or never happened, with backoff.
 * - `routiq-sweep`: every minute, deliveries left unprocessed (a killed instance) are processed.
 * - `routiq-dlq-replay`: dead-letter replays requested through the API.
 * - `routiq-purge`: daily at 03:17 UTC, rows past their retention are deleted (db/retention.ts).
 * A sync job held by an instance that died is failed by a survivor (recovery.ts) and retried after SYNC_RETRY_SECONDS;
 * pg-boss 10 has no job heartbeat, so its expiry (`syncExpireSeconds`) is only the backstop.
 */
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';

export const QUEUES = {
  sync: 'routiq-sync',
  webhook: 'routiq-webhook',
  sweep: 'routiq-sweep',
  replay: 'routiq-dlq-replay',
  purge: 'routiq-purge',
} as const;

export interface SyncJob {
  organizationId: string;
  connection: string;
  reason: 'schedule' | 'api';
  fullRefresh?: boolean;
  /** Schedule slot start (ms) for scheduled runs. */
  slot?: number;
}
export interface WebhookJob {
  id: string;
}
export interface ReplayJob {
  ids?: string[];
  filter?: Record<string, unknown>;
  actor: string;
}

/** How often each instance enqueues the due slots, and how far back it looks (a slot is one job: see above). */
export const SCHEDULE_CHECK_MS = 5_000;
export const SCHEDULE_CATCH_UP_MS = 60_000;
/** A failed sync job (an error, or its instance died) is retried once, this long after. */
export const SYNC_RETRY_SECONDS = 10;

export interface QueueHandlers {
  /** Enqueue the scheduled syncs whose slots start in (fromMs, toMs]. */
  schedule(fromMs: number, toMs: number): Promise<void>;
  sync(job: SyncJob, signal: AbortSignal): Promise<unknown>;
  webhook(job: WebhookJob): Promise<void>;
  sweep(): Promise<void>;
  replay(job: ReplayJob): Promise<unknown>;
  purge(): Promise<unknown>;
}

export interface QueueOptions {
  /** Concurrent sync runs on this instance. */
  concurrency: number;
  /** A sync job that runs longer is expired and may be retried by another instance (the run lock prevents overlap). */
  syncExpireSeconds: number;
  pollingIntervalSeconds: number;
}

export class JobQueue {
  readonly boss: PgBoss;
  private started = false;
  private stopping = false;
  private readonly workers: string[] = [];
  private readonly active = new Set<Promise<unknown>>();
  /** The pg-boss ids of the sync jobs this instance holds (its heartbeat publishes them: recovery.ts). */
  private readonly syncJobIds = new Set<string>();
  private readonly abort = new AbortController();
  private scheduler: NodeJS.Timeout | undefined;
  private scheduling: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly o: QueueOptions,
  ) {
    this.boss = new PgBoss({
      connectionString: db.connectionUrl,
      // The same TLS as the ORM's connections (database.tls).
      ...(db.ssl !== undefined ? { ssl: db.ssl } : {}),
      schema: 'pgboss',
      // The embedded database has one backend: pg-boss shares it through one extra connection (database.ts).
      max: db.kind === 'embedded' ? 1 : 4,
      application_name: 'routiq-queue',
    });
    this.boss.on('error', (err: Error) => log.error({ err: { message: err.message } }, 'job queue error'));
  }

  get running(): boolean {
    return this.started && !this.stopping;
  }

  get activeJobs(): number {
    return this.active.size;
  }

  get heldSyncJobs(): string[] {
    return [...this.syncJobIds];
  }

  async start(h: QueueHandlers): Promise<void> {
    await this.boss.start();
    await this.boss.createQueue(QUEUES.sync, {
      name: QUEUES.sync,
      policy: 'short',
      retryLimit: 1,
      retryDelay: SYNC_RETRY_SECONDS,
      expireInSeconds: this.o.syncExpireSeconds,
    });
    await this.boss.createQueue(QUEUES.webhook, {
      name: QUEUES.webhook,
      policy: 'standard',
      retryLimit: 5,
      retryDelay: 5,
      retryBackoff: true,
    });
    await this.boss.createQueue(QUEUES.sweep, { name: QUEUES.sweep, policy: 'standard', retryLimit: 0 });
    await this.boss.createQueue(QUEUES.replay, { name: QUEUES.replay, policy: 'standard', retryLimit: 0 });
    await this.boss.schedule(QUEUES.sweep, '* * * * *', {}, { tz: 'UTC' });
    await this.boss.createQueue(QUEUES.purge, { name: QUEUES.purge, policy: 'singleton', retryLimit: 0 });
    await this.boss.schedule(QUEUES.purge, '17 3 * * *', {}, { tz: 'UTC' });
    const poll = { pollingIntervalSeconds: this.o.pollingIntervalSeconds };
    for (let i = 0; i < Math.max(1, this.o.concurrency); i++) {
      // A pg-boss worker waits out the rest of its polling interval after every job, so a worker finishing short
      // runs took at most one per interval (2 a second per instance by default, a ceiling of 600 connections per
      // 5-minute interval). After a job it fetches the next at once; only an empty queue waits for the interval.
      let id = '';
      id = await this.boss.work<SyncJob>(QUEUES.sync, { ...poll, batchSize: 1 }, async ([job]) => {
        if (!job) return undefined;
        this.syncJobIds.add(job.id);
        try {
          await this.track(this.runSyncJob(job, h));
        } finally {
          this.syncJobIds.delete(job.id);
          if (!this.stopping) this.boss.notifyWorker(id);
        }
        return undefined;
      });
      this.workers.push(id);
    }
    this.workers.push(
      await this.boss.work<WebhookJob>(QUEUES.webhook, { ...poll, batchSize: 20 }, async (jobs) => {
        for (const j of jobs) await this.track(h.webhook(j.data));
      }),
    );
    this.workers.push(await this.boss.work(QUEUES.sweep, poll, async () => this.track(h.sweep())));
    this.workers.push(
      await this.boss.work<ReplayJob>(QUEUES.replay, poll, async ([job]) =>
        job ? this.track(h.replay(job.data)) : undefined,
      ),
    );
    this.workers.push(await this.boss.work(QUEUES.purge, poll, async () => this.track(h.purge())));
    this.started = true;
    const check = () => {
      if (this.scheduling || this.stopping) return;
      const now = Date.now();
      this.scheduling = h
        .schedule(now - SCHEDULE_CATCH_UP_MS, now)
        .catch((err: Error) => this.log.error({ err: { message: err.message } }, 'scheduling failed; retried shortly'))
        .finally(() => {
          this.scheduling = undefined;
        });
    };
    check();
    this.scheduler = setInterval(check, SCHEDULE_CHECK_MS);
  }

  /**
   * A sync job, completed or failed here and awaited: pg-boss 10 completes a job without awaiting it after the
   * handler returns, so a shutdown right after a run could close its pool first and leave the job `active` until
   * its expiry. (pg-boss's own completion afterwards finds the job no longer active and changes nothing.)
   */
  private async runSyncJob(job: PgBoss.Job<SyncJob>, h: QueueHandlers): Promise<void> {
    let result: unknown;
    let error: unknown;
    try {
      result = await h.sync(job.data, this.abort.signal);
    } catch (err) {
      error = err;
    }
    try {
      if (error === undefined) await this.boss.complete(QUEUES.sync, job.id, (result ?? {}) as object);
      else await this.boss.fail(QUEUES.sync, job.id, { message: (error as Error)?.message ?? String(error) });
    } catch (err) {
      this.log.error({ job: job.id, err: { message: (err as Error).message } }, 'could not record a sync job outcome');
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.active.add(p);
    const done = () => this.active.delete(p);
    p.then(done, done);
    return p;
  }

  /** Enqueue scheduled slots (job ids from schedule.ts): a slot already queued, or a pair with a job waiting, is skipped. */
  async sendScheduled(jobs: Array<{ id: string; job: SyncJob }>): Promise<void> {
    for (let i = 0; i < jobs.length; i += 500)
      await this.boss.insert(
        jobs.slice(i, i + 500).map(({ id, job }) => ({
          id,
          name: QUEUES.sync,
          data: job,
          singletonKey: `${job.organizationId}/${job.connection}`,
        })),
      );
  }

  /** Enqueue a sync; null when the pair already has one waiting. */
  async sendSync(job: SyncJob): Promise<string | null> {
    return this.boss.send(QUEUES.sync, job, { singletonKey: `${job.organizationId}/${job.connection}` });
  }

  async sendWebhook(job: WebhookJob, delaySeconds = 5): Promise<string | null> {
    return this.boss.send(QUEUES.webhook, job, { startAfter: delaySeconds });
  }

  async sendReplay(job: ReplayJob): Promise<string | null> {
    return this.boss.send(QUEUES.replay, job);
  }

  /** The active sync jobs of these pairs (singleton keys `<organization>/<connection>`): pg-boss's table only. */
  async jobsOfPairs(keys: string[]): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `select id::text as id from pgboss.job
       where name = ? and state = 'active' and singleton_key in (${keys.map(() => '?').join(', ')})`,
      [QUEUES.sync, ...keys],
    );
    return rows.map((r) => r.id);
  }

  /** Active sync jobs taken over 5 s ago that are not among `listed` (the jobs live instances publish). */
  async unlistedActiveJobs(listed: string[]): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `select id::text as id from pgboss.job
       where name = ? and state = 'active' and started_on < now() - interval '5 seconds'`,
      [QUEUES.sync],
    );
    const held = new Set(listed);
    return rows.map((r) => r.id).filter((id) => !held.has(id));
  }

  /** Fail sync jobs another instance held when it died: pg-boss retries them (after SYNC_RETRY_SECONDS). */
  async failOrphans(ids: string[], reason: string): Promise<void> {
    // pg-boss fails only jobs not completed yet: one its holder finished after all is left alone.
    for (const id of ids) await this.boss.fail(QUEUES.sync, id, { message: reason });
  }

  /**
   * Stop taking jobs, give running work until `drainUntil` (epoch ms) to finish, then ask sync runs to stop after
   * their current page (their checkpoints make the next run resume) and wait for them until `stopBy`; then stop
   * pg-boss, which fails the jobs still held here so that another instance retries them. Returns when done or at
   * `stopBy` (what is still running then is left to the caller's hard bound).
   */
  async stop(drainUntil: number, stopBy: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.scheduler);
    await until(this.scheduling ?? Promise.resolve(), drainUntil);
    for (const name of Object.values(QUEUES)) await this.boss.offWork(name).catch(() => undefined);
    if (!(await until(Promise.allSettled([...this.active]), drainUntil))) {
      this.log.warn({ active: this.active.size }, 'drain time is up: asking running syncs to stop at a checkpoint');
      this.abort.abort();
      if (!(await until(Promise.allSettled([...this.active]), stopBy)))
        this.log.warn({ active: this.active.size }, 'shutdown bound: leaving running work to its checkpoints');
    }
    // graceful: false fails the jobs still active here (pg-boss failWip): they are retried, not left to expire.
    await until(
      this.boss.stop({ graceful: false, wait: true, timeout: 1_000 }).catch(() => undefined),
      Math.max(stopBy, Date.now() + 1_000),
    );
  }
}

/** Wait for `p` until `deadline` (epoch ms): true when it settled in time. */
export async function until(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      p.then(
        () => true as const,
        () => true as const,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
