/**
 * The job queue of `routiq serve`: pg-boss on the same database. Queues:
 * - `routiq-tick`: a cluster-wide cron every minute (pg-boss fires it once across instances); it enqueues the
 *   (organization, connection) pairs due in that minute.
 * - `routiq-sync`: one job per due or requested connection; policy `short` with the pair as singleton key, so a
 *   pair has at most one job waiting (no pile-up behind a slow run) and organizations are served in turn.
 * - `routiq-webhook`: stored deliveries whose in-line processing failed or never happened, with backoff.
 * - `routiq-sweep`: every minute, deliveries left unprocessed (a killed instance) are processed.
 * - `routiq-dlq-replay`: dead-letter replays requested through the API.
 * - `routiq-purge`: daily at 03:17 UTC, rows past their retention are deleted (db/retention.ts).
 */
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';

export const QUEUES = {
  tick: 'routiq-tick',
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

export interface QueueHandlers {
  tick(createdOn: Date): Promise<void>;
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
    await this.boss.createQueue(QUEUES.tick, { name: QUEUES.tick, policy: 'standard', retryLimit: 0 });
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
    await this.boss.schedule(QUEUES.tick, '* * * * *', {}, { tz: 'UTC' });
    await this.boss.schedule(QUEUES.sweep, '* * * * *', {}, { tz: 'UTC' });
    await this.boss.createQueue(QUEUES.purge, { name: QUEUES.purge, policy: 'singleton', retryLimit: 0 });
    await this.boss.schedule(QUEUES.purge, '17 3 * * *', {}, { tz: 'UTC' });
    const poll = { pollingIntervalSeconds: this.o.pollingIntervalSeconds };
    this.workers.push(
      await this.boss.work<object>(QUEUES.tick, { ...poll, includeMetadata: true }, async ([job]) => {
        if (job) await this.track(h.tick(job.createdOn));
      }),
    );
    for (let i = 0; i < Math.max(1, this.o.concurrency); i++) {
      this.workers.push(
        await this.boss.work<SyncJob>(QUEUES.sync, { ...poll, batchSize: 1 }, async ([job]) =>
          job ? this.track(h.sync(job.data, this.abort.signal)) : undefined,
        ),
      );
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
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.active.add(p);
    const done = () => this.active.delete(p);
    p.then(done, done);
    return p;
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
