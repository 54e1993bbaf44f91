/**
 * `routiq serve`: webhooks in, schedules and on-demand syncs through pg-boss, health, metrics and status out.
 * Every write goes through the same session, mapping, identity and writer path as `routiq sync`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AlertMonitor } from '../alerts/index.ts';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { assertMigrated } from '../db/migrate.ts';
import { type PurgeResult, purgeExpired } from '../db/retention.ts';
import { crossOrganization, forOrganization, safeMessage, transaction } from '../db/tx.ts';
import { type DeadLetterFilter, getStatus, hasSelector, replayDeadLetters, validateFilter } from '../dlq/index.ts';
import { insertDeadLetter } from '../engine/bookkeeping.ts';
import { openSession, type Session } from '../engine/session.ts';
import { syncConnection } from '../engine/sync.ts';
import { type AuthenticatedDelivery, authenticateWebhook, letterHeaders, processWebhooks } from '../engine/webhooks.ts';
import { isRoutiqError } from '../errors/registry.ts';
import { auditTo } from '../security/audit.ts';
import { AdminAuth, correlationOf, mayAccess, type Principal, principalOf } from './auth.ts';
import { type AdminGate, BEAT_MS, dashboardRoutes, InstanceRegistry } from './dashboard/index.ts';
import { DeliveryQueue, type QueuedDelivery } from './delivery-queue.ts';
import { buildHttp, jsonBody, openApi, type RouteDef } from './http.ts';
import {
  claimDeliveries,
  type Delivery,
  InboxWriter,
  markDelivery,
  markProcessed,
  recordRejected,
  staleDeliveries,
  storableHeaders,
} from './inbox.ts';
import { ServiceMetrics } from './metrics.ts';
import { JobQueue, type ReplayJob, type SyncJob, until } from './queue.ts';
import { ReceiveFirst } from './receive-first.ts';
import { recoverDeadInstances } from './recovery.ts';
import { dueBetween, slotJobId } from './schedule.ts';

const WEBHOOK_ROUTE = '/webhooks/:org/:connection';
/**
 * Connections the kernel holds for accept: a burst of deliveries while the event loop is busy overflowed Node's 511,
 * and a dropped connection attempt is retried by the sender's TCP after 1, 3, 7, 15 s — past Chatwoot's 5 s (the
 * kernel caps it at net.core.somaxconn).
 */
const LISTEN_BACKLOG = 4096;
/** Deliveries processed (and stored) together at most. */
const WEBHOOK_BATCH = 500;
/** Delivery ids queued in memory at most; past it the inbox keeps them and the sweeper processes them. */
const WEBHOOK_QUEUE_MAX = 20_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The fields of a DeadLetterFilter: POST /api/dlq/replay refuses others. */
const FILTER_KEYS = new Set([
  'ids',
  'org',
  'connector',
  'connection',
  'stream',
  'class',
  'code',
  'olderThan',
  'newerThan',
  'resolved',
  'limit',
]);

/** The config file's `service:` block (docs/service.md) plus what comes from elsewhere. */
export interface ServiceSettings extends Readonly<RoutiqConfig['service']> {
  /** Per (organization, connection) cron overrides: `${org}/${connection}` → cron. */
  schedules: Record<string, string>;
  /** The static admin token (ROUTIQ_SERVICE_TOKEN). */
  token: string | undefined;
  version: string;
}

export const DEFAULT_SETTINGS: ServiceSettings = {
  host: '0.0.0.0',
  port: 8080,
  concurrency: 2,
  intervalMinutes: 5,
  schedules: {},
  bodyLimitBytes: 1024 * 1024,
  drainSeconds: 15,
  shutdownTimeoutSeconds: 25,
  webhookConcurrency: 2,
  webhookStaleSeconds: 60,
  webhookMaxAttempts: 5,
  pollingIntervalSeconds: 1,
  token: undefined,
  version: '0.1.0',
};

export interface ServiceOptions {
  db: Database;
  config: RoutiqConfig;
  settings: ServiceSettings;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Reload the configuration (SIGHUP, file change): returns the new config and settings or throws. */
  reload?: () => Promise<{ config: RoutiqConfig; settings: ServiceSettings }>;
}

/** A delivery's body as stored in its dead letter: the JSON it was, or (were it not JSON) the text itself. */
function jsonOrText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return { body };
  }
}

export class Service {
  readonly metrics = new ServiceMetrics();
  readonly app: FastifyInstance;
  readonly queue: JobQueue;
  /** Admin authentication (service token, Clerk JWTs): `auth.preHandler` guards other routes the same way. */
  readonly auth: AdminAuth;
  private config: RoutiqConfig;
  private settings: ServiceSettings;
  private draining = false;
  private closing: Promise<void> | undefined;
  private recovery: NodeJS.Timeout | undefined;
  private readonly sessions = new Map<string, Promise<Session>>();
  /** Stored deliveries waiting per (organization, connection), processed in batches (delivery-queue.ts). */
  private readonly deliveries: DeliveryQueue;
  private readonly inbox: InboxWriter;
  /**
   * Receives before processing: processing backs off while receives pile up or the loop lags (receive-first.ts), and
   * on the embedded database (one connection) while deliveries wait for the inbox's commit.
   */
  private readonly receiveFirst: ReceiveFirst;
  /** Webhook requests counted by receiveFirst until their delivery is handed to the inbox (or they are answered). */
  private readonly receiving = new WeakSet<FastifyRequest>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly routes: RouteDef[];
  readonly alerts: AlertMonitor;
  readonly instances: InstanceRegistry;

  constructor(private readonly o: ServiceOptions) {
    this.config = o.config;
    this.settings = o.settings;
    this.alerts = new AlertMonitor({
      db: o.db,
      config: () => this.config,
      logger: o.logger,
      env: o.env,
      registry: this.metrics.registry,
    });
    this.instances = new InstanceRegistry(
      o.db,
      () => ({
        version: this.settings.version,
        activeJobs: this.queue.activeJobs,
        concurrency: this.settings.concurrency,
        draining: this.draining,
        queueRunning: this.queue.running,
        syncJobs: this.queue.heldSyncJobs,
      }),
      o.logger,
    );
    this.deliveries = new DeliveryQueue({
      concurrency: () => this.receiveFirst.concurrency(this.settings.webhookConcurrency),
      batchSize: WEBHOOK_BATCH,
      maxQueued: WEBHOOK_QUEUE_MAX,
      process: (_pair, batch) => this.processBatch(batch),
      onError: (pair, err) =>
        this.log.error({ pair, err: { message: safeMessage(err) } }, 'webhook batch failed; the sweeper retries it'),
    });
    this.inbox = new InboxWriter(o.db, WEBHOOK_BATCH);
    this.receiveFirst = new ReceiveFirst({ also: () => o.db.kind === 'embedded' && this.inbox.pending > 0 });
    this.queue = new JobQueue(o.db, o.logger, {
      concurrency: o.settings.concurrency,
      syncExpireSeconds: o.config.runner.deadlineSeconds + 120,
      pollingIntervalSeconds: o.settings.pollingIntervalSeconds,
    });
    this.auth = new AdminAuth({
      db: o.db,
      logger: o.logger,
      token: () => this.settings.token,
      jwt: () => this.settings.auth,
    });
    this.routes = this.routeTable();
    this.app = buildHttp(this.routes, {
      bodyLimitBytes: o.settings.bodyLimitBytes,
      token: () => this.settings.token,
      authenticate: this.auth.preHandler,
      onAdminDenied: (req, why) => o.logger.warn({ url: req.url, why }, 'admin request refused'),
      onRefused: (req, status, why) => {
        const p = this.refused(req, status, why);
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      },
    });
    // From its headers on, a webhook request is being received: processing gives way until it is handed over.
    this.app.addHook('onRequest', async (req) => {
      if (req.routeOptions.url !== WEBHOOK_ROUTE) return;
      this.receiving.add(req);
      this.receiveFirst.begin();
    });
    this.app.addHook('onResponse', async (req) => this.received(req));
    this.app.addHook('onRequestAbort', async (req) => this.received(req));
  }

  private received(req: FastifyRequest): void {
    if (this.receiving.delete(req)) this.receiveFirst.end();
  }

  get log(): Logger {
    return this.o.logger;
  }

  async start(): Promise<{ url: string }> {
    await assertMigrated(this.o.db);
    await this.queue.start({
      schedule: (from, to) => this.schedule(from, to),
      sync: (job, signal) => this.runSync(job, signal),
      webhook: (job) => this.processDelivery(job.id),
      sweep: () => this.sweep(),
      replay: (job) => this.replay(job),
      purge: () => this.purge(),
    });
    await this.instances.beat();
    this.instances.start();
    this.recovery = setInterval(() => void this.recoverDead(), BEAT_MS);
    this.recovery.unref();
    this.receiveFirst.start();
    this.alerts.start();
    const url = await this.app.listen({ host: this.settings.host, port: this.settings.port, backlog: LISTEN_BACKLOG });
    this.log.info({ url, instance: process.pid, concurrency: this.settings.concurrency }, 'routiq serve listening');
    return { url };
  }

  /** The daily retention purge (pg-boss `routiq-purge`): audited as the system's daily job, per organization. */
  async purge(): Promise<PurgeResult> {
    const r = await purgeExpired(this.o.db, this.config, {
      actor: { type: 'system', id: 'daily-purge' },
      correlationId: `purge:${randomUUID()}`,
    });
    this.log.info({ purged: r }, 'retention purge');
    return r;
  }

  /**
   * Stop taking work, drain, close — within `shutdown_timeout_seconds` from the call, whatever hangs. Ready answers
   * 503 from the first moment; running syncs get `drain_seconds` (at most the bound less 5 s) to finish, are then
   * asked to stop at their next checkpoint, and whatever still runs at the bound is left: its jobs are failed for
   * another instance to retry and its runs are resumed from their checkpoints. Resolves by the bound.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    clearInterval(this.recovery);
    const begun = Date.now();
    const bound = this.settings.shutdownTimeoutSeconds * 1000;
    // The last moments belong to closing the server and the heartbeat, the very last to the database (serve.ts).
    const reserve = Math.min(5_000, bound / 2);
    const drainUntil = begun + Math.min(this.settings.drainSeconds * 1000, bound - reserve);
    const stopBy = begun + bound - Math.min(3_000, reserve);
    const closeBy = begun + bound - Math.min(1_000, reserve / 4);
    this.instances.poke(); // the status page shows it draining at once
    this.log.info({ drain_seconds: (drainUntil - begun) / 1000, shutdown_timeout_seconds: bound / 1000 }, 'draining');
    await this.queue.stop(drainUntil, stopBy);
    if (!(await until(Promise.allSettled([...this.inflight, this.deliveries.idle()]), stopBy)))
      this.log.warn({ deliveries: this.inflight.size }, 'shutdown bound: webhook deliveries left to the sweeper');
    const closed = await until(
      Promise.allSettled([this.alerts.stop(), this.instances.stop(), this.app.close()]),
      closeBy,
    );
    if (!closed) this.log.warn('shutdown bound: the server or heartbeat did not close in time');
    this.receiveFirst.stop();
    this.log.info({ seconds: (Date.now() - begun) / 1000 }, 'stopped');
  }

  /** A survivor's part (recovery.ts): the jobs and runs of instances that died are released at once. */
  private async recoverDead(): Promise<void> {
    if (this.draining) return;
    try {
      const found = await recoverDeadInstances(this.o.db, this.instances.id, this.config.runner.staleAfterSeconds, {
        jobsOfPairs: (keys) => this.queue.jobsOfPairs(keys),
        unlistedActiveJobs: (listed) => this.queue.unlistedActiveJobs(listed),
        failJobs: (ids, reason) => this.queue.failOrphans(ids, reason),
      });
      for (const r of found) this.log.warn(r, 'recovered the work of an instance that died');
    } catch (err) {
      this.log.warn({ err: { message: safeMessage(err) } }, 'dead-instance recovery failed; tried again next beat');
    }
  }

  /** Non-secret configuration (schedules, budgets, log level, organizations) without a restart. */
  async reload(): Promise<void> {
    if (!this.o.reload) return;
    try {
      const next = await this.o.reload();
      this.config = next.config;
      this.settings = { ...next.settings, host: this.settings.host, port: this.settings.port };
      this.sessions.clear();
      this.log.level = next.config.log.level;
      this.log.info({ organizations: next.config.organizations.length }, 'configuration reloaded');
      await auditTo(this.o.db, {
        actor: { type: 'system', id: 'serve' },
        organizationId: null,
        action: 'config.reload',
        resourceType: 'config',
        resourceId: next.config.file,
        count: next.config.organizations.length,
        details: { organizations: next.config.organizations.map((x) => x.id) },
      }).catch((e) => this.log.error({ err: { message: safeMessage(e) } }, 'could not audit a configuration reload'));
    } catch (err) {
      this.log.error({ err: { message: safeMessage(err) } }, 'configuration reload refused; the previous one stays');
    }
  }

  private find(orgId: string, connection: string): { org: OrganizationConfig; conn: ConnectionConfig } | undefined {
    const org = this.config.organizations.find((x) => x.id === orgId);
    const conn = org?.connections.find((c) => c.name === connection);
    return org && conn ? { org, conn } : undefined;
  }

  /** One session per connection, reused across deliveries (spec, secrets and settings resolved once). */
  private session(org: OrganizationConfig, conn: ConnectionConfig): Promise<Session> {
    const key = `${org.id}/${conn.name}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = openSession({
        db: this.o.db,
        config: this.config,
        org,
        conn,
        logger: this.log,
        env: this.o.env,
        logFields: { webhook: true },
      });
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  private async schedule(fromMs: number, toMs: number): Promise<void> {
    const due = dueBetween(this.config, fromMs, toMs, {
      intervalMinutes: this.settings.intervalMinutes,
      of: (org, conn) => this.settings.schedules[`${org}/${conn}`],
    });
    await this.queue.sendScheduled(
      due.map((d) => ({
        id: slotJobId(d),
        job: { organizationId: d.organizationId, connection: d.connection, reason: 'schedule', slot: d.slot },
      })),
    );
    this.metrics.jobs.inc({ queue: 'schedule', outcome: 'done' });
  }

  private async runSync(job: SyncJob, signal: AbortSignal): Promise<unknown> {
    const found = this.find(job.organizationId, job.connection);
    if (!found || !found.conn.enabled) {
      this.metrics.jobs.inc({ queue: 'sync', outcome: 'not_configured' });
      return { skipped: 'not configured (any more)' };
    }
    this.metrics.activeRuns.inc();
    const started = Date.now();
    try {
      const s = await syncConnection({
        db: this.o.db,
        config: this.config,
        org: found.org,
        conn: found.conn,
        fullRefresh: !!job.fullRefresh,
        logger: this.log,
        env: this.o.env,
        signal,
      });
      this.metrics.syncRuns.inc({ connector: s.connector, status: s.status });
      this.metrics.syncDuration.observe({ connector: s.connector }, (Date.now() - started) / 1000);
      this.metrics.platformRequests.inc({ connector: s.connector }, s.requests);
      this.metrics.platformRateLimited.inc({ connector: s.connector }, s.rateLimited);
      for (const st of s.streams) {
        this.metrics.syncRecords.inc({ connector: s.connector, stream: st.stream }, st.records);
        if (st.deadLetters) this.metrics.syncDeadLetters.inc({ connector: s.connector }, st.deadLetters);
      }
      this.metrics.jobs.inc({ queue: 'sync', outcome: s.status });
      return { run: s.runId, status: s.status };
    } catch (err) {
      // Already running elsewhere, or paused by its breaker: this slot is done, the schedule tries again.
      if (isRoutiqError(err) && (err.code === 'RQ4005' || err.code === 'RQ3008')) {
        this.metrics.jobs.inc({ queue: 'sync', outcome: 'skipped' });
        return { skipped: err.code };
      }
      this.metrics.jobs.inc({ queue: 'sync', outcome: 'error' });
      this.log.error(
        { org: job.organizationId, connection: job.connection, err: { message: safeMessage(err) } },
        'sync job failed',
      );
      throw err;
    } finally {
      this.metrics.activeRuns.dec();
      this.alerts.poke();
    }
  }

  /** Receive: authenticate, store durably, answer; processing follows in-line (or via the queue after a crash). */
  private async receive(req: FastifyRequest): Promise<{ status: number; body: Record<string, unknown> }> {
    const params = req.params as { org: string; connection: string };
    const found = this.find(params.org, params.connection);
    if (!found) {
      this.metrics.webhookDeliveries.inc({ connector: 'unknown', outcome: 'unknown_connection' });
      return { status: 404, body: { error: 'no such organization or connection' } };
    }
    const { org, conn } = found;
    const rawHeaders = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(',') : String(v ?? '')]),
    );
    let session: Session;
    try {
      session = await this.session(org, conn);
    } catch (err) {
      this.log.error({ org: org.id, connection: conn.name, err: { message: safeMessage(err) } }, 'connection unusable');
      return { status: 503, body: { error: 'this connection cannot take webhooks now (see the service log)' } };
    }
    const spec = session.spec;
    const keep = letterHeaders(spec, rawHeaders);
    const query = Object.fromEntries(
      Object.entries((req.query ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
    );
    try {
      await authenticateWebhook(session, {
        headers: rawHeaders,
        query,
        rawBody: typeof req.body === 'string' ? req.body : '',
      });
    } catch (err) {
      const reason = safeMessage(err);
      const auth = reason.startsWith('webhook rejected');
      await recordRejected(forOrganization(this.o.db, org.id), {
        organizationId: org.id,
        connection: conn.name,
        headers: keep,
        reason,
      }).catch((e) => this.log.error({ err: { message: safeMessage(e) } }, 'could not record a rejected delivery'));
      this.metrics.webhookDeliveries.inc({ connector: spec.name, outcome: 'rejected' });
      this.log.warn({ org: org.id, connection: conn.name, reason }, 'webhook rejected');
      this.alerts.poke();
      return { status: isRoutiqError(err) ? (auth ? 401 : 400) : 500, body: { error: reason } };
    }
    const deliveryHeader = spec.webhooks?.delivery_id_header?.toLowerCase();
    // Stored with the deliveries received meanwhile, in one commit; answered once committed.
    const storing = this.inbox.store({
      organizationId: org.id,
      connection: conn.name,
      deliveryId: deliveryHeader ? (rawHeaders[deliveryHeader] ?? null) || null : null,
      headers: keep,
      body: req.body as string,
    });
    this.received(req);
    const stored = await storing;
    if (stored.duplicate) {
      this.metrics.webhookDeliveries.inc({ connector: spec.name, outcome: 'duplicate' });
      return { status: 200, body: { status: 'duplicate', id: stored.id } };
    }
    this.metrics.webhookDeliveries.inc({ connector: spec.name, outcome: 'accepted' });
    // Never waits for processing; a full queue leaves the delivery to the sweeper (it is in the inbox).
    if (!this.deliveries.enqueue(`${org.id}/${conn.name}`, stored.id, Date.now()))
      this.log.warn({ org: org.id, connection: conn.name, queued: this.deliveries.waiting }, 'webhook queue full');
    return { status: 202, body: { status: 'accepted', id: stored.id } };
  }

  /** An oversized delivery is refused before its handler: it is recorded as rejected all the same (no body). */
  private async refused(req: FastifyRequest, status: number, why: string): Promise<void> {
    const params = (req.params ?? {}) as { org?: string; connection?: string };
    const found = params.org && params.connection ? this.find(params.org, params.connection) : undefined;
    if (!found) return;
    const headers = storableHeaders(
      Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), String(v ?? '')])),
    );
    this.metrics.webhookDeliveries.inc({ connector: found.conn.connector, outcome: 'rejected' });
    await recordRejected(forOrganization(this.o.db, found.org.id), {
      organizationId: found.org.id,
      connection: found.conn.name,
      headers,
      reason: `HTTP ${status}: ${why}`,
    }).catch((e) => this.log.error({ err: { message: safeMessage(e) } }, 'could not record a rejected delivery'));
  }

  /** Process a stored delivery (idempotent: upserts and row versions make a second pass change nothing). */
  async processDelivery(id: string, receivedAt?: number): Promise<void> {
    await this.processBatch([{ id, receivedAt }]);
  }

  /**
   * Claim the deliveries in one statement, process those of each connection as one batch (processWebhooks),
   * mark them processed in one statement. A failure other than a record's data (the database down) sends every
   * delivery of the batch back for a retry, each counting its own attempts up to its dead letter.
   */
  private async processBatch(batch: QueuedDelivery[]): Promise<void> {
    // Deliveries are claimed by id, whatever their organization: the inbox's cross-organization path.
    const inbox = crossOrganization(this.o.db, 'webhook inbox: claim and mark deliveries by id');
    await this.receiveFirst.turn();
    const claimed = await claimDeliveries(
      inbox.query,
      batch.map((d) => d.id),
      this.settings.webhookStaleSeconds,
    );
    const receivedAt = new Map(batch.map((d) => [d.id, d.receivedAt]));
    const byPair = new Map<string, Delivery[]>();
    for (const d of claimed) {
      const key = `${d.organizationId}/${d.connection}`;
      const ds = byPair.get(key);
      if (ds) ds.push(d);
      else byPair.set(key, [d]);
    }
    for (const ds of byPair.values()) await this.processClaimed(ds, receivedAt);
  }

  private async processClaimed(ds: Delivery[], receivedAt: Map<string, number | undefined>): Promise<void> {
    const q = crossOrganization(this.o.db, 'webhook inbox: claim and mark deliveries by id').query;
    const first = ds[0] as Delivery;
    const found = this.find(first.organizationId, first.connection);
    if (!found) {
      for (const d of ds)
        await markDelivery(q, d.id, 'failed', { reason: 'the organization or connection is no longer configured' });
      return;
    }
    let connector = found.conn.connector;
    let specVersion = 'unknown';
    const parsed: Array<{ d: Delivery; delivery: AuthenticatedDelivery }> = [];
    try {
      const session = await this.session(found.org, found.conn);
      connector = session.spec.name;
      specVersion = session.spec.version;
      for (const d of ds) {
        try {
          parsed.push({ d, delivery: { payload: JSON.parse(d.body), headers: d.headers } });
        } catch (err) {
          // Stored bodies were JSON when authenticated; one that is not fails alone.
          await this.deliveryFailed(d, err, connector, specVersion);
        }
      }
      const results = await processWebhooks(
        session,
        parsed.map((x) => x.delivery),
        { turn: () => this.receiveFirst.turn() },
      );
      await this.receiveFirst.turn();
      await markProcessed(
        q,
        parsed.map((x, i) => ({ id: x.d.id, result: results[i] })),
      );
      const now = Date.now();
      for (const [i, x] of parsed.entries()) {
        this.metrics.webhookProcessed.inc({ connector, result: 'processed' });
        const dead = results[i]?.deadLetters ?? 0;
        if (dead) this.metrics.syncDeadLetters.inc({ connector }, dead);
        const at = receivedAt.get(x.d.id);
        if (at) this.metrics.webhookLatency.observe({ connector }, (now - at) / 1000);
      }
    } catch (err) {
      // Those that failed parsing are marked already; the others (all, when the session failed) are retried.
      const failed = parsed.length ? parsed.map((x) => x.d) : ds;
      for (const d of failed) await this.deliveryFailed(d, err, connector, specVersion);
    }
  }

  /** A delivery whose processing failed: retried later, or after its last attempt a dead letter. */
  private async deliveryFailed(d: Delivery, err: unknown, connector: string, specVersion: string): Promise<void> {
    const q = crossOrganization(this.o.db, 'webhook inbox: claim and mark deliveries by id').query;
    const reason = safeMessage(err);
    const id = d.id;
    if (d.attempts + 1 >= this.settings.webhookMaxAttempts) {
      // A valid event is never lost: after the last attempt it is a dead letter with its payload and context.
      await transaction(forOrganization(this.o.db, d.organizationId), async (tx) => {
        await insertDeadLetter(tx, {
          organizationId: d.organizationId,
          connector,
          connection: d.connection,
          stream: 'webhook:delivery',
          runId: null,
          errorClass: 'webhook',
          errorCode: isRoutiqError(err) ? err.code : 'RQ6002',
          message: reason,
          details: { inbox_id: id, attempts: d.attempts + 1, headers: d.headers },
          recordKey: id,
          payload: jsonOrText(d.body),
          specVersion,
        });
        await markDelivery(tx, id, 'failed', { reason });
      });
      this.metrics.webhookProcessed.inc({ connector, result: 'failed' });
    } else {
      await markDelivery(q, id, 'received', { reason });
      await this.queue.sendWebhook({ id }, 5 * 2 ** d.attempts).catch(() => undefined);
      this.metrics.webhookProcessed.inc({ connector, result: 'retried' });
    }
    this.log.warn({ inbox_id: id, attempts: d.attempts + 1, reason }, 'webhook processing failed');
  }

  /** Stale deliveries (a processor died, the queue was full) join their connection's queue. */
  private async sweep(): Promise<void> {
    const stale = await staleDeliveries(
      crossOrganization(this.o.db, 'webhook inbox: stale deliveries'),
      this.settings.webhookStaleSeconds,
      500,
    );
    // Not awaited: under load the queue is never idle; what it cannot take now is found again by the next sweep.
    for (const d of stale) this.deliveries.enqueue(`${d.organizationId}/${d.connection}`, d.id);
  }

  private async replay(job: ReplayJob): Promise<unknown> {
    let target: string[] | DeadLetterFilter;
    if (job.ids) target = job.ids;
    else {
      validateFilter(job.filter as DeadLetterFilter);
      target = job.filter as DeadLetterFilter;
    }
    const out = await replayDeadLetters(this.o.db, this.config, target, {
      logger: this.log,
      env: this.o.env,
      actor: job.actor,
    });
    const counts: Record<string, number> = {};
    for (const x of out) counts[x.status] = (counts[x.status] ?? 0) + 1;
    return counts;
  }

  private async ready(): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    try {
      await this.o.db.query('select 1');
      checks.database = 'ok';
    } catch (err) {
      checks.database = safeMessage(err);
    }
    try {
      await assertMigrated(this.o.db);
      checks.migrations = 'ok';
    } catch (err) {
      checks.migrations = safeMessage(err);
    }
    checks.queue = this.queue.running ? 'ok' : 'stopped';
    checks.draining = this.draining ? 'yes' : 'no';
    const ok = !this.draining && Object.entries(checks).every(([k, v]) => k === 'draining' || v === 'ok');
    return { ok, checks };
  }

  private async status(principal?: Principal): Promise<unknown> {
    // A user's token reads its own organization only (under its row-level security scope).
    const org = principal?.kind === 'user' ? principal.organizationId : undefined;
    const report = await getStatus(this.o.db, { config: this.config, org });
    if (principal) report.organizations = report.organizations.filter((x) => mayAccess(principal, x.id));
    const now = Date.now();
    for (const org of report.organizations) {
      for (const c of org.connections) {
        const last = c.streams.map((s) => s.lastSuccessfulSync).filter((x): x is string => !!x);
        // A succeeded run is a success even when no stream kept a checkpoint (ManyChat with nothing pushed).
        if (c.lastRun?.status === 'succeeded' && c.lastRun.finishedAt) last.push(c.lastRun.finishedAt);
        const lastSuccess = last.length ? last.sort().at(-1) : undefined;
        const lag = lastSuccess ? Math.round((now - Date.parse(lastSuccess)) / 1000) : null;
        Object.assign(c, { lastSuccessAt: lastSuccess ?? null, lagSeconds: lag });
        if (c.configured) {
          if (lag !== null) this.metrics.connectionLag.set({ organization: org.id, connection: c.connection }, lag);
          this.metrics.connectionDeadLetters.set({ organization: org.id, connection: c.connection }, c.openDeadLetters);
        }
      }
    }
    return { ...report, instance: { pid: process.pid, activeJobs: this.queue.activeJobs, draining: this.draining } };
  }

  /**
   * Admin authentication of the status page, the API's (AdminAuth): the service token or a Clerk JWT, pasted into
   * the sign-in form (`verify`) or sent as `Authorization: Bearer` (`request`). Sessions are signed with a key
   * derived from the service token.
   */
  private adminGate(): AdminGate {
    return {
      verify: (credential) => this.auth.credential(credential),
      request: (req) => this.auth.authenticate(req),
      sessionKey: () =>
        this.settings.token
          ? createHmac('sha256', this.settings.token).update('routiq-status-session').digest('hex')
          : undefined,
    };
  }

  private routeTable(): RouteDef[] {
    const routes: RouteDef[] = [
      {
        method: 'POST',
        url: WEBHOOK_ROUTE,
        summary:
          "A platform's webhook delivery for one organization's connection (authenticated as its spec declares).",
        admin: false,
        body: { type: 'object', description: 'The platform payload, verbatim.' },
        responses: {
          200: 'A duplicate of a stored delivery (nothing done).',
          202: 'Stored durably; processed right after.',
          400: 'Malformed (not JSON, nested too deep).',
          401: 'Unauthenticated (signature, token, timestamp window).',
          404: 'No such organization or connection.',
          413: 'Body larger than the limit.',
        },
        handler: async (req, reply) => {
          const r = await this.receive(req);
          return reply.code(r.status).send(r.body);
        },
      },
      {
        method: 'GET',
        url: '/health/live',
        summary: 'Liveness: the process answers.',
        admin: false,
        responses: { 200: 'Alive.' },
        handler: async () => ({ status: 'ok' }),
      },
      {
        method: 'GET',
        url: '/health/ready',
        summary: 'Readiness: database reachable, migrations current, queue running; 503 while draining.',
        admin: false,
        responses: { 200: 'Ready.', 503: 'Not ready (the body says which check failed) or draining.' },
        handler: async (_req, reply) => {
          const r = await this.ready();
          return reply.code(r.ok ? 200 : 503).send({ status: r.ok ? 'ok' : 'unavailable', checks: r.checks });
        },
      },
      {
        method: 'GET',
        url: '/metrics',
        summary: 'Prometheus metrics (routiq_ prefix).',
        admin: false,
        responses: { 200: 'Prometheus text format.' },
        handler: async (_req, reply) => {
          await this.status().catch(() => undefined);
          return reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
        },
      },
      {
        method: 'GET',
        url: '/api/status',
        summary: 'Per organization and connection: last success, lag, running runs, errors and open dead letters.',
        admin: true,
        responses: {
          200: 'The status report (a user token: its organization only). Audited.',
          401: 'No or bad token.',
          403: 'A token that names no organization.',
        },
        handler: async (req) => {
          const principal = principalOf(req) as Principal;
          const report = (await this.status(principal)) as {
            organizations: Array<{ id: string; connections: Array<{ openDeadLetters: number }> }>;
          };
          // An admin read of patient-derived data (dead-letter counts, errors): who, which organizations, when.
          await auditTo(this.o.db, {
            actor: principal.actor,
            organizationId: principal.kind === 'user' ? principal.organizationId : null,
            action: 'status.read',
            resourceType: 'status_report',
            count: report.organizations.reduce(
              (n, x) => n + x.connections.reduce((m, c) => m + c.openDeadLetters, 0),
              0,
            ),
            correlationId: correlationOf(req),
            details: {
              organizations: report.organizations.map((x) => x.id),
              cross_organization: principal.kind !== 'user',
            },
          });
          return report;
        },
      },
      {
        method: 'POST',
        url: '/api/syncs',
        summary: 'Queue on-demand syncs: one connection, an organization, or every configured connection.',
        admin: true,
        body: {
          type: 'object',
          properties: {
            organization_id: { type: 'string' },
            connection: { type: 'string' },
            full_refresh: { type: 'boolean' },
          },
        },
        responses: {
          202: 'Queued (a connection with a sync already waiting is listed as already_queued).',
          400: 'Bad body.',
          401: 'No or bad token.',
          403: "Another organization than the token's.",
          404: 'Unknown organization or connection.',
        },
        handler: async (req, reply) => {
          const b = jsonBody(req);
          const principal = principalOf(req);
          let orgId = typeof b.organization_id === 'string' ? b.organization_id : undefined;
          if (principal?.kind === 'user') {
            if (orgId !== undefined && orgId !== principal.organizationId) {
              await this.auth.denied(req, 403, 'another organization', { principal, organizationId: orgId });
              return reply.code(403).send({ error: 'this token may not act on another organization' });
            }
            orgId = principal.organizationId;
          }
          const connName = typeof b.connection === 'string' ? b.connection : undefined;
          const pairs = this.config.organizations
            .filter((o) => orgId === undefined || o.id === orgId)
            .flatMap((o) =>
              o.connections
                .filter((c) => c.enabled && (connName === undefined || c.name === connName))
                .map((c) => ({ o, c })),
            );
          if (!pairs.length) return reply.code(404).send({ error: 'no matching organization or connection' });
          const queued: Array<{ organization_id: string; connection: string; job: string }> = [];
          const already: Array<{ organization_id: string; connection: string }> = [];
          for (const { o, c } of pairs) {
            const id = await this.queue.sendSync({
              organizationId: o.id,
              connection: c.name,
              reason: 'api',
              fullRefresh: b.full_refresh === true,
            });
            if (id) queued.push({ organization_id: o.id, connection: c.name, job: id });
            else already.push({ organization_id: o.id, connection: c.name });
          }
          return reply.code(202).send({ queued, already_queued: already });
        },
      },
      {
        method: 'POST',
        url: '/api/dlq/replay',
        summary: 'Queue a dead-letter replay: by ids, or by filter (organization, connector, stream, class …).',
        admin: true,
        body: {
          type: 'object',
          properties: { ids: { type: 'array', items: { type: 'string' } }, filter: { type: 'object' } },
        },
        responses: {
          202: 'Queued.',
          400: 'Bad body or filter.',
          401: 'No or bad token.',
          403: "A filter naming another organization than the token's.",
          404: "Ids that are not dead letters of the token's organization.",
        },
        handler: async (req, reply) => {
          const b = jsonBody(req);
          const ids = Array.isArray(b.ids) ? b.ids.map(String) : undefined;
          const filter = b.filter && typeof b.filter === 'object' ? (b.filter as Record<string, unknown>) : undefined;
          if (!ids && !filter) return reply.code(400).send({ error: 'give ids or a filter' });
          if (ids?.some((id) => !UUID.test(id)))
            return reply.code(400).send({ error: 'dead-letter ids are UUIDs (routiq dlq list shows them)' });
          const principal = principalOf(req);
          if (principal?.kind === 'user') {
            const refused = await this.scopeReplay(req, principal, ids, filter);
            if (refused) return reply.code(refused.status).send({ error: refused.error });
          }
          if (filter) {
            // As `routiq dlq replay`: a misspelt or empty filter must not replay every organization's letters.
            const unknown = Object.keys(filter).filter((k) => !FILTER_KEYS.has(k));
            if (unknown.length)
              return reply.code(400).send({ error: `unknown filter field(s): ${unknown.join(', ')}` });
            if (!hasSelector(filter as DeadLetterFilter))
              return reply.code(400).send({ error: 'a filter needs at least one selector (org, connector, class, …)' });
            try {
              validateFilter(filter as DeadLetterFilter);
            } catch (err) {
              return reply.code(400).send({ error: safeMessage(err) });
            }
          }
          const job = await this.queue.sendReplay({
            ...(ids ? { ids } : {}),
            ...(filter ? { filter } : {}),
            actor: principal ? `${principal.actor.type}:${principal.actor.id}` : 'service_token:static',
          });
          await auditTo(this.o.db, {
            actor: principal?.actor ?? 'service_token:static',
            organizationId: principal?.organizationId ?? (typeof filter?.org === 'string' ? filter.org : null),
            action: 'dlq.replay.request',
            resourceType: 'sync_error',
            count: ids?.length ?? null,
            correlationId: correlationOf(req),
            details: { job, ...(ids ? { ids } : {}), ...(filter ? { filter } : {}) },
          });
          return reply.code(202).send({ job });
        },
      },
    ];
    routes.push(
      ...dashboardRoutes({
        db: this.o.db,
        gate: this.adminGate(),
        config: () => this.config,
        intervalMinutes: () => this.settings.intervalMinutes,
        env: this.o.env,
        instanceId: this.instances.id,
        logger: this.log,
        onDenied: (req, status, why, principal) => this.auth.denied(req, status, why, { principal }),
      }),
    );
    routes.push({
      method: 'GET',
      url: '/openapi.json',
      summary: 'This API as OpenAPI 3.1.',
      admin: false,
      responses: { 200: 'The OpenAPI document.' },
      handler: async () => openApi(routes, this.settings.version),
    });
    return routes;
  }

  /**
   * A user token replays its own organization's letters only: ids of another organization answer 404 (their
   * existence is not revealed), a filter naming another organization 403; a filter without one gets the token's.
   */
  private async scopeReplay(
    req: FastifyRequest,
    principal: Principal & { kind: 'user' },
    ids: string[] | undefined,
    filter: Record<string, unknown> | undefined,
  ): Promise<{ status: number; error: string } | undefined> {
    if (ids?.length) {
      const own = await forOrganization(this.o.db, principal.organizationId).query<{ id: string }>(
        `select id::text as id from sync_errors where organization_id = ? and id::text in (${ids.map(() => '?').join(', ')})`,
        [principal.organizationId, ...ids],
      );
      const mine = new Set(own.map((r) => r.id));
      const foreign = ids.filter((id) => !mine.has(id));
      if (foreign.length) {
        await this.auth.denied(req, 404, 'dead letters outside the organization', { principal });
        return { status: 404, error: `no dead letter of your organization has id ${foreign.join(', ')}` };
      }
    }
    if (filter) {
      if (filter.org !== undefined && filter.org !== principal.organizationId) {
        await this.auth.denied(req, 403, 'another organization', {
          principal,
          organizationId: typeof filter.org === 'string' ? filter.org : null,
        });
        return { status: 403, error: 'this token may not act on another organization' };
      }
      filter.org = principal.organizationId;
    }
    return undefined;
  }

  /** For tests and the demo: wait until in-line webhook processing is done. */
  async idle(): Promise<void> {
    do {
      await Promise.allSettled([...this.inflight]);
      await this.deliveries.idle();
    } while (this.inflight.size);
  }
}
