/**
 * The connector workbench's test read: the engine's own request building, pagination, extraction, incremental
 * filtering, JSONata mappings and validation over a few pages of each selected stream, with nothing written to the
 * database. It reports what a sync would do: sample raw records beside their mapped rows, failures with the record
 * and the expression behind them, the cursor a sync would save and the requests the next (incremental) run makes.
 */
import { getHook, type HookContext } from '@routiq/sdk';
import type { Logger } from 'pino';
import { resolveSecrets } from '../config/load.ts';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { readOnlyQuerier, safeMessage } from '../db/tx.ts';
import { createClient, type RequestCounters } from '../engine/client.ts';
import { buildConnectionContext, type ConnectionContext } from '../engine/connection.ts';
import {
  type CursorType,
  type CursorValue,
  compareCursor,
  cursorBindings,
  filterPageByCursor,
  pendingPartitions,
  readCursor,
  shiftCursor,
} from '../engine/cursor.ts';
import { durationMs } from '../engine/durations.ts';
import { type Bindings, evaluate, renderString } from '../engine/expr.ts';
import { type HttpClient, HttpFailure, type HttpObserver, type HttpRequest } from '../engine/http.ts';
import { type DeadRecord, mapRecords, type ParentInfo } from '../engine/map.ts';
import { paginate } from '../engine/paginate.ts';
import { buildRequest } from '../engine/request.ts';
import { RoutiqError } from '../errors/registry.ts';
import { type BindingArea, scopeBindings } from '../spec/bindings.ts';
import { loadConnectorHooks } from '../spec/hooks-file.ts';
import { loadConnector } from '../spec/load.ts';
import type { ConnectorSpec, PaginationSpec, StreamSpec } from '../spec/types.ts';
import {
  type CursorReport,
  emptyTotals,
  type NextRequest,
  type RecordFailure,
  type ShownRequest,
  type StreamReport,
  type TargetKind,
  type Totals,
  type Warning,
  type WorkbenchEvent,
  type WorkbenchReport,
} from './report.ts';
import { type CredentialNames, credentialNames, scrubHeaders, scrubUrl, scrubValue } from './scrub.ts';
import { recordsPathWarning, unproducedTargetWarnings } from './warnings.ts';

export interface WorkbenchTarget {
  kind: TargetKind;
  /** For people: "org_demo_1 / chatwoot", "chatwoot simulator (seed 7)", "connectors/chatwoot/fixtures/…". */
  label: string;
  org: OrganizationConfig;
  conn: ConnectionConfig;
  /** Where the connection's `${ENV}` secrets are read. */
  env: NodeJS.ProcessEnv;
  /** Partitions of webhook-fed streams to read (a simulator knows ids that only pushes tell a real connection). */
  partitions?: Record<string, Array<{ partition: string; parent: unknown }>>;
}

/** What a recorder needs to keep credentials and the connection's origin out of a recording. */
export interface RecordingContext {
  origin: string;
  credentials: CredentialNames;
  secrets: string[];
}

export interface TestReadOptions {
  /** connectorsDir, HTTP and runner settings. */
  config: RoutiqConfig;
  target: WorkbenchTarget;
  /** Streams to read (default: every enabled stream); the parents they need are read too. */
  streams?: string[] | undefined;
  /** Read-only: stored cursors, webhook-fed partitions, hooks' queries. Nothing is written through it. */
  db?: Database | undefined;
  /** Start from the stored cursors (a test of the next incremental run) instead of from the beginning. */
  incremental?: boolean;
  /** Pages per stream or partition (default 3). */
  maxPages?: number;
  /** Partitions of each child stream (default 3). */
  maxPartitions?: number;
  /** Sample records and failures kept per stream (default 5). */
  samples?: number;
  logger: Logger;
  onEvent?: ((e: WorkbenchEvent) => void) | undefined;
  /** Also sees every exchange (the recorder), once the connection is resolved. */
  observe?: ((c: RecordingContext) => HttpObserver) | undefined;
  signal?: AbortSignal | undefined;
}

/** Streams in dependency order, the parents of selected child streams included. */
function plan(spec: ConnectorSpec, wanted: string[] | undefined): Array<{ s: StreamSpec; asParent: boolean }> {
  const byName = new Map(spec.streams.map((s) => [s.name, s]));
  for (const w of wanted ?? []) {
    if (!byName.has(w))
      throw new RoutiqError(
        'RQ6001',
        `connector ${spec.name} has no stream "${w}" (streams: ${spec.streams.map((s) => s.name).join(', ')})`,
      );
  }
  const out: Array<{ s: StreamSpec; asParent: boolean }> = [];
  const seen = new Set<string>();
  const visit = (s: StreamSpec, asParent: boolean) => {
    if (seen.has(s.name)) return;
    const p = s.parent?.stream ? byName.get(s.parent.stream) : undefined;
    if (p) visit(p, true);
    seen.add(s.name);
    out.push({ s, asParent });
  };
  for (const s of spec.streams) {
    if (wanted ? wanted.includes(s.name) : s.enabled) visit(s, false);
  }
  return out;
}

/** A hook context for a test read: the database read-only when there is one, else a query explains why not. */
function hookContextFor(
  cctx: ConnectionContext,
  db: Database | undefined,
  log: Logger,
  stream: string,
  state: { cursor?: CursorValue | undefined; partition?: string; parent?: unknown },
): HookContext {
  return {
    organizationId: cctx.org.id,
    connector: cctx.spec.name,
    stream,
    logger: log,
    db: {
      query: db
        ? readOnlyQuerier(db)
        : async () => {
            throw new RoutiqError(
              'RQ6101',
              'this test read has no database (simulator or fixtures target): a hook cannot query it',
            );
          },
    },
    settings: cctx.org.settings,
    defaultCountry: cctx.org.defaultCountry,
    ...(state.cursor !== undefined ? { cursor: state.cursor } : {}),
    ...(state.partition ? { partition: state.partition } : {}),
    ...(state.parent !== undefined ? { parent: state.parent } : {}),
  };
}

export async function testRead(o: TestReadOptions): Promise<WorkbenchReport> {
  const started = Date.now();
  const maxPages = o.maxPages ?? 3;
  const maxPartitions = o.maxPartitions ?? 3;
  const nSamples = o.samples ?? 5;
  const { spec } = loadConnector(o.config.connectorsDir, o.target.conn.connector);
  await loadConnectorHooks(o.config.connectorsDir, o.target.conn.connector);
  const secrets = resolveSecrets(o.target.conn, o.target.org.id, o.target.env);
  const cctx = await buildConnectionContext(spec, o.target.org, o.target.conn, secrets);
  const log = o.logger.child({ org: o.target.org.id, connection: o.target.conn.name, workbench: true });
  const names = credentialNames(spec);
  const secretValues = Object.values(secrets);
  const extra = o.observe?.({ origin: new URL(cctx.baseUrl).origin, credentials: names, secrets: secretValues });
  const bindings = (area: BindingArea, extra: Bindings = {}) => scopeBindings(area, { ...cctx.bindings, ...extra });
  const totals: Totals = emptyTotals();
  const snapshot = () => ({ ...totals });
  let current = '';
  const emit = (e: WorkbenchEvent) => o.onEvent?.(e);
  const observer: HttpObserver = {
    onExchange: (x) => {
      extra?.onExchange?.(x);
      emit({
        type: 'request',
        stream: current,
        method: x.request.method,
        url: scrubUrl(x.sentUrl, names, secretValues),
        status: x.status,
        ms: x.ms,
        totals: snapshot(),
      });
    },
    onRetry: (x) => {
      extra?.onRetry?.(x);
      totals.retries++;
      if (x.failure === 'rate_limited') totals.rateLimitWaits++;
      totals.waitedMs += x.waitMs;
      emit({
        type: 'retry',
        stream: current,
        failure: x.failure,
        waitMs: x.waitMs,
        attempt: x.attempt,
        totals: snapshot(),
      });
    },
  };
  const counters: RequestCounters = { requests: 0, rateLimited: 0 };
  const report: WorkbenchReport = {
    connector: spec.name,
    specVersion: spec.version,
    target: {
      kind: o.target.kind,
      label: o.target.label,
      organization: o.target.org.id,
      connection: o.target.conn.name,
    },
    mode: o.incremental ? 'incremental' : 'full',
    ok: true,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    limits: { maxPages, maxPartitions, samples: nSamples },
    totals,
    streams: [],
    warnings: [],
  };
  const show = (r: HttpRequest): ShownRequest => ({
    method: r.method,
    url: scrubUrl(appendParams(r.url, r.searchParams), names, secretValues),
    headers: scrubHeaders(r.headers, names, secretValues),
    ...(r.body !== undefined ? { body: scrubValue(r.body, secretValues) } : {}),
  });
  let client: HttpClient;
  try {
    client = await createClient(
      { spec, config: o.config, conn: cctx.conn, org: cctx.org, log, secrets, bindings },
      counters,
      observer,
    );
  } catch (err) {
    report.ok = false;
    report.error = { code: (err as { code?: string }).code ?? 'RQ6002', message: safeMessage(err) };
    report.durationMs = Date.now() - started;
    return report;
  }
  /** Raw records of each parent stream read here (the partitions of its children). */
  const parentRecords = new Map<string, unknown[]>();
  const ctx: ReadContext = {
    o,
    spec,
    cctx,
    client,
    log,
    bindings,
    show,
    totals,
    maxPages,
    nSamples,
    warnings: report.warnings,
    names,
    emit: (e) => emit({ ...e, totals: snapshot() } as WorkbenchEvent),
  };
  for (const { s, asParent } of plan(spec, o.streams)) {
    if (o.signal?.aborted) break;
    current = s.name;
    emit({ type: 'stream', stream: s.name, totals: snapshot() });
    const rep = newStreamReport(s, asParent);
    const requestsBefore = counters.requests;
    let partitions: Array<{ partition: string; parent: unknown }> = [{ partition: '', parent: undefined }];
    if (s.parent?.stream) {
      const keyB = bindings('parent_key');
      partitions = [];
      for (const raw of parentRecords.get(s.parent.stream) ?? []) {
        if (partitions.length >= maxPartitions) break;
        const k = await evaluate(s.parent.key ?? 'id', raw, keyB).catch(() => undefined);
        if (k !== undefined && k !== null && k !== '') partitions.push({ partition: String(k), parent: raw });
      }
      if (!partitions.length) {
        rep.status = 'skipped';
        rep.note = `no ${s.parent.stream} records were read, so there is no partition to read`;
      }
    } else if (s.parent?.webhook) {
      const given = o.target.partitions?.[s.name]?.slice(0, maxPartitions);
      partitions = given?.length
        ? given
        : o.db
          ? await pendingPartitions(
              o.db.query.bind(o.db),
              { organizationId: cctx.org.id, connection: cctx.conn.name, stream: s.name },
              '',
              maxPartitions,
            )
          : [];
      if (!partitions.length) {
        rep.status = 'skipped';
        rep.note = `fed by pushed "${s.parent.webhook}" webhook events: ${o.db ? 'no pending partitions in the database' : 'a test read without a database has none'}`;
      }
    }
    const kept: unknown[] = [];
    for (const p of partitions) {
      try {
        await readPartition(ctx, s, rep, p.partition, p.parent, kept);
      } catch (err) {
        rep.status = 'failed';
        rep.error = {
          code: (err as { code?: string }).code ?? 'RQ6002',
          message: safeMessage(err),
          ...(err instanceof HttpFailure && err.status !== undefined ? { status: err.status } : {}),
          ...(err instanceof HttpFailure && err.responseBody ? { body: err.responseBody.slice(0, 500) } : {}),
        };
        break;
      }
    }
    if (s.parent?.stream === undefined && rep.partitions[0]?.cursor) rep.cursor = rep.partitions[0].cursor;
    parentRecords.set(s.name, kept);
    rep.requests = counters.requests - requestsBefore;
    if (rep.status !== 'skipped') {
      rep.nextRun = await nextRunRequests(ctx, s, rep, partitions).catch((err) => [
        { method: '', url: '', headers: {}, note: `could not be rendered: ${safeMessage(err)}` },
      ]);
      if (rep.status === 'ok') report.warnings.push(...unproducedTargetWarnings(s, rep));
    }
    // A top-level stream is its one partition: its cursor is the stream's.
    if (!s.parent) rep.partitions = [];
    report.streams.push(rep);
    emit({ type: 'stream_done', stream: rep, totals: snapshot() });
  }
  totals.requests = counters.requests;
  report.ok = report.streams.every((s) => s.status !== 'failed') && totals.failures === 0;
  report.durationMs = Date.now() - started;
  return report;
}

interface ReadContext {
  o: TestReadOptions;
  spec: ConnectorSpec;
  cctx: ConnectionContext;
  client: HttpClient;
  log: Logger;
  bindings: (area: BindingArea, extra?: Bindings) => Bindings;
  show: (r: HttpRequest) => ShownRequest;
  totals: Totals;
  maxPages: number;
  nSamples: number;
  warnings: Warning[];
  names: CredentialNames;
  emit: (e: { type: 'page'; stream: string; partition: string; page: number; records: number }) => void;
}

function newStreamReport(s: StreamSpec, asParent: boolean): StreamReport {
  const parent = s.parent?.stream ?? (s.parent?.webhook ? `webhook:${s.parent.webhook}` : undefined);
  return {
    stream: s.name,
    ...(parent ? { parent } : {}),
    ...(asParent ? { asParent } : {}),
    status: 'ok',
    requests: 0,
    pages: 0,
    records: 0,
    rows: {},
    truncated: false,
    partitions: [],
    samples: [],
    failures: [],
    failureCount: 0,
    nextRun: [],
  };
}

/** One stream or partition: the same steps as a sync (stream.ts), minus every write. */
async function readPartition(
  ctx: ReadContext,
  s: StreamSpec,
  rep: StreamReport,
  partition: string,
  parent: unknown,
  kept: unknown[],
): Promise<void> {
  const { o, cctx } = ctx;
  const inc = s.incremental;
  const cursorType: CursorType = inc?.type ?? 'datetime';
  const stored =
    o.db && inc
      ? await readCursor(o.db.query.bind(o.db), {
          organizationId: cctx.org.id,
          connection: cctx.conn.name,
          stream: s.name,
          partition,
        })
      : undefined;
  let startCursor: CursorValue | undefined = o.incremental ? stored : undefined;
  const runStartedAt = new Date().toISOString();
  if (startCursor === undefined && inc?.start) {
    const v = await renderString(
      inc.start,
      ctx.bindings('incremental_start', { parent, run_started_at: runStartedAt }),
    );
    if (v) startCursor = v;
  }
  const lookback = durationMs(inc?.lookback);
  const effective = startCursor === undefined || !inc ? undefined : shiftCursor(startCursor, cursorType, lookback);
  const values: Bindings = { parent, run_started_at: runStartedAt, ...cursorBindings(effective, cursorType) };
  const data = ctx.bindings('data', { parent });
  const hookState: { cursor?: CursorValue | undefined; partition?: string; parent?: unknown } = {
    cursor: effective,
    ...(partition ? { partition } : {}),
    ...(parent !== undefined ? { parent } : {}),
  };
  const hookContext = () => hookContextFor(cctx, o.db, ctx.log, s.name, hookState);
  const requestOpts = {
    c: cctx,
    stream: s,
    bindings: ctx.bindings('request', values),
    hasCursor: effective !== undefined,
    timeoutMs: o.config.http.timeoutMs,
    hookContext,
  };
  let maxCursor: CursorValue | undefined = startCursor;
  let reachedOld = false;
  let pages = 0;
  const pager = paginate({
    pagination: s.pagination,
    client: ctx.client,
    records: s.records,
    dataBindings: data,
    cursor: s.pagination.type === 'id_window' ? startCursor : undefined,
    bindings: ctx.bindings('pagination', values),
    build: (query, follow, page, body) => buildRequest(requestOpts, { query, follow, page, ...(body ? { body } : {}) }),
    stopAfter: () => reachedOld || pages >= ctx.maxPages,
  });
  const mapInput = {
    stream: s.name,
    maps: s.map,
    primaryKey: s.primary_key,
    bindings: ctx.bindings('mapping', { parent }),
    afterMap: s.hooks?.after_map,
    hookContext,
    requireKey: true,
  };
  let records = 0;
  for await (const page of pager) {
    if (o.signal?.aborted) break;
    pages++;
    rep.pages++;
    ctx.totals.pages++;
    rep.firstRequest ??= ctx.show(page.request);
    if (!page.records.length) {
      const w = await recordsPathWarning(s, page.response.body, page.response.bodyText, data);
      if (w && !ctx.warnings.some((x) => x.code === w.code && x.stream === w.stream)) ctx.warnings.push(w);
    }
    let recs = page.records;
    if (s.hooks?.after_fetch) {
      const h = getHook(s.hooks.after_fetch, 'after_fetch');
      if (h) recs = await h(recs, hookContext());
    }
    let pageMax: CursorValue | undefined;
    if (inc) {
      const f = await filterPageByCursor(inc, recs, data, effective);
      recs = f.records;
      pageMax = f.pageMax;
      if (f.reachedOld) reachedOld = true;
    }
    if (pageMax !== undefined && (maxCursor === undefined || compareCursor(pageMax, maxCursor, cursorType) > 0))
      maxCursor = pageMax;
    if (inc?.order === 'asc') hookState.cursor = maxCursor;
    records += recs.length;
    rep.records += recs.length;
    ctx.totals.records += recs.length;
    const { dead, parents } = await mapRecords(mapInput, recs);
    collect(ctx, s, rep, partition, parents, dead);
    for (const p of parents) kept.push(p.raw);
    ctx.emit({ type: 'page', stream: s.name, partition, page: page.number, records: recs.length });
    if (pages >= ctx.maxPages && page.records.length > 0 && !reachedOld) rep.truncated = true;
  }
  const cursor: CursorReport | undefined = inc
    ? {
        field: inc.cursor_field,
        type: inc.type,
        order: inc.order,
        ...(inc.lookback ? { lookback: inc.lookback } : {}),
        stored: stored ?? null,
        startedFrom: startCursor ?? null,
        wouldSave: maxCursor ?? null,
      }
    : undefined;
  rep.partitions.push({ partition, records, ...(cursor ? { cursor } : {}) });
}

function collect(
  ctx: ReadContext,
  s: StreamSpec,
  rep: StreamReport,
  partition: string,
  parents: ParentInfo[],
  dead: DeadRecord[],
): void {
  for (const p of parents) {
    for (const r of p.rows) {
      rep.rows[r.target] = (rep.rows[r.target] ?? 0) + 1;
      ctx.totals.rows++;
    }
    if (rep.samples.length < ctx.nSamples)
      rep.samples.push({
        key: p.key,
        ...(partition ? { partition } : {}),
        raw: p.raw,
        rows: p.rows.map((r) => ({ target: r.target, mode: r.mode, row: r.row })),
      });
  }
  for (const d of dead) {
    rep.failureCount++;
    ctx.totals.failures++;
    if (rep.failures.length < ctx.nSamples) rep.failures.push(describeFailure(s, d, partition));
  }
}

/** A dead record with the expression that caused it. */
function describeFailure(s: StreamSpec, d: DeadRecord, partition: string): RecordFailure {
  const details = (d.details ?? {}) as { target?: string; errors?: string[]; row?: unknown; primary_key?: string };
  const m = details.target ? s.map.find((x) => x.target === details.target) : undefined;
  let expression: string | undefined;
  if (d.code === 'RQ5007' && details.primary_key) expression = s.primary_key ?? 'id';
  else if (m) {
    const parts = [
      m.when ? `when: ${m.when.trim()}` : '',
      m.input ? `input: ${m.input.trim()}` : '',
      m.expression.trim(),
    ].filter(Boolean);
    expression = parts.join('\n');
  }
  return {
    code: d.code,
    kind: d.cls,
    message: d.message,
    key: d.key,
    ...(partition ? { partition } : {}),
    record: d.record,
    ...(details.target ? { target: details.target } : {}),
    ...(expression ? { expression } : {}),
    ...(details.errors ? { errors: details.errors } : {}),
    ...(details.row !== undefined ? { row: details.row } : {}),
  };
}

/** The first page's own parameters, as the paginator starts (paginate.ts). */
function firstPageQuery(p: PaginationSpec, cursor: CursorValue | undefined): Array<[string, string]> {
  if (p.type === 'page_number') {
    const q: Array<[string, string]> = [[p.param, String(p.start)]];
    if (p.size_param) q.push([p.size_param, String(p.size)]);
    return q;
  }
  if (p.type === 'offset')
    return [
      [p.offset_param, '0'],
      [p.limit_param, String(p.limit)],
    ];
  if (p.type === 'id_window' && cursor !== undefined) return [[p.after_param, String(cursor)]];
  return [];
}

/** The first request of each stream (or of a sample partition) in the next run, from the cursor it would save. */
async function nextRunRequests(
  ctx: ReadContext,
  s: StreamSpec,
  rep: StreamReport,
  partitions: Array<{ partition: string; parent: unknown }>,
): Promise<NextRequest[]> {
  const inc = s.incremental;
  const out: NextRequest[] = [];
  const sample = partitions.slice(0, 1);
  for (const p of sample) {
    const part = rep.partitions.find((x) => x.partition === p.partition);
    const saved = part?.cursor?.wouldSave ?? part?.cursor?.stored ?? undefined;
    const cursorType: CursorType = inc?.type ?? 'datetime';
    const effective =
      inc && saved !== undefined && saved !== null
        ? shiftCursor(saved, cursorType, durationMs(inc.lookback))
        : undefined;
    const values: Bindings = {
      parent: p.parent,
      run_started_at: new Date().toISOString(),
      ...cursorBindings(effective, cursorType),
    };
    const req = await buildRequest(
      {
        c: ctx.cctx,
        stream: s,
        bindings: ctx.bindings('request', values),
        hasCursor: effective !== undefined,
        timeoutMs: ctx.o.config.http.timeoutMs,
        hookContext: () =>
          hookContextFor(ctx.cctx, ctx.o.db, ctx.log, s.name, {
            cursor: effective,
            ...(p.partition ? { partition: p.partition } : {}),
            ...(p.parent !== undefined ? { parent: p.parent } : {}),
          }),
      },
      {
        query: firstPageQuery(s.pagination, s.pagination.type === 'id_window' ? (saved ?? undefined) : undefined),
        page: 1,
      },
    );
    const who = p.partition ? `partition ${p.partition}` : 'the stream';
    let note: string;
    if (!inc) note = `${who} is read in full on every run (no incremental cursor)`;
    else if (effective === undefined) note = `no cursor would be saved: ${who} is read in full again`;
    else
      note = `${who} from cursor ${String(saved)}${inc.lookback ? ` minus lookback ${inc.lookback} = ${String(effective)}` : ''}${inc.stop_when_older ? '; paging stops at the first older record' : ''}${!inc.send && inc.client_filter ? ': every page is still requested (the cursor is not sent) and older records are dropped on our side (client_filter)' : ''}`;
    if (s.parent?.stream)
      note += `; only for ${s.parent.stream} records inserted or changed since (each is one partition)`;
    out.push({ ...ctx.show(req), note });
  }
  return out;
}

function appendParams(url: string, params: Array<[string, string]>): string {
  if (!params.length || !URL.canParse(url)) return url;
  const u = new URL(url);
  for (const [k, v] of params) u.searchParams.append(k, v);
  return u.toString();
}
