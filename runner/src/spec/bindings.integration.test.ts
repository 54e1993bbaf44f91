/**
 * The bindings table (spec/bindings.ts) held against lint and the engine, driven by the table itself.
 *
 * Bound: for every area and every binding the table puts there, generated specs read `$binding` at the area's
 * sites through something observable (a request the test server records, a stored row or cursor, an error
 * message, a webhook accepted or refused, a budget that renders or fails). Lint must accept every such use and
 * the engine must hand over the value lint promised.
 *
 * Unbound: every binding outside an area draws a lint finding at the site it is used. Where that finding is an
 * error the engine refuses the spec; where it is only a warning (RQ2023) the engine runs it, and the test checks
 * the engine does not bind the value there either. scopeBindings drops them all.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import '@routiq/sdk';
import { type ConnectionSummary, syncConnection } from '../engine/sync.ts';
import { ingestWebhook } from '../engine/webhooks.ts';
import { type Finding, lintSpecText } from '../lint/index.ts';
import { formatPath } from '../lint/source.ts';
import {
  BINDING_AREAS,
  BINDING_NAMES,
  type BindingArea,
  type BindingName,
  bindingInfo,
  bindingsOf,
  scopeBindings,
} from './bindings.ts';

type Name = BindingName;
type Values = Record<string, unknown>;
type Want = 'bound' | 'unbound';

/**
 * Where the engine and lint still disagree. Each entry is asserted to still disagree, so a fix fails this test
 * until its entry is removed; everywhere else they must agree.
 */
const KNOWN_GAPS: Array<{ want: Want; area: BindingArea; where: string; names: Name[]; why: string }> = [
  {
    want: 'bound',
    area: 'data',
    where: 'streams[data].parent.key',
    names: ['parent'],
    // engine/session.ts markChildren: `this.bindings('data')` is given no `parent` (the parent stream's own).
    why: "session.ts markChildren evaluates parent.key without the parent stream's $parent",
  },
  {
    want: 'bound',
    area: 'incremental',
    where: 'streams[start].incremental.start',
    names: ['cursor', 'cursor_iso', 'cursor_unix', 'page', 'run_started_at'],
    // engine/stream.ts runPartition renders start with `session.bindings('incremental', { parent })`: a start is
    // used only when no cursor exists, before the first page, and run_started_at is computed after it.
    why: 'stream.ts renders incremental.start without cursor/page/run_started_at (lint accepts them there)',
  },
  {
    want: 'unbound',
    area: 'request',
    where: 'request.params (connector-wide, in a child incremental stream)',
    names: ['cursor', 'cursor_iso', 'cursor_unix', 'page', 'run_started_at'],
    // engine/request.ts buildRequest: mergeRequest folds connector-wide params/headers into each stream's
    // request, rendered with that stream's bindings; lint (RQ2023) says they are not bound there.
    why: "request.ts renders connector-wide request templates with the stream's bindings; lint says unbound",
  },
];

const SECRET = 'k-s3cret';
const ENV = { BINDINGS_KEY: SECRET };
const START = '2024-01-02T03:04:05Z';
const PARENT = { id: 'p1', name: 'Parent One', nested: { tags: ['a', 'b'], n: 7 } };
const rec = (stream: string) => ({
  id: `r-${stream}`,
  name: `Rec ${stream}`,
  updated_at: '2024-03-01T00:00:00Z',
  seq: 1,
});
// No `}}` in the body: it is compared inside `{{ }}` templates.
const RAW_BODY = '{"event": "probe", "data": {"id": "w1", "name": "Webhook One"} }';
const DELIVERY_HEADERS = { 'X-Probe': 'yes', 'Content-Type': 'application/json' };
const LOWER_HEADERS = { 'x-probe': 'yes', 'content-type': 'application/json' };
const TARGET = 'practitioners';
const CONNECTION = {
  properties: {
    api: { type: 'string', format: 'uri' },
    flavour: { type: 'string', default: 'vanilla' },
    key: { type: 'string', secret: true },
  },
  required: ['api', 'key'],
};

// ---- expressions -------------------------------------------------------------------------------------------

const v = (n: Name) => `$${n}`;
/** An object constructor reading each binding: one the engine leaves undefined drops its key. */
const objOf = (names: readonly Name[]) => `{ ${names.map((n) => `"${n}": ${v(n)}`).join(', ')} }`;
const strOf = (names: readonly Name[]) => `$string(${objOf(names)})`;
/** One binding as JSON text: `{"v": value}`, `{}` when unbound. */
const one = (n: Name) => `$string({ "v": ${v(n)} })`;
const tpl = (e: string) => `{{ ${e} }}`;
const byName = (prefix: string, names: readonly Name[], value: (n: Name) => string) =>
  Object.fromEntries(names.map((n) => [`${prefix}${n}`, value(n)]));

/** A JSON value as a JSONata literal, never with `}}` or `{{` (they would end or open a template part). */
function lit(x: unknown): string {
  if (x === null || x === undefined) return 'null';
  if (Array.isArray(x)) return `[${x.map(lit).join(', ')}]`;
  if (typeof x === 'object')
    return `{ ${Object.entries(x as Values)
      .map(([k, y]) => `${JSON.stringify(k)}: ${lit(y)}`)
      .join(', ')} }`;
  return JSON.stringify(x);
}

/** When the runs started: $run_started_at must lie between this and the end of the run. */
let T0 = 0;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** JSONata that is true only when the engine bound `$n` to `want` (a response: its status, body and a header). */
function check(n: Name, want: unknown): string {
  if (n === 'run_started_at')
    return `($toMillis($run_started_at) >= ${T0} and $toMillis($run_started_at) <= $millis())`;
  if (n === 'response') {
    const w = want as { status: number; body: unknown };
    return `($response.status = ${w.status} and $response.body = ${lit(w.body)} and $response.headers.\`x-probe\` = "yes")`;
  }
  return `(${v(n)} = ${lit(want)})`;
}

function sameAs(n: Name, got: unknown, want: unknown): boolean {
  if (n === 'run_started_at')
    return typeof got === 'string' && ISO.test(got) && Date.parse(got) >= T0 && Date.parse(got) <= Date.now();
  if (n === 'response') {
    const r = got as { status?: unknown; body?: unknown; headers?: Values } | undefined;
    const w = want as { status: number; body: unknown };
    return !!r && r.status === w.status && isDeepStrictEqual(r.body, w.body) && r.headers?.['x-probe'] === 'yes';
  }
  return isDeepStrictEqual(got, want);
}

const parseJson = (s: unknown): unknown => (typeof s === 'string' ? JSON.parse(s) : s);
const streamless = (names: readonly Name[]) => names.filter((n) => bindingInfo(n)?.requires === undefined);
const outside = (area: BindingArea) => BINDING_NAMES.filter((n) => !bindingsOf(area).includes(n));

// ---- the test API ------------------------------------------------------------------------------------------

interface Request {
  stream: string;
  /** The decoded path segment after the stream name (a request.path probe). */
  tail: string | undefined;
  /** The decoded segment base_url carries. */
  base: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** First pages: `/c/<base>/s/<stream>`; a second page (`next_token`, or a `<stream>-2` link) is empty. */
function pageBody(stream: string): { status: number; body: unknown } {
  if (stream === 'parents') return { status: 200, body: { results: [PARENT] } };
  if (stream.startsWith('err_')) return { status: 418, body: { probe: stream.slice(4) } };
  if (stream === 'errm') return { status: 419, body: { probe: 'errm' } };
  return { status: 200, body: { results: [rec(stream)] } };
}

async function startApi() {
  const seen: Request[] = [];
  // Probes of every binding travel in URLs and headers: allow big ones.
  const server = http.createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const [, , base = '', , stream = '', tail] = u.pathname.split('/');
      const text = Buffer.concat(chunks).toString();
      seen.push({
        stream,
        tail: tail === undefined ? undefined : decodeURIComponent(tail),
        base: decodeURIComponent(base),
        query: u.searchParams,
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      });
      const second = stream.endsWith('-2') || u.searchParams.has('next_token');
      const { status, body } = second ? { status: 200, body: { results: [] } } : pageBody(stream);
      res.writeHead(status, { 'content-type': 'application/json', 'x-probe': 'yes' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// ---- sites -------------------------------------------------------------------------------------------------

interface Site {
  want: Want;
  area: BindingArea;
  where: string;
  names: Name[];
  /** value: the engine's value is read back; check: whether `check(name)` held in the engine. */
  kind: 'value' | 'check';
  /** Values expected here that differ from the probe connection's ($response, $records, $page, $connector). */
  expect?: Values;
  /**
   * After the runs: binding → value handed over (value) or whether the check held (check). A binding absent
   * from the result was not bound (value) or not reached (check); undefined: the site was not observed at all.
   */
  read: () => Promise<Values | undefined>;
}

interface Delivery {
  connector: string;
  query?: Record<string, string>;
  headers: Record<string, string>;
}

interface Ctx {
  api: Awaited<ReturnType<typeof startApi>>;
  db: TestDb['db'];
  orgId: string;
  /** The probe connection's value of every binding; sites override what differs where they are. */
  values: Values;
  connectionValues(connector: string): Values;
  sites: Site[];
  specs: Record<string, string>;
  deliveries: Delivery[];
  runs: Record<string, { summary?: ConnectionSummary; error?: string; code?: string | undefined }>;
  webhookErrors: Record<string, string>;
  /** Lint findings on the converse spec. */
  refuse: Finding[];
}

const requests = (c: Ctx, stream: string) => c.api.seen.filter((r) => r.stream === stream);
const first = (c: Ctx, stream: string) => requests(c, stream)[0];

/** Per-binding channels of one request, each `{"v": value}` (`{}` when unbound); undefined: no such request. */
function perName(r: Request | undefined, names: Name[], get: (r: Request, n: Name) => unknown): Values | undefined {
  if (!r) return undefined;
  const out: Values = {};
  for (const n of names) {
    const s = get(r, n);
    const o = typeof s === 'string' ? (JSON.parse(s) as Values) : {};
    if ('v' in o) out[n] = o.v;
  }
  return out;
}

async function practitioners(c: Ctx, connector: string): Promise<Map<string, Values>> {
  const rows = await c.db.query<{ external_id: string; metadata: unknown }>(
    'select external_id, metadata from practitioners where organization_id = ? and source = ?',
    [c.orgId, connector],
  );
  return new Map(rows.map((r) => [r.external_id, parseJson(r.metadata) as Values]));
}

const row = async (c: Ctx, connector: string, id: string, key: string) =>
  (await practitioners(c, connector)).get(id)?.[key] as Values | undefined;

/** The failure message of a stream (a permanent error rule's message comes after `HTTP <status>: `). */
function streamError(c: Ctx, run: string, stream: string, status: number): Values | undefined {
  const e = c.runs[run]?.summary?.streams.find((s) => s.stream === stream)?.error;
  const head = `HTTP ${status}: `;
  return e?.startsWith(head) ? (JSON.parse(e.slice(head.length)) as Values) : undefined;
}

/** A child stream of `parents` with a stored-start cursor: every `requires` of the table holds in it. */
function child(name: string, extra: Values = {}): Values {
  return {
    name,
    parent: { stream: 'parents' },
    request: { path: `/s/${name}` },
    records: 'results',
    pagination: { type: 'none' },
    incremental: { cursor_field: 'updated_at', type: 'datetime', order: 'none', start: START },
    map: [
      {
        target: TARGET,
        expression: '{ "external_id": id, "display_name": name, "metadata": { "updated_at": updated_at, "seq": seq } }',
      },
    ],
    ...extra,
  };
}
const plainStream = (name: string, path = `/s/${name}`) => ({
  name,
  request: { path },
  records: 'results',
  pagination: { type: 'none' },
  map: [{ target: TARGET, expression: '{ "external_id": "parent-" & id, "display_name": name }' }],
});

/** Declare sites: `value` reads back what the engine bound there, `holds` whether `check(name)` held there. */
function declare(c: Ctx, want: Want) {
  const site =
    (kind: Site['kind']) => (area: BindingArea, where: string, names: Name[], read: Site['read'], expect?: Values) =>
      c.sites.push({ want, area, where, names, kind, read, ...(expect ? { expect } : {}) });
  return { value: site('value'), holds: site('check') };
}

// ---- the probe connector: every area but the webhook ones ----------------------------------------------------

function probeSpec(c: Ctx): Values {
  const { value, holds } = declare(c, 'bound');
  const pageExpect = (stream: string): Values => ({ response: pageBody(stream), records: [rec(stream)], page: 1 });
  const pv = c.values;

  // connection: base_url carries a probe; every budget renders -1 (fails the run) unless its binding held.
  const conn = bindingsOf('connection');
  value('connection', 'base_url', conn, async () => parseJson(first(c, 'parents')?.base) as Values);
  holds('connection', 'rate_limits.budgets[].requests', conn, async () => {
    const run = c.runs.probe;
    if (!run) return undefined;
    const failed = conn.find((n) => run.error?.includes(`budgets[b_${n}]`));
    if (run.error && !failed) return {};
    // Budgets render in order: before the failing one they held; after it they were not reached.
    const upTo = failed ? conn.indexOf(failed) : conn.length;
    return Object.fromEntries(conn.slice(0, upTo + 1).map((n) => [n, n !== failed]));
  });

  // request: a child incremental stream's own templates (path, params, headers, body), and the connector's.
  const req = bindingsOf('request');
  const connReq = streamless(req);
  const rq = () => first(c, 'rq');
  value('request', 'streams[rq].request.path', req, async () => parseJson(rq()?.tail) as Values);
  value('request', 'streams[rq].request.params', req, async () => perName(rq(), req, (r, n) => r.query.get(`rq_${n}`)));
  value(
    'request',
    'streams[rq].request.params (second page)',
    ['page'],
    async () => perName(requests(c, 'rq')[1], ['page'], (r, n) => r.query.get(`rq_${n}`)),
    { page: 2 },
  );
  value('request', 'streams[rq].request.headers', req, async () =>
    perName(rq(), req, (r, n) => r.headers[`x-rq-${n}`]),
  );
  value('request', 'streams[rq].request.body', req, async () => rq() && ((rq()?.body ?? {}) as Values));
  value('request', 'request.params', connReq, async () => perName(rq(), connReq, (r, n) => r.query.get(`cq_${n}`)));
  value('request', 'request.headers', connReq, async () => perName(rq(), connReq, (r, n) => r.headers[`x-cq-${n}`]));
  value('request', 'auth.value', connReq, async () => parseJson(rq()?.headers['x-auth']) as Values);

  // pagination: a cursor token and a next link carry values; stop.when checks one binding per stream.
  const pag = bindingsOf('pagination');
  value(
    'pagination',
    'streams[rq].pagination.token',
    pag,
    async () => parseJson(requests(c, 'rq')[1]?.query.get('next_token')) as Values,
    pageExpect('rq'),
  );
  value(
    'pagination',
    'streams[nl].pagination.path',
    pag,
    async () => parseJson(first(c, 'nl-2')?.query.get('probe')) as Values,
    pageExpect('nl'),
  );
  // Each stream stops after its first page unless its binding held.
  holds('pagination', 'streams[sw_*].pagination.stop.when', pag, async () =>
    Object.fromEntries(pag.filter((n) => first(c, `sw_${n}`)).map((n) => [n, requests(c, `sw_${n}`).length === 2])),
  );

  // incremental: send params and headers (the start makes a cursor exist), and the start template itself.
  const inc = bindingsOf('incremental');
  value('incremental', 'streams[rq].incremental.send.params', inc, async () =>
    perName(rq(), inc, (r, n) => r.query.get(`iq_${n}`)),
  );
  value('incremental', 'streams[rq].incremental.send.headers', inc, async () =>
    perName(rq(), inc, (r, n) => r.headers[`x-iq-${n}`]),
  );
  // An integer cursor is handed back as is: the rendered start comes back as $cursor.
  value(
    'incremental',
    'streams[start].incremental.start',
    inc,
    async () => parseJson(first(c, 'start')?.query.get('s')) as Values,
  );

  // errors: one endpoint per binding answers 418, ignored only when its rule's check holds; a 419's message.
  const err = bindingsOf('errors');
  holds(
    'errors',
    'errors[].body',
    err,
    async () =>
      c.runs.probe?.summary &&
      Object.fromEntries(
        c.runs.probe.summary.streams
          .filter((s) => s.stream.startsWith('err_'))
          .map((s) => [s.stream.slice(4), s.status === 'ok']),
      ),
  );
  value('errors', 'errors[].message', err, async () => streamError(c, 'probe', 'errm', 419), {
    response: pageBody('errm'),
  });

  // data and mapping: expressions over a child stream's raw records carry the probes into rows and state.
  const data = bindingsOf('data');
  const mapping = bindingsOf('mapping');
  const afterBar = (s: string | undefined) =>
    s === undefined ? undefined : (JSON.parse(s.slice(s.indexOf('|') + 1)) as Values);
  const state = async () =>
    (
      await c.db.query<{ partition: string; cursor: unknown }>(
        `select partition, cursor from sync_state where organization_id = ? and connector = 'probe' and stream = 'data'`,
        [c.orgId],
      )
    )[0];
  value('data', 'streams[data].records', data, () => row(c, 'probe', 'data-r-data', 'records'));
  value('data', 'streams[data].primary_key', data, async () => {
    const rows = await c.db.query<{ external_id: string }>(
      `select external_id from raw_records where organization_id = ? and source = 'probe' and stream = 'data'`,
      [c.orgId],
    );
    return afterBar(rows[0]?.external_id);
  });
  value(
    'data',
    'streams[data].incremental.cursor_field',
    data,
    async () => parseJson((parseJson((await state())?.cursor) as { value?: string } | null)?.value) as Values,
  );
  value('data', 'streams[data].map[].input', data, () => row(c, 'probe', 'data-r-data', 'input'));
  value('data', 'streams[data].parent.key', data, async () => afterBar((await state())?.partition));
  value('mapping', 'streams[data].map[].expression', mapping, () => row(c, 'probe', 'data-r-data', 'mapping'));
  holds('mapping', 'streams[data].map[].when', mapping, async () => {
    const rows = await practitioners(c, 'probe');
    return rows.has('data-r-data')
      ? Object.fromEntries(mapping.map((n) => [n, rows.has(`when-${n}-r-data`)]))
      : undefined;
  });

  return {
    spec_version: 1,
    name: 'probe',
    version: '1.0.0',
    connection: CONNECTION,
    base_url: `{{ $config.api }}/c/${tpl(`$encodeUrlComponent(${strOf(conn)})`)}`,
    auth: { type: 'api_key', name: 'X-Auth', value: tpl(strOf(connReq)) },
    request: {
      params: byName('cq_', connReq, (n) => tpl(one(n))),
      headers: byName('x-cq-', connReq, (n) => tpl(one(n))),
    },
    rate_limits: {
      budgets: conn.map((n) => ({
        name: `b_${n}`,
        requests: tpl(`${check(n, pv[n])} ? 100000 : -1`),
        per_seconds: 1,
        scope: 'connection',
      })),
    },
    errors: [
      ...err.map((n) => ({
        status: 418,
        body: `probe = "${n}" and ${check(n, n === 'response' ? pageBody(`err_${n}`) : pv[n])}`,
        action: 'ignore',
      })),
      { status: 419, action: 'permanent', message: strOf(err) },
    ],
    streams: [
      plainStream('parents'),
      child('rq', {
        request: {
          method: 'POST',
          path: `/s/rq/${tpl(`$encodeUrlComponent(${strOf(req)})`)}`,
          params: byName('rq_', req, (n) => tpl(one(n))),
          headers: byName('x-rq-', req, (n) => tpl(one(n))),
          body: byName('', req, (n) => tpl(v(n))),
        },
        pagination: { type: 'cursor', token: strOf(pag), param: 'next_token' },
        incremental: {
          cursor_field: 'updated_at',
          type: 'datetime',
          order: 'none',
          start: START,
          send: {
            params: byName('iq_', inc, (n) => tpl(one(n))),
            headers: byName('x-iq-', inc, (n) => tpl(one(n))),
          },
        },
      }),
      child('nl', { pagination: { type: 'next_link', path: `"nl-2?probe=" & $encodeUrlComponent(${strOf(pag)})` } }),
      ...pag.map((n) =>
        child(`sw_${n}`, {
          pagination: {
            type: 'cursor',
            token: '"t2"',
            param: 'next_token',
            stop: { when: `$not(${check(n, { ...pv, ...pageExpect(`sw_${n}`) }[n])})` },
          },
        }),
      ),
      child('start', {
        incremental: {
          cursor_field: 'seq',
          type: 'integer',
          order: 'none',
          start: tpl(strOf(inc)),
          send: { params: { s: '{{ $cursor }}' } },
        },
      }),
      ...err.map((n) => plainStream(`err_${n}`)),
      plainStream('errm'),
      {
        name: 'data',
        parent: { stream: 'parents', key: `id & "|" & ${strOf(data)}` },
        request: { path: '/s/data' },
        records: `results.$merge([$, { "records": ${objOf(data)} }])`,
        primary_key: `id & "|" & ${strOf(data)}`,
        pagination: { type: 'none' },
        incremental: { cursor_field: strOf(data), type: 'datetime', order: 'none' },
        map: [
          {
            target: TARGET,
            input: `$merge([$, { "input": ${objOf(data)} }])`,
            expression: `{ "external_id": "data-" & id, "display_name": name, "metadata": { "records": records, "input": input, "mapping": ${objOf(mapping)} } }`,
          },
          ...mapping.map((n) => ({
            target: TARGET,
            when: check(n, pv[n]),
            expression: `{ "external_id": "when-${n}-" & id }`,
          })),
        ],
      },
    ],
  };
}

// ---- webhooks: data and mapping in one connector; verification in one connector per binding and site ----------

function webhookSpec(name: string, webhooks: unknown): Values {
  return {
    spec_version: 1,
    name,
    version: '1.0.0',
    connection: CONNECTION,
    base_url: '{{ $config.api }}',
    auth: { type: 'none' },
    streams: [plainStream('unused')],
    webhooks,
  };
}

function webhookSpecs(c: Ctx): void {
  const { value, holds } = declare(c, 'bound');
  const wd = bindingsOf('webhook_data');
  const wm = bindingsOf('webhook_mapping');
  const wv = bindingsOf('webhook_verify');
  const whValues: Values = { ...c.connectionValues('wh'), headers: LOWER_HEADERS, body_raw: RAW_BODY };
  const whRows = () => practitioners(c, 'wh');
  const has = (names: Name[], prefix: string) => async () => {
    const rows = await whRows();
    return rows.has('wh-w1') ? Object.fromEntries(names.map((n) => [n, rows.has(`${prefix}${n}`)])) : undefined;
  };
  holds('webhook_data', 'webhooks.events[].when', wd, has(wd, 'whwhen-'), whValues);
  value('webhook_data', 'webhooks.events[].records', wd, () => row(c, 'wh', 'wh-w1', 'records'), whValues);
  value('webhook_mapping', 'webhooks.events[].map[].expression', wm, () => row(c, 'wh', 'wh-w1', 'mapping'), whValues);
  value('webhook_mapping', 'webhooks.events[].map[].input', wm, () => row(c, 'wh', 'whinput-w1', 'input'), whValues);
  holds('webhook_mapping', 'webhooks.events[].map[].when', wm, has(wm, 'whmapwhen-'), whValues);
  c.specs.wh = stringify(
    webhookSpec('wh', {
      verify: { type: 'none' },
      events: [
        ...wd.map((n) => ({
          name: `when_${n}`,
          when: `event = "probe" and ${check(n, whValues[n])}`,
          map: [{ target: TARGET, expression: `{ "external_id": "whwhen-${n}" }` }],
        })),
        {
          name: 'rec',
          when: 'event = "probe"',
          records: `$merge([data, { "records": ${objOf(wd)} }])`,
          map: [
            {
              target: TARGET,
              expression: `{ "external_id": "wh-" & id, "display_name": name, "metadata": { "records": records, "mapping": ${objOf(wm)} } }`,
            },
            {
              target: TARGET,
              input: `$merge([$, { "input": ${objOf(wm)} }])`,
              expression: '{ "external_id": "whinput-" & id, "metadata": { "input": input } }',
            },
            ...wm.map((n) => ({
              target: TARGET,
              when: check(n, whValues[n]),
              expression: `{ "external_id": "whmapwhen-${n}" }`,
            })),
          ],
        },
      ],
    }),
    { lineWidth: 0 },
  );
  c.deliveries.push({ connector: 'wh', headers: DELIVERY_HEADERS });

  // Verification: accepted only when the token / signed message the engine renders is the expected one. A
  // token must reference a secret (RQ2041), so it is the secret then the probe.
  const expected = (connector: string, n: Name) =>
    JSON.stringify({
      v: ({ ...c.connectionValues(connector), headers: LOWER_HEADERS, body_raw: RAW_BODY } as Values)[n],
    });
  // The signature header is itself a delivery header: the signed $headers leave it out.
  const signed = (n: Name) =>
    n === 'headers' ? '$string({ "v": $sift($headers, function($x, $k) { $k != "x-sig" }) })' : one(n);
  const events = [{ name: 'any', when: 'true', map: [{ target: TARGET, expression: '{ "external_id": "whv" }' }] }];
  for (const n of wv) {
    const tok = `whv_token_${n}`;
    const sig = `whv_message_${n}`;
    c.specs[tok] = stringify(
      webhookSpec(tok, {
        verify: { type: 'shared_token', query: 'token', token: `{{ $secrets.key }}:${tpl(one(n))}` },
        events,
      }),
      { lineWidth: 0 },
    );
    c.specs[sig] = stringify(
      webhookSpec(sig, {
        verify: { type: 'hmac_sha256', header: 'X-Sig', secret: '{{ $secrets.key }}', message: tpl(signed(n)) },
        events,
      }),
      { lineWidth: 0 },
    );
    c.deliveries.push({ connector: tok, query: { token: `${SECRET}:${expected(tok, n)}` }, headers: DELIVERY_HEADERS });
    const signature = createHmac('sha256', SECRET).update(expected(sig, n)).digest('hex');
    c.deliveries.push({ connector: sig, headers: { ...DELIVERY_HEADERS, 'X-Sig': signature } });
  }
  for (const [where, prefix] of [
    ['webhooks.verify.token', 'whv_token_'],
    ['webhooks.verify.message', 'whv_message_'],
  ] as const) {
    const accepted = async () => Object.fromEntries(wv.map((n) => [n, !(`${prefix}${n}` in c.webhookErrors)]));
    holds('webhook_verify', where, wv, accepted);
  }
}

// ---- the converse: every binding outside an area, at one site of that area --------------------------------------

interface RefusedUse {
  name: Name;
  area: BindingArea;
  path: Array<string | number>;
  /** Refused for the stream it is in (no parent, no incremental, no stream), not for the area. */
  requires?: true;
}

const REQUIRES = BINDING_NAMES.filter((n) => bindingInfo(n)?.requires !== undefined);
const CHILD_OR_INCREMENTAL = BINDING_NAMES.filter((n) =>
  ['child_stream', 'incremental_stream'].includes(bindingInfo(n)?.requires ?? ''),
);

/** Stream 0 of the converse spec is a plain stream, stream 1 a child incremental one. */
function refusedUses(): RefusedUse[] {
  const u: RefusedUse[] = [];
  const each = (area: BindingArea, path: (n: Name, i: number) => Array<string | number>) =>
    outside(area).forEach((n, i) => {
      u.push({ name: n, area, path: path(n, i) });
    });
  each('connection', (_, i) => ['rate_limits', 'budgets', i, 'requests']);
  each('request', (n) => ['streams', 1, 'request', 'params', `n_${n}`]);
  each('pagination', () => ['streams', 1, 'pagination', 'token']);
  each('incremental', (n) => ['streams', 1, 'incremental', 'send', 'params', `n_${n}`]);
  each('errors', (_, i) => ['errors', i, 'body']);
  each('data', (_, i) => ['streams', 1, 'map', i, 'input']);
  each('mapping', (_, i) => ['streams', 1, 'map', i, 'expression']);
  each('webhook_verify', () => ['webhooks', 'verify', 'token']);
  each('webhook_data', (_, i) => ['webhooks', 'events', i, 'when']);
  each('webhook_mapping', (_, i) => ['webhooks', 'events', 0, 'map', i, 'expression']);
  for (const n of CHILD_OR_INCREMENTAL)
    u.push({ name: n, area: 'request', path: ['streams', 0, 'request', 'params', `r_${n}`], requires: true });
  for (const n of REQUIRES) u.push({ name: n, area: 'request', path: ['request', 'params', `r_${n}`], requires: true });
  return u;
}

function refuseSpec(): Values {
  const at = (...path: Array<string | number>) => refusedUses().filter((x) => formatPath(x.path) === formatPath(path));
  const data = outside('data');
  const mapping = outside('mapping');
  const wm = outside('webhook_mapping');
  return {
    spec_version: 1,
    name: 'refuse',
    version: '1.0.0',
    connection: CONNECTION,
    base_url: '{{ $config.api }}',
    auth: { type: 'none' },
    request: { params: byName('r_', REQUIRES, (n) => tpl(v(n))) },
    rate_limits: {
      budgets: outside('connection').map((n, i) => ({ name: `b${i}`, requests: tpl(v(n)), per_seconds: 1 })),
    },
    errors: outside('errors').map((n) => ({ status: 418, body: v(n), action: 'ignore' })),
    streams: [
      {
        ...plainStream('top'),
        request: { path: '/top', params: byName('r_', CHILD_OR_INCREMENTAL, (n) => tpl(v(n))) },
      },
      {
        name: 'kid',
        parent: { stream: 'top' },
        request: { path: '/kid', params: byName('n_', outside('request'), (n) => tpl(v(n))) },
        pagination: {
          type: 'cursor',
          param: 'next',
          token: `$string([${at('streams', 1, 'pagination', 'token')
            .map((x) => v(x.name))
            .join(', ')}])`,
        },
        incremental: {
          cursor_field: 'updated_at',
          type: 'datetime',
          order: 'none',
          send: { params: byName('n_', outside('incremental'), (n) => tpl(v(n))) },
        },
        map: Array.from({ length: Math.max(data.length, mapping.length) }, (_, i) => ({
          target: TARGET,
          ...(data[i] ? { input: v(data[i]) } : {}),
          expression: mapping[i]
            ? `{ "external_id": $string(${v(mapping[i])}), "metadata": { "u": updated_at } }`
            : '{ "external_id": id }',
        })),
      },
    ],
    webhooks: {
      verify: {
        type: 'shared_token',
        header: 'X-Token',
        token: at('webhooks', 'verify', 'token')
          .map((x) => tpl(v(x.name)))
          .join('-'),
      },
      events: outside('webhook_data').map((n, i) => ({
        name: `e${i}`,
        when: v(n),
        map:
          i === 0
            ? wm.map((m) => ({ target: TARGET, expression: `{ "external_id": $string(${v(m)}) }` }))
            : [{ target: TARGET, expression: '{ "external_id": id }' }],
      })),
    },
  };
}

/** The converse finding for a use: its code, at its path, naming its binding. */
const refusalOf = (c: Ctx, u: RefusedUse) =>
  c.refuse.find(
    (f) => /^RQ202[3-5]$/.test(f.code) && f.path === formatPath(u.path) && f.message.startsWith(`$${u.name} `),
  );

/**
 * The converse the engine can run: bindings outside an area that lint only warns about (an error refuses the
 * spec), read at that area's sites of a connector `outside`. The engine must not bind them there either.
 */
function outsideSpec(c: Ctx): Values {
  const uses = refusedUses();
  const warned = (area: BindingArea) =>
    uses
      .filter((u) => u.area === area && !u.requires && refusalOf(c, u)?.severity === 'warning')
      .map((u) => u.name)
      .filter((n, i, a) => a.indexOf(n) === i);
  const { value, holds } = declare(c, 'unbound');
  const kid = () => first(c, 'o_kid');
  const w = Object.fromEntries(BINDING_AREAS.map((a) => [a, warned(a)])) as Record<BindingArea, Name[]>;
  // Lint's stream requirements: a stream that is neither a child nor incremental, and connector-wide templates.
  const needs = (top: string | number) =>
    uses.filter((u) => u.requires && u.path[1] === top && refusalOf(c, u)?.severity === 'warning').map((u) => u.name);
  const plain = needs(0);
  const connWide = uses
    .filter((u) => u.requires && u.path[0] === 'request' && refusalOf(c, u)?.severity === 'warning')
    .map((u) => u.name);
  const kidParams = (names: Name[], prefix: string) => perName(kid(), names, (r, n) => r.query.get(`${prefix}${n}`));
  const kidRow = (key: string) => () => row(c, 'outside', 'o-r-o_kid', key);
  const whRow = (key: string) => () => row(c, 'outside', 'ow-w1', key);
  value('connection', 'base_url', w.connection, async () => parseJson(first(c, 'o_top')?.base) as Values);
  value('request', 'streams[o_kid].request.params', w.request, async () => kidParams(w.request, 'o_'));
  value('request', 'request.params (connector-wide, in a child incremental stream)', connWide, async () =>
    kidParams(connWide, 'oc_'),
  );
  value('request', 'streams[o_top].request.params (neither child nor incremental)', plain, async () =>
    perName(first(c, 'o_top'), plain, (r, n) => r.query.get(`op_${n}`)),
  );
  value(
    'pagination',
    'streams[o_kid].pagination.token',
    w.pagination,
    async () => parseJson(requests(c, 'o_kid')[1]?.query.get('next_token')) as Values,
  );
  value('incremental', 'streams[o_kid].incremental.send.params', w.incremental, async () =>
    kidParams(w.incremental, 'oi_'),
  );
  value('errors', 'errors[].message', w.errors, async () => streamError(c, 'outside', 'errm', 419));
  value('data', 'streams[o_kid].records', w.data, kidRow('records'));
  value('mapping', 'streams[o_kid].map[].expression', w.mapping, kidRow('mapping'));
  // The token renders to the secret alone only if none of them is bound.
  holds('webhook_verify', 'webhooks.verify.token', w.webhook_verify, async () =>
    Object.fromEntries(w.webhook_verify.map((n) => [n, !('outside' in c.webhookErrors)])),
  );
  value('webhook_data', 'webhooks.events[].records', w.webhook_data, whRow('records'));
  value('webhook_mapping', 'webhooks.events[].map[].expression', w.webhook_mapping, whRow('mapping'));
  c.deliveries.push({ connector: 'outside', query: { token: SECRET }, headers: DELIVERY_HEADERS });
  return {
    spec_version: 1,
    name: 'outside',
    version: '1.0.0',
    connection: CONNECTION,
    base_url: `{{ $config.api }}/c/${tpl(`$encodeUrlComponent(${strOf(w.connection)})`)}`,
    auth: { type: 'none' },
    request: { params: byName('oc_', connWide, (n) => tpl(one(n))) },
    errors: [{ status: 419, action: 'permanent', message: strOf(w.errors) }],
    streams: [
      {
        ...plainStream('o_top'),
        request: { path: '/s/o_top', params: byName('op_', plain, (n) => tpl(one(n))) },
        map: [{ target: TARGET, expression: '{ "external_id": "o-" & id }' }],
      },
      {
        ...child('o_kid', {
          parent: { stream: 'o_top' },
          records: `results.$merge([$, { "records": ${objOf(w.data)} }])`,
          request: { path: '/s/o_kid', params: byName('o_', w.request, (n) => tpl(one(n))) },
          pagination: { type: 'cursor', token: strOf(w.pagination), param: 'next_token' },
          incremental: {
            cursor_field: 'updated_at',
            type: 'datetime',
            order: 'none',
            start: START,
            send: { params: byName('oi_', w.incremental, (n) => tpl(one(n))) },
          },
          map: [
            {
              target: TARGET,
              expression: `{ "external_id": "o-" & id, "metadata": { "updated_at": updated_at, "records": records, "mapping": ${objOf(w.mapping)} } }`,
            },
          ],
        }),
      },
      plainStream('errm'),
    ],
    webhooks: {
      verify: {
        type: 'shared_token',
        query: 'token',
        token: `{{ $secrets.key }}${tpl(`$join([${w.webhook_verify.map(v).join(', ')}])`)}`,
      },
      events: [
        {
          name: 'e',
          when: 'event = "probe"',
          records: `$merge([data, { "records": ${objOf(w.webhook_data)} }])`,
          map: [
            {
              target: TARGET,
              expression: `{ "external_id": "ow-" & id, "metadata": { "records": records, "mapping": ${objOf(w.webhook_mapping)} } }`,
            },
          ],
        },
      ],
    },
  };
}

// ---- the run -----------------------------------------------------------------------------------------------

describe('one bindings table for lint and the engine', () => {
  let t: TestDb;
  let c: Ctx;
  const seen = new Map<Site, { values?: Values; error?: string }>();
  const wanted = new Map<Site, Values>();

  beforeAll(async () => {
    t = await openTestDb('embedded');
    const api = await startApi();
    const base = org('org_bindings', []);
    const connectionValues = (connector: string): Values => ({
      config: { api: api.url, flavour: 'vanilla' },
      secrets: { key: SECRET },
      org: { id: base.id, name: base.name, default_country: base.defaultCountry, timezone: base.timezone },
      connector,
    });
    const pv = connectionValues('probe');
    // base_url carries the connection area's probe: object keys in the engine's order (its JSON text is compared).
    const baseUrl = `${api.url}/c/${encodeURIComponent(JSON.stringify(Object.fromEntries(bindingsOf('connection').map((n) => [n, pv[n]]))))}`;
    T0 = Date.now();
    c = {
      api,
      db: t.db,
      orgId: base.id,
      values: {
        ...pv,
        base_url: baseUrl,
        parent: PARENT,
        cursor: START,
        cursor_iso: START,
        cursor_unix: Date.parse(START) / 1000,
        page: 1,
        run_started_at: `an ISO time of this run (after ${new Date(T0).toISOString()})`,
      },
      connectionValues,
      sites: [],
      specs: {},
      deliveries: [],
      runs: {},
      webhookErrors: {},
      refuse: [],
    };
    c.specs.refuse = stringify(refuseSpec(), { lineWidth: 0 });
    c.refuse = lintSpecText(c.specs.refuse, 'refuse/connector.yaml');
    c.specs.probe = stringify(probeSpec(c), { lineWidth: 0 });
    webhookSpecs(c);
    c.specs.outside = stringify(outsideSpec(c), { lineWidth: 0 });

    const conns = org(
      base.id,
      Object.keys(c.specs).map((name) => ({
        connector: name,
        config: { api: api.url },
        secrets: { key: '${BINDINGS_KEY}' },
      })),
    ).connections;
    const o = { ...base, connections: conns };
    const config = testConfig(connectorsDir(c.specs), [o]);
    const connOf = (name: string) => conns.find((x) => x.name === name)!;
    for (const name of ['probe', 'outside', 'refuse']) {
      try {
        c.runs[name] = {
          summary: await syncConnection({
            db: t.db,
            config,
            org: o,
            conn: connOf(name),
            logger: silentLogger,
            env: ENV,
          }),
        };
      } catch (err) {
        c.runs[name] = { error: (err as Error).message, code: (err as { code?: string }).code };
      }
    }
    for (const d of c.deliveries) {
      try {
        await ingestWebhook({
          db: t.db,
          config,
          org: o,
          conn: connOf(d.connector),
          headers: d.headers,
          ...(d.query ? { query: d.query } : {}),
          rawBody: RAW_BODY,
          logger: silentLogger,
          env: ENV,
        });
      } catch (err) {
        c.webhookErrors[d.connector] = (err as Error).message;
      }
    }
    for (const s of c.sites) {
      seen.set(
        s,
        await s.read().then(
          (values) => (values ? { values } : { error: 'the site was not observed (no request, row or run)' }),
          (e: Error) => ({ error: `could not be read back: ${e.message}` }),
        ),
      );
      wanted.set(s, Object.fromEntries(s.names.map((n) => [n, s.expect && n in s.expect ? s.expect[n] : c.values[n]])));
    }
  });

  afterAll(async () => {
    await c?.api.close();
    await t?.drop();
  });

  /** Problems of one area in one direction; known gaps must still be gaps. */
  function judge(area: BindingArea, want: Want, names: readonly Name[]): string[] {
    const problems: string[] = [];
    for (const n of names) {
      const at = c.sites.filter((s) => s.want === want && s.area === area && s.names.includes(n));
      if (!at.length) problems.push(`$${n} in ${area}: no site of the engine observes it (${want})`);
      for (const s of at) {
        const got = seen.get(s) ?? { error: 'never read' };
        const gap = KNOWN_GAPS.find(
          (g) => g.want === want && g.area === area && g.where === s.where && g.names.includes(n),
        );
        let ok = false;
        let detail = got.error ?? '';
        if (got.values && s.kind === 'check') {
          ok = got.values[n] === true;
          detail = n in got.values ? `did not hold (${want})` : 'was not reached (the run stopped before)';
        } else if (got.values && want === 'unbound') {
          ok = !(n in got.values);
          detail = `was bound to ${JSON.stringify(got.values[n])}`;
        } else if (got.values) {
          const w = wanted.get(s)?.[n];
          ok = n in got.values && sameAs(n, got.values[n], w);
          detail =
            n in got.values ? `was ${JSON.stringify(got.values[n])}, expected ${JSON.stringify(w)}` : 'was not bound';
        }
        if (gap) {
          if (ok) problems.push(`$${n} at ${s.where} agrees now: remove it from KNOWN_GAPS (${gap.why})`);
        } else if (!ok) {
          problems.push(`$${n} at ${s.where} (${area}) ${detail}`);
        }
      }
    }
    return problems;
  }

  it('every KNOWN_GAPS entry is checked by a site (and so asserted to be still a gap)', () => {
    for (const g of KNOWN_GAPS)
      for (const n of g.names)
        expect(
          c.sites.some((s) => s.want === g.want && s.area === g.area && s.where === g.where && s.names.includes(n)),
          `$${n} at ${g.where}`,
        ).toBe(true);
  });

  it('lint accepts every generated use of a binding in its area (no RQ2022–RQ2025, no error at all)', () => {
    const names = Object.keys(c.specs).filter((n) => n !== 'refuse' && n !== 'outside');
    expect(names.length).toBe(2 + 2 * bindingsOf('webhook_verify').length);
    for (const name of names) {
      const bad = lintSpecText(c.specs[name]!, `${name}/connector.yaml`).filter(
        (f) => f.severity === 'error' || /^RQ202[2-5]$/.test(f.code),
      );
      expect(
        bad.map((f) => `${f.code} ${f.path}: ${f.message}`),
        name,
      ).toEqual([]);
    }
  });

  it('the probe runs ran to the end (a run that did not is no evidence)', () => {
    for (const name of ['probe', 'outside']) {
      const run = c.runs[name];
      expect(run?.error, `${name} sync`).toBeUndefined();
      // Only the error probes fail, by design (a 418 not ignored, a 419 permanent).
      const failed = (run?.summary?.streams ?? []).filter(
        (s) => s.status !== 'ok' && s.stream !== 'errm' && !s.stream.startsWith('err_'),
      );
      expect(failed.map((s) => `${name}.${s.stream}: ${s.error}`)).toEqual([]);
    }
    expect(c.webhookErrors).toEqual({});
  });

  it.each(BINDING_AREAS)(
    'area %s: the engine binds every binding lint accepts there, to the value promised',
    (area) => {
      expect(judge(area, 'bound', bindingsOf(area))).toEqual([]);
    },
  );

  it.each(BINDING_AREAS)('area %s: a binding outside it is refused by lint and not bound by the engine', (area) => {
    const problems: string[] = [];
    const warned: Name[] = [];
    for (const u of refusedUses().filter((x) => x.area === area && !x.requires)) {
      const f = refusalOf(c, u);
      if (!f) problems.push(`lint says nothing about $${u.name} at ${formatPath(u.path)}`);
      else if (f.severity === 'warning') warned.push(u.name);
    }
    // Errors refuse the spec (asserted below for the converse spec); warnings load it: the engine must not bind.
    problems.push(...judge(area, 'unbound', warned));
    expect(problems).toEqual([]);
  });

  it('lint refuses a binding in a stream without what it requires; the engine does not bind it there', () => {
    const uses = refusedUses().filter((u) => u.requires);
    expect(uses.length).toBe(CHILD_OR_INCREMENTAL.length + REQUIRES.length);
    expect(uses.filter((u) => !refusalOf(c, u)).map((u) => `$${u.name} at ${formatPath(u.path)}`)).toEqual([]);
    const warned = uses.filter((u) => refusalOf(c, u)?.severity === 'warning').map((u) => u.name);
    expect(judge('request', 'unbound', [...new Set(warned)])).toEqual([]);
  });

  it('the engine refuses to load a spec with the error findings of the converse', () => {
    expect(c.refuse.filter((f) => f.severity === 'error' && /^RQ202[45]$/.test(f.code)).length).toBeGreaterThan(0);
    expect(c.runs.refuse?.code).toBe('RQ2000');
    // Every use was observed by lint: the spec is as large as the table's complement.
    expect(refusedUses().length).toBe(
      BINDING_AREAS.reduce((k, a) => k + outside(a).length, 0) + CHILD_OR_INCREMENTAL.length + REQUIRES.length,
    );
  });

  it.each(BINDING_AREAS)('area %s: scopeBindings hands over exactly the bindings of the area', (area) => {
    const all = Object.fromEntries(BINDING_NAMES.map((n) => [n, `value of ${n}`]));
    const scoped = scopeBindings(area, all);
    expect(Object.keys(scoped).sort()).toEqual([...bindingsOf(area)].sort());
    for (const n of outside(area)) expect(scoped).not.toHaveProperty(n);
  });
});
