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
  private readonly abort = new AbortController();
  private scheduler: NodeJS.Timeout | undefined;
  private scheduling: Promise<void> | undefined;

  constructor(
    db: Database,
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

  async start(h: QueueHandlers): Promise<void> {
    await this.boss.start();
    await this.boss.createQueue(QUEUES.sync, {
      name: QUEUES.sync,
      policy: 'short',
      retryLimit: 1,
      retryDelay: 30,
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
        try {
          return await this.track(h.sync(job.data, this.abort.signal));
        } finally {
          if (!this.stopping) this.boss.notifyWorker(id);
        }
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

  /**
   * Stop taking jobs, give running work `drainMs` to finish (sync runs are asked to stop after their current page:
   * their checkpoints make the next run resume), then stop pg-boss.
   */
  async stop(drainMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.scheduler);
    await this.scheduling;
    for (const name of Object.values(QUEUES)) await this.boss.offWork(name).catch(() => undefined);
    const deadline = Date.now() + drainMs;
    const settle = Promise.allSettled([...this.active]);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())));
    if ((await Promise.race([settle, timer])) === 'timeout') {
      this.log.warn({ active: this.active.size }, 'drain time is up: asking running syncs to stop at a checkpoint');
      this.abort.abort();
      await Promise.race([
        Promise.allSettled([...this.active]),
        new Promise((r) => setTimeout(r, Math.min(10_000, drainMs))),
      ]);
    }
    await this.boss.stop({ graceful: false, wait: true, timeout: 5_000 }).catch(() => undefined);
  }
}
