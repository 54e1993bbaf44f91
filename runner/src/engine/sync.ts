import { createHash } from 'node:crypto';
import { type UnifiedTarget, unifiedSchema } from '@routiq/schemas';
import { getHook, type HookContext, type HookRequest, type MatchIdentityHook } from '@routiq/sdk';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { resolveSecrets } from '../config/load.ts';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { type Querier, safeMessage, transaction } from '../db/tx.ts';
import { isRoutiqError, RoutiqError } from '../errors/registry.ts';
import { reconcileOrganization } from '../identity/reconcile.ts';
import { sourcePriorityOf } from '../identity/rows.ts';
import { loadConnector } from '../spec/load.ts';
import type { ConnectorSpec, MappingSpec, StreamSpec } from '../spec/types.ts';
import { insertDeadLetter, markPartitionPending, readOnlyDb, storeRawRecords } from './bookkeeping.ts';
import { assertCircuitClosed, credentialFingerprint, recordRunOutcome } from './breaker.ts';
import {
  applyAuth,
  buildConnectionContext,
  type ConnectionContext,
  mergeRequest,
  renderHeaders,
  renderParams,
} from './connection.ts';
import { durationMs } from './durations.ts';
import { type Bindings, evaluate, renderString } from './expr.ts';
import { HttpClient, HttpFailure, type HttpRequest } from './http.ts';
import { paginate } from './paginate.ts';
import { type Limiter, limiterFor } from './ratelimit.ts';
import { PgSlidingWindowLimiter } from './ratelimit-pg.ts';
import { finishRun, type RunHandle, startRun } from './runs.ts';
import { hashRecord, type MappedRow, relink, toIso, writeRows } from './writer.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export { safeMessage, transaction };

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
  durationMs: number;
  error?: string;
  errorCode?: string;
}

export interface ConnectionSummary {
  organizationId: string;
  connection: string;
  connector: string;
  specVersion: string;
  runId: string;
  correlationId: string;
  status: 'succeeded' | 'partial' | 'failed';
  requests: number;
  rateLimited: number;
  durationMs: number;
  streams: StreamSummary[];
  error?: string;
  errorCode?: string;
}

export interface SyncConnectionOptions {
  db: Database;
  config: RoutiqConfig;
  org: OrganizationConfig;
  conn: ConnectionConfig;
  streams?: string[] | undefined;
  fullRefresh?: boolean;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();
function validatorFor(target: UnifiedTarget): ValidateFunction {
  let v = validators.get(target);
  if (!v) {
    ajv ??= addFormats(new Ajv({ allErrors: true, strict: false }));
    v = ajv.compile(unifiedSchema(target));
    validators.set(target, v);
  }
  return v;
}

/** Make sure the organization row exists and matches the config (the config file is the source of truth). */
export async function ensureOrganization(db: Database, org: OrganizationConfig): Promise<void> {
  await db.query(
    `insert into organizations (id, name, default_country, timezone, settings) values (?, ?, ?, ?, ?::jsonb)
     on conflict (id) do update set name = excluded.name, default_country = excluded.default_country, timezone = excluded.timezone,
       settings = excluded.settings, updated_at = now()
     where (organizations.name, organizations.default_country, organizations.timezone, organizations.settings)
       is distinct from (excluded.name, excluded.default_country, excluded.timezone, excluded.settings)`,
    [org.id, org.name, org.defaultCountry, org.timezone, JSON.stringify(org.settings)],
  );
}

type CursorValue = string | number;

function compareCursor(a: CursorValue, b: CursorValue, type: string): number {
  if (type === 'datetime') return Date.parse(String(a)) - Date.parse(String(b));
  return Number(a) - Number(b);
}

function shiftCursor(v: CursorValue, type: string, lookbackMs: number): CursorValue {
  if (!lookbackMs) return v;
  if (type === 'datetime') return new Date(Date.parse(String(v)) - lookbackMs).toISOString();
  if (type === 'unix_seconds') return Number(v) - lookbackMs / 1000;
  return v;
}

function cursorBindings(v: CursorValue | undefined, type: string): Bindings {
  if (v === undefined) return { cursor: undefined, cursor_iso: undefined, cursor_unix: undefined };
  const iso = type === 'integer' ? undefined : (toIso(v) ?? undefined);
  const isoSeconds = iso?.replace(/\.\d{3}Z$/, 'Z');
  const unix = iso ? Math.floor(Date.parse(iso) / 1000) : undefined;
  return {
    cursor: type === 'datetime' ? isoSeconds : v,
    cursor_iso: isoSeconds,
    cursor_unix: type === 'integer' ? v : unix,
  };
}

/** Streams in dependency order: parents before children. */
function orderStreams(spec: ConnectorSpec): StreamSpec[] {
  const out: StreamSpec[] = [];
  const seen = new Set<string>();
  const byName = new Map(spec.streams.map((s) => [s.name, s]));
  const visit = (s: StreamSpec) => {
    if (seen.has(s.name)) return;
    seen.add(s.name);
    if (s.parent?.stream) {
      const p = byName.get(s.parent.stream);
      if (p) visit(p);
    }
    out.push(s);
  };
  spec.streams.forEach(visit);
  return out;
}

/** One pass of one organization's connection: every (selected) stream, then relink. */
export async function syncConnection(o: SyncConnectionOptions): Promise<ConnectionSummary> {
  const started = Date.now();
  const { db, config, org, conn } = o;
  const { spec } = loadConnector(config.connectorsDir, conn.connector);
  const secrets = resolveSecrets(conn, org.id, o.env);
  const cctx = await buildConnectionContext(spec, org, conn, secrets);
  await ensureOrganization(db, org);
  const credential = credentialFingerprint(secrets);
  await assertCircuitClosed(db, org.id, conn.name, credential);
  const run = await startRun(db, {
    organizationId: org.id,
    connector: spec.name,
    connection: conn.name,
    fullRefresh: !!o.fullRefresh,
    specVersion: spec.version,
    staleAfterSeconds: config.runner.staleAfterSeconds,
    heartbeatSeconds: config.runner.heartbeatSeconds,
  });
  const log = o.logger.child({
    correlation_id: run.correlationId,
    org: org.id,
    connection: conn.name,
    connector: spec.name,
  });
  // Budget keys declared as templates (e.g. a group of connections sharing one Cliniko user) are rendered once.
  const budgetKeys = new Map<string, string>();
  const budgetLimits = new Map<string, number>();
  for (const b of spec.rate_limits?.budgets ?? []) {
    // Budget keys often are credentials (a Cliniko key): only a hash is used, in memory and in rate_limit_slots.
    if (b.key) budgetKeys.set(b.name, `${spec.name}:${fingerprint(await renderString(b.key, cctx.bindings))}`);
    budgetLimits.set(b.name, await renderNumber(b.requests, cctx.bindings, `rate_limits.budgets[${b.name}].requests`));
  }
  const dw = spec.rate_limits?.default_wait_ms;
  const defaultWaitMs =
    dw === undefined ? undefined : await renderNumber(dw, cctx.bindings, 'rate_limits.default_wait_ms');
  const engine = new ConnectionRun(o, cctx, run, log, { budgetKeys, budgetLimits, defaultWaitMs });
  log.info({ full_refresh: !!o.fullRefresh }, 'sync started');
  const summaries: StreamSummary[] = [];
  let fatal: { message: string; code: string } | undefined;
  try {
    const wanted = o.streams ?? conn.streams;
    for (const s of orderStreams(spec)) {
      if (s.enabled === false || (wanted && !wanted.includes(s.name))) continue;
      if (fatal) {
        summaries.push({ ...emptySummary(s.name), status: 'skipped' });
        continue;
      }
      const sum = await engine.runStreamOrChildren(s);
      summaries.push(sum);
      if (sum.status === 'failed' && sum.errorCode === 'RQ3003')
        fatal = { message: sum.error ?? 'authentication failed', code: 'RQ3003' };
    }
    await transaction(db, async (q) => {
      await relink(q, org.id, spec.name);
      // Lineage payloads are kept for runner.raw_retention_days (0 keeps none).
      await q(
        `delete from raw_records where organization_id = ? and source = ? and fetched_at < now() - (? || ' days')::interval`,
        [org.id, spec.name, String(config.runner.rawRetentionDays)],
      );
    });
    // People split by arrival order (two identities that only a third one links) are merged afterwards,
    // audited and reversible. Outside any other transaction: the embedded database has one connection.
    if (engine.identitiesChanged > 0) {
      try {
        const r = await reconcileOrganization(db, { organizationId: org.id, actor: 'system' });
        if (r.merges.length || r.skipped.length)
          log.info({ merges: r.merges.length, kept_apart: r.skipped.length }, 'identity reconcile');
      } catch (err) {
        log.warn({ err: { message: safeMessage(err) } }, 'identity reconcile failed; the next sync retries');
      }
    }
  } catch (err) {
    fatal = {
      message: safeMessage(err),
      code: isRoutiqError(err) ? err.code : ((err as { code?: string }).code ?? 'RQ6002'),
    };
    log.error({ err }, 'sync aborted');
  }
  const failed = summaries.filter((s) => s.status === 'failed').length;
  const status: ConnectionSummary['status'] = fatal
    ? 'failed'
    : failed === 0
      ? 'succeeded'
      : failed === summaries.length
        ? 'failed'
        : 'partial';
  const totals = summaries.reduce(
    (a, s) => ({
      records: a.records + s.records,
      written: a.written + s.inserted + s.updated,
      dead: a.dead + s.deadLetters,
    }),
    { records: 0, written: 0, dead: 0 },
  );
  const firstError = fatal ?? summaries.find((s) => s.status === 'failed');
  const errMessage =
    fatal?.message ?? (firstError && 'error' in firstError ? (firstError as StreamSummary).error : undefined);
  const errCode =
    fatal?.code ?? (firstError && 'errorCode' in firstError ? (firstError as StreamSummary).errorCode : undefined);
  await finishRun(db, run, {
    status,
    requests: engine.requests,
    recordsProcessed: totals.records,
    recordsWritten: totals.written,
    deadLetters: totals.dead,
    counts: { streams: summaries, rate_limited: engine.rateLimited },
    errorCode: errCode,
    error: errMessage,
  });
  const breaker = await recordRunOutcome(
    db,
    org.id,
    conn.name,
    { ok: status === 'succeeded', errorCode: errCode, error: errMessage, credential },
    { threshold: config.runner.breakerThreshold, cooldownSeconds: config.runner.breakerCooldownSeconds },
  ).catch(() => undefined);
  if (breaker?.pausedUntil) {
    // An alert: a person may be needed (credentials), or the platform is down for longer than the retries cover.
    log.error(
      { alert: true, paused_until: breaker.pausedUntil, error_code: errCode },
      'connection paused by its circuit breaker',
    );
  }
  const summary: ConnectionSummary = {
    organizationId: org.id,
    connection: conn.name,
    connector: spec.name,
    specVersion: spec.version,
    runId: run.id,
    correlationId: run.correlationId,
    status,
    requests: engine.requests,
    rateLimited: engine.rateLimited,
    durationMs: Date.now() - started,
    streams: summaries,
    ...(errMessage ? { error: errMessage } : {}),
    ...(errCode ? { errorCode: errCode } : {}),
  };
  log.info(
    {
      status,
      requests: engine.requests,
      rate_limited: engine.rateLimited,
      records: totals.records,
      written: totals.written,
      dead_letters: totals.dead,
    },
    'sync finished',
  );
  return summary;
}

function fingerprint(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

async function renderNumber(v: number | string, b: Bindings, where: string): Promise<number> {
  const n = typeof v === 'number' ? v : Number(await renderString(v, b));
  if (!Number.isFinite(n) || n < 0) throw new RoutiqError('RQ1007', `${where} renders to "${String(n)}", not a number`);
  return n;
}

function emptySummary(stream: string): StreamSummary {
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

class ConnectionRun {
  requests = 0;
  identitiesChanged = 0;
  rateLimited = 0;
  private readonly client: HttpClient;
  private readonly spec: ConnectorSpec;
  private readonly matchIdentity: MatchIdentityHook;
  private readonly children: Map<string, StreamSpec[]>;

  constructor(
    private readonly o: SyncConnectionOptions,
    private readonly c: ConnectionContext,
    private readonly run: RunHandle,
    private readonly log: Logger,
    resolved: { budgetKeys: Map<string, string>; budgetLimits: Map<string, number>; defaultWaitMs: number | undefined },
  ) {
    const { budgetKeys, budgetLimits } = resolved;
    this.spec = c.spec;
    const spec = c.spec;
    const minTls = c.conn.minTlsVersion ?? o.config.http.minTlsVersion;
    if (minTls !== o.config.http.minTlsVersion)
      log.warn({ min_tls_version: minTls }, 'TLS minimum lowered for this connection');
    if (c.conn.allowInsecureHttp) log.warn('plain http to non-loopback hosts is allowed for this connection');
    const budgets = (spec.rate_limits?.budgets ?? []).map((b) => ({
      b,
      re: b.match?.path ? new RegExp(b.match.path) : undefined,
    }));
    this.client = new HttpClient({
      minTlsVersion: minTls,
      allowInsecureHttp: c.conn.allowInsecureHttp,
      rules: spec.errors ?? [],
      signals: {
        retryAfterHeader: spec.rate_limits?.retry_after_header,
        resetHeader: spec.rate_limits?.reset_header,
        defaultWaitMs: resolved.defaultWaitMs,
      },
      retry: {
        maxRetries: spec.retry?.max_retries ?? o.config.runner.maxRetries,
        baseDelayMs: spec.retry?.base_delay_ms ?? 500,
        maxDelayMs: spec.retry?.max_delay_ms ?? 60_000,
      },
      deadline: Date.now() + o.config.runner.deadlineSeconds * 1000,
      retryWindowMs: o.config.runner.retryWindowSeconds * 1000,
      limitersFor: (p) =>
        budgets
          .filter(({ re }) => !re || re.test(p))
          .map(({ b }) => {
            const scope = b.scope ?? 'credential';
            const key =
              scope === 'global'
                ? `${spec.name}`
                : scope === 'connection'
                  ? `${c.org.id}/${c.conn.name}`
                  : (budgetKeys.get(b.name) ?? `${spec.name}:${credentialFingerprint(c.secrets)}`);
            return this.limiter(`${spec.name}:${b.name}:${key}`, budgetLimits.get(b.name) ?? 1, b.per_seconds * 1000);
          }),
      onRequest: ({ status, failure }) => {
        this.requests++;
        if (status === 429 || failure === 'rate_limited') this.rateLimited++;
      },
      log,
    });
    const hookName = spec.identity?.match_identity ?? 'identity.match';
    const hook = getHook(hookName, 'match_identity');
    if (!hook) throw new RoutiqError('RQ2000', `identity hook "${hookName}" is not registered`);
    this.matchIdentity = hook;
    this.children = new Map();
    for (const s of spec.streams) {
      if (s.parent?.stream) this.children.set(s.parent.stream, [...(this.children.get(s.parent.stream) ?? []), s]);
    }
  }

  private readonly limiters = new Map<string, Limiter>();

  /** Budgets are shared through PostgreSQL between processes on a server; in-process on the embedded database. */
  private limiter(key: string, limit: number, windowMs: number): Limiter {
    if (this.o.db.kind !== 'postgres' || !this.o.config.runner.sharedRateLimits)
      return limiterFor(key, limit, windowMs);
    const id = `${key}|${limit}|${windowMs}`;
    let l = this.limiters.get(id);
    if (!l) {
      l = new PgSlidingWindowLimiter(this.o.db, key, limit, windowMs);
      this.limiters.set(id, l);
    }
    return l;
  }

  private hookContext(q: Querier, stream?: string): HookContext {
    return {
      organizationId: this.c.org.id,
      connector: this.spec.name,
      ...(stream ? { stream } : {}),
      logger: this.log,
      db: readOnlyDb(q),
      settings: this.c.org.settings,
      defaultCountry: this.c.org.defaultCountry,
    };
  }

  async runStreamOrChildren(s: StreamSpec): Promise<StreamSummary> {
    const started = Date.now();
    const sum = emptySummary(s.name);
    try {
      if (s.parent) await this.runChildStream(s, sum);
      else await this.runPartition(s, '', undefined, sum);
    } catch (err) {
      sum.status = 'failed';
      sum.error = safeMessage(err);
      sum.errorCode = (err as { code?: string }).code ?? 'RQ6002';
      this.log.error(
        { stream: s.name, err: { message: sum.error, code: sum.errorCode } },
        'stream failed; its checkpoint is kept',
      );
      if (err instanceof HttpFailure && err.failureClass === 'permanent') {
        await this.deadLetter(
          null,
          s.name,
          'permanent',
          err.code,
          err.message,
          { status: err.status, body: err.responseBody },
          null,
        );
        sum.deadLetters++;
      }
    }
    sum.durationMs = Date.now() - started;
    return sum;
  }

  /** A child stream works through its durable list of pending partitions (parents that changed). */
  private async runChildStream(s: StreamSpec, sum: StreamSummary): Promise<void> {
    const db = this.o.db;
    const key = [this.c.org.id, this.c.conn.name, s.name];
    // Partitions that failed in an earlier run get another chance now.
    await db.query(
      "update sync_state set status = 'pending' where organization_id = ? and connector = ? and stream = ? and status = 'error'",
      key,
    );
    const limit = pLimit(this.o.config.runner.concurrency);
    let fatal: unknown;
    let after = '';
    for (;;) {
      const rows = await db.query<{ partition: string; parent: unknown }>(
        `select partition, metadata->'parent' as parent from sync_state
         where organization_id = ? and connector = ? and stream = ? and status = 'pending' and partition > ? order by partition limit 200`,
        [...key, after],
      );
      if (!rows.length || fatal) break;
      after = (rows[rows.length - 1] as { partition: string }).partition;
      await Promise.all(
        rows.map((r) =>
          limit(async () => {
            if (fatal) return;
            const parent = typeof r.parent === 'string' ? JSON.parse(r.parent) : r.parent;
            try {
              await this.runPartition(s, r.partition, parent, sum);
              sum.partitions++;
            } catch (err) {
              if (err instanceof HttpFailure && err.failureClass === 'permanent') {
                // One parent's children are unreachable (e.g. 404): dead-letter it, keep going with the others.
                await this.deadLetter(
                  null,
                  s.name,
                  'permanent',
                  err.code,
                  err.message,
                  { status: err.status, body: err.responseBody, partition: r.partition },
                  r.partition,
                );
                await db.query(
                  "update sync_state set status = 'error', errors_count = errors_count + 1 where organization_id = ? and connector = ? and stream = ? and partition = ?",
                  [...key, r.partition],
                );
                sum.deadLetters++;
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

  private async runPartition(s: StreamSpec, partition: string, parent: unknown, sum: StreamSummary): Promise<void> {
    const db = this.o.db;
    const inc = s.incremental;
    const stateKey = [this.c.org.id, this.c.conn.name, s.name, partition];
    const st = await db.query<{ cursor: { value: CursorValue } | string | null }>(
      'select cursor from sync_state where organization_id = ? and connector = ? and stream = ? and partition = ?',
      stateKey,
    );
    const rawCursor = st[0]?.cursor;
    const stored = (typeof rawCursor === 'string' ? JSON.parse(rawCursor) : rawCursor)?.value as
      | CursorValue
      | undefined;
    let startCursor: CursorValue | undefined = this.o.fullRefresh ? undefined : stored;
    if (startCursor === undefined && inc?.start) {
      const v = await renderString(inc.start, this.c.bindings);
      if (v) startCursor = v;
    }
    const lookback = durationMs(inc?.lookback);
    const effective = startCursor === undefined || !inc ? undefined : shiftCursor(startCursor, inc.type, lookback);
    const bindings: Bindings = {
      ...this.c.bindings,
      parent,
      run_started_at: new Date().toISOString(),
      ...cursorBindings(effective, inc?.type ?? 'datetime'),
    };
    let maxCursor: CursorValue | undefined = startCursor;
    let reachedOld = false;
    const pager = paginate({
      pagination: s.pagination,
      client: this.client,
      records: s.records,
      cursor: s.pagination.type === 'id_window' ? startCursor : undefined,
      bindings,
      build: (extra, follow) => this.buildRequest(s, bindings, effective !== undefined, extra, follow),
      stopAfter: () => reachedOld,
    });
    for await (const page of pager) {
      sum.pages++;
      let records = page.records;
      if (s.hooks?.after_fetch) {
        const h = getHook(s.hooks.after_fetch, 'after_fetch');
        if (h) records = await h(records, this.hookContext(db.query.bind(db) as Querier, s.name));
      }
      let pageMax: CursorValue | undefined;
      if (inc) {
        const kept: unknown[] = [];
        for (const r of records) {
          const v = (await evaluate(inc.cursor_field, r)) as CursorValue | undefined;
          if (v !== undefined && v !== null && v !== '') {
            if (pageMax === undefined || compareCursor(v, pageMax, inc.type) > 0) pageMax = v;
            if (effective !== undefined && compareCursor(v, effective, inc.type) < 0) {
              if (inc.stop_when_older) reachedOld = true;
              if (inc.client_filter || inc.stop_when_older) continue;
            }
          }
          kept.push(r);
        }
        records = kept;
      }
      sum.records += records.length;
      const { rows, dead, parents } = await this.mapRecords(s, records, parent);
      if (
        pageMax !== undefined &&
        (maxCursor === undefined || compareCursor(pageMax, maxCursor, inc?.type ?? 'datetime') > 0)
      )
        maxCursor = pageMax;
      const checkpointNow = inc?.order === 'asc';
      const batchSize = this.o.config.runner.batchSize;
      await transaction(db, async (q) => {
        for (let i = 0; i < Math.max(rows.length, 1); i += batchSize) {
          const chunk = rows.slice(i, i + batchSize);
          if (!chunk.length) break;
          const res = await writeRows(q, this.writeContext(s.name), chunk);
          sum.inserted += res.inserted;
          sum.updated += res.updated;
          sum.unchanged += res.unchanged;
          this.identitiesChanged += res.changed.get('patient_identities')?.size ?? 0;
          await this.markChildren(q, s, parents, res.changed);
        }
        for (const d of dead) {
          // Child-stream letters keep their partition so a replay can rebuild $parent.
          const details = partition ? { ...(d.details as object), partition } : d.details;
          await this.deadLetterQ(q, d.record, s.name, d.cls, d.code, d.message, details, d.key);
        }
        sum.deadLetters += dead.length;
        await this.storeRaw(q, s.name, parents);
        if (checkpointNow && maxCursor !== undefined)
          await this.saveCursor(q, stateKey, maxCursor, 'running', records.length);
      });
    }
    // End of stream/partition: the cursor for unsorted or newest-first feeds is promoted only now.
    await transaction(db, (q) => this.saveCursor(q, stateKey, maxCursor, 'idle', 0, true));
  }

  private async buildRequest(
    s: StreamSpec,
    b: Bindings,
    hasCursor: boolean,
    extra: Array<[string, string]>,
    follow?: string,
  ): Promise<HttpRequest> {
    const req = mergeRequest(this.spec, s.request);
    const headers: Record<string, string> = {};
    const params: Array<[string, string]> = [];
    let url: string;
    if (follow) {
      url = follow;
    } else {
      const path = req.path ? await renderString(req.path, b) : '';
      url = /^https?:\/\//.test(path) ? path : `${this.c.baseUrl}${path.startsWith('/') || !path ? '' : '/'}${path}`;
      await renderParams(req.params, b, params);
      if (hasCursor && s.incremental?.send?.params) await renderParams(s.incremental.send.params, b, params);
      const overridden = new Set(extra.map(([k]) => k));
      for (let i = params.length - 1; i >= 0; i--)
        if (overridden.has((params[i] as [string, string])[0])) params.splice(i, 1);
      params.push(...extra);
    }
    await renderHeaders(req.headers, b, headers);
    if (hasCursor && s.incremental?.send?.headers) await renderHeaders(s.incremental.send.headers, b, headers);
    await applyAuth(this.spec.auth, b, headers, params);
    let out: HttpRequest = {
      method: req.method ?? 'GET',
      url,
      headers,
      searchParams: params,
      ...(req.body !== undefined ? { body: req.body } : {}),
      timeoutMs: req.timeout_ms ?? this.o.config.http.timeoutMs,
    };
    if (s.hooks?.before_request) {
      const h = getHook(s.hooks.before_request, 'before_request');
      if (h) {
        const hr: HookRequest = {
          method: out.method,
          url: out.url,
          headers: out.headers,
          searchParams: out.searchParams,
          ...(out.body !== undefined ? { body: out.body } : {}),
        };
        const r = await h(hr, this.hookContext(this.o.db.query.bind(this.o.db) as Querier, s.name));
        out = { ...out, ...r };
      }
    }
    return out;
  }

  private writeContext(stream: string) {
    return {
      organizationId: this.c.org.id,
      source: this.spec.name,
      specVersion: this.spec.version,
      stream,
      runId: this.run.id,
      defaultCountry: this.c.org.defaultCountry,
      matchIdentity: this.matchIdentity,
      hookContext: (q: Querier) => this.hookContext(q, stream),
      sourcePriority: sourcePriorityOf(this.c.org.settings),
    };
  }

  /** Map raw records to unified rows; a record that fails goes to the dead-letter list, the others go on. */
  async mapRecords(s: StreamSpec, records: unknown[], parent: unknown) {
    return mapRecords(
      s.name,
      s.map,
      s.primary_key,
      records,
      { ...this.c.bindings, parent },
      s.hooks?.after_map,
      (q) => this.hookContext(q, s.name),
      this.o.db,
    );
  }

  private async markChildren(
    q: Querier,
    s: StreamSpec,
    parents: ParentInfo[],
    changed: Map<UnifiedTarget, Set<string>>,
  ): Promise<void> {
    const kids = this.children.get(s.name);
    if (!kids?.length) return;
    for (const child of kids) {
      for (const p of parents) {
        const isChanged =
          this.o.fullRefresh ||
          child.parent?.only_changed === false ||
          p.produced.some(([t, id]) => changed.get(t)?.has(id));
        if (!isChanged) continue;
        const k = await evaluate(child.parent?.key ?? 'id', p.raw);
        if (k === undefined || k === null) continue;
        await markPartitionPending(
          q,
          { organizationId: this.c.org.id, connection: this.c.conn.name, stream: child.name, partition: String(k) },
          p.raw,
        );
        if (this.o.fullRefresh) {
          await q(
            'update sync_state set cursor = null where organization_id = ? and connector = ? and stream = ? and partition = ?',
            [this.c.org.id, this.c.conn.name, child.name, String(k)],
          );
        }
      }
    }
  }

  private async saveCursor(
    q: Querier,
    key: string[],
    cursor: CursorValue | undefined,
    status: string,
    processed: number,
    done = false,
  ): Promise<void> {
    await q(
      `insert into sync_state (organization_id, connector, stream, partition, cursor, status, last_sync_timestamp, last_successful_sync, records_processed)
       values (?, ?, ?, ?, ?::jsonb, ?, now(), ${done ? 'now()' : 'null'}, ?)
       on conflict (organization_id, connector, stream, partition) do update set
         cursor = coalesce(excluded.cursor, sync_state.cursor), status = excluded.status, last_sync_timestamp = now(),
         last_successful_sync = ${done ? 'now()' : 'sync_state.last_successful_sync'},
         records_processed = sync_state.records_processed + excluded.records_processed, updated_at = now()`,
      [...key, cursor === undefined ? null : JSON.stringify({ value: cursor }), status, processed],
    );
  }

  private async storeRaw(q: Querier, stream: string, parents: ParentInfo[]): Promise<void> {
    if (this.o.config.runner.rawRetentionDays <= 0) return;
    const byKey = new Map<string, { key: string; hash: string; raw: unknown }>();
    for (const p of parents) if (p.key !== null) byKey.set(p.key, { key: p.key, hash: p.hash, raw: p.raw });
    await storeRawRecords(
      q,
      { organizationId: this.c.org.id, source: this.spec.name, stream, specVersion: this.spec.version },
      [...byKey.values()],
    );
  }

  private async deadLetter(
    record: unknown,
    stream: string,
    cls: string,
    code: string,
    message: string,
    details: unknown,
    key: string | null,
  ): Promise<void> {
    await transaction(this.o.db, (q) => this.deadLetterQ(q, record, stream, cls, code, message, details, key));
  }

  private async deadLetterQ(
    q: Querier,
    record: unknown,
    stream: string,
    cls: string,
    code: string,
    message: string,
    details: unknown,
    key: string | null,
  ): Promise<void> {
    await insertDeadLetter(q, {
      organizationId: this.c.org.id,
      connector: this.spec.name,
      connection: this.c.conn.name,
      stream,
      runId: this.run.id,
      errorClass: cls,
      errorCode: code,
      message,
      details,
      recordKey: key,
      payload: record,
      specVersion: this.spec.version,
    });
  }
}

export interface ParentInfo {
  raw: unknown;
  key: string | null;
  hash: string;
  produced: Array<[UnifiedTarget, string]>;
}

export interface DeadRecord {
  record: unknown;
  key: string | null;
  cls: 'mapping' | 'validation' | 'hook';
  code: string;
  message: string;
  details: unknown;
}

/** Shared by sync, webhooks and DLQ replay: JSONata mapping + unified-schema validation. */
export async function mapRecords(
  stream: string,
  maps: MappingSpec[],
  primaryKey: string | undefined,
  records: unknown[],
  bindings: Bindings,
  afterMap: string | undefined,
  hookCtx: (q: Querier) => HookContext,
  db: Database,
): Promise<{ rows: MappedRow[]; dead: DeadRecord[]; parents: ParentInfo[] }> {
  const rows: MappedRow[] = [];
  const dead: DeadRecord[] = [];
  const parents: ParentInfo[] = [];
  for (const raw of records) {
    const hash = hashRecord(raw);
    const pk = await evaluate(primaryKey ?? 'id', raw).catch(() => undefined);
    const key = pk === undefined || pk === null ? null : String(pk);
    const produced: MappedRow[] = [];
    let failed: DeadRecord | undefined;
    for (const m of maps) {
      try {
        if (m.when && !(await evaluate(m.when, raw, bindings))) continue;
        const input = m.input ? await evaluate(m.input, raw, bindings) : raw;
        if (input === undefined || input === null) continue;
        const out = await evaluate(m.expression, input, bindings);
        const list = out === undefined || out === null ? [] : Array.isArray(out) ? out : [out];
        for (const row of list) {
          const clean = stripUndefined(row);
          const v = validatorFor(m.target);
          // patch rows carry only the fields they change
          const ok =
            (m.mode ?? 'upsert') === 'patch'
              ? typeof clean.external_id === 'string' && clean.external_id !== ''
              : v(clean);
          if (!ok) {
            const errs = (v.errors ?? []).map((e) => `${e.instancePath || '(row)'} ${e.message}`);
            failed = {
              record: raw,
              key,
              cls: 'validation',
              code: 'RQ5002',
              message: `${stream} → ${m.target}: ${errs.join('; ') || 'external_id missing'}`,
              details: { target: m.target, row: clean, errors: errs },
            };
            break;
          }
          produced.push({ target: m.target, mode: m.mode ?? 'upsert', row: clean, sourceHash: hash });
        }
      } catch (err) {
        failed = {
          record: raw,
          key,
          cls: 'mapping',
          code: 'RQ5001',
          message: `${stream} → ${m.target}: ${(err as Error).message}`,
          details: { target: m.target, position: (err as { position?: number }).position },
        };
      }
      if (failed) break;
    }
    if (failed) {
      dead.push(failed);
      continue;
    }
    let final = produced;
    if (afterMap) {
      const h = getHook(afterMap, 'after_map');
      if (h) {
        try {
          const r = await h(
            produced.map((p) => ({ target: p.target, row: p.row })),
            hookCtx(db.query.bind(db) as Querier),
          );
          final = r.map((x) => ({
            target: x.target as UnifiedTarget,
            mode: 'upsert' as const,
            row: x.row,
            sourceHash: hash,
          }));
        } catch (err) {
          dead.push({
            record: raw,
            key,
            cls: 'hook',
            code: 'RQ5003',
            message: `${stream}: hook ${afterMap} failed: ${(err as Error).message}`,
            details: { stack: (err as Error).stack },
          });
          continue;
        }
      }
    }
    rows.push(...final);
    parents.push({ raw, key, hash, produced: final.map((p) => [p.target, String(p.row.external_id)]) });
  }
  return { rows, dead, parents };
}

function stripUndefined(row: unknown): Record<string, unknown> {
  if (!row || typeof row !== 'object' || Array.isArray(row)) return { __invalid: row };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row as Record<string, unknown>)) if (v !== undefined) out[k] = v;
  return out;
}
