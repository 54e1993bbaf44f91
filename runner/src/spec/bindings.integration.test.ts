/**
 * The bindings table (spec/bindings.ts) held against lint and the engine, driven by the table itself.
 *
 * Bound: for every area and every binding the table puts there, generated specs read `$binding` at the area's
 * sites through something observable (a request the test server records, a stored row or cursor, an error
 * message, a webhook accepted or refused, a budget that renders or fails). Lint must accept every such use and
 * the engine must hand over the value lint promised.
 *
 * Unbound: every binding outside an area, and every binding in a stream without what it requires, draws a lint
 * error at the site it is used, and the engine refuses such a spec. scopeBindings drops them all; the
 * connector-wide request and auth, merged into each stream's request, are checked to get only their own area's
 * bindings in a child incremental stream.
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
import type { ConnectionContext } from '../engine/connection.ts';
import { buildRequest } from '../engine/request.ts';
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
import type { ConnectorSpec, StreamSpec } from './types.ts';

type Name = BindingName;
type Values = Record<string, unknown>;

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
  /** The sync_runs row of each connector's run: a run that failed must be closed. */
  runRows: Record<string, { status: string; error_code: string | null; error: string | null } | undefined>;
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
function declare(c: Ctx) {
  const site =
    (kind: Site['kind']) => (area: BindingArea, where: string, names: Name[], read: Site['read'], expect?: Values) =>
      c.sites.push({ area, where, names, kind, read, ...(expect ? { expect } : {}) });
  return { value: site('value'), holds: site('check') };
}

// ---- the probe connector: every area but the webhook ones ----------------------------------------------------

function probeSpec(c: Ctx): Values {
  const { value, holds } = declare(c);
  const pageExpect = (stream: string): Values => ({ response: pageBody(stream), records: [rec(stream)], page: 1 });
  const pv = c.values;

  // connection: base_url carries a probe; every budget renders -1 (fails the run) unless its binding held.
  const conn = bindingsOf('connection');
  value('connection', 'base_url', conn, async () => parseJson(first(c, 'parents')?.base) as Values);
  holds('connection', 'rate_limits.budgets[].requests', conn, async () => {
    const run = c.runs.probe;
    if (!run) return undefined;
    // A budget that does not render fails the run (RQ1007) before any stream.
    const error = run.error ?? (run.summary?.errorCode === 'RQ1007' ? run.summary.error : undefined);
    const failed = conn.find((n) => error?.includes(`budgets[b_${n}]`));
    if (error && !failed) return {};
    // Budgets render in order: before the failing one they held; after it they were not reached.
    const upTo = failed ? conn.indexOf(failed) : conn.length;
    return Object.fromEntries(conn.slice(0, upTo + 1).map((n) => [n, n !== failed]));
  });

  // request: a child incremental stream's own templates (path, params, headers, body).
  const req = bindingsOf('request');
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

  // connector_request: the connector-wide request and auth, read in the same child incremental stream.
  const wide = bindingsOf('connector_request');
  value('connector_request', 'request.params', wide, async () => perName(rq(), wide, (r, n) => r.query.get(`cq_${n}`)));
  value(
    'connector_request',
    'request.params (second page)',
    ['page'],
    async () => perName(requests(c, 'rq')[1], ['page'], (r, n) => r.query.get(`cq_${n}`)),
    { page: 2 },
  );
  value('connector_request', 'request.headers', wide, async () =>
    perName(rq(), wide, (r, n) => r.headers[`x-cq-${n}`]),
  );
  value('connector_request', 'auth.value', wide, async () => parseJson(rq()?.headers['x-auth']) as Values);

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

  // incremental: send params and headers (the start makes a cursor exist).
  const inc = bindingsOf('incremental');
  value('incremental', 'streams[rq].incremental.send.params', inc, async () =>
    perName(rq(), inc, (r, n) => r.query.get(`iq_${n}`)),
  );
  value('incremental', 'streams[rq].incremental.send.headers', inc, async () =>
    perName(rq(), inc, (r, n) => r.headers[`x-iq-${n}`]),
  );
  // incremental_start: an integer cursor is handed back as is, so the rendered start comes back as $cursor.
  const incStart = bindingsOf('incremental_start');
  value(
    'incremental_start',
    'streams[start].incremental.start',
    incStart,
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
  const parentKey = bindingsOf('parent_key');
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
  value('parent_key', 'streams[data].parent.key', parentKey, async () => afterBar((await state())?.partition));
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
    auth: { type: 'api_key', name: 'X-Auth', value: tpl(strOf(wide)) },
    request: {
      params: byName('cq_', wide, (n) => tpl(one(n))),
      headers: byName('x-cq-', wide, (n) => tpl(one(n))),
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
          start: tpl(strOf(incStart)),
          send: { params: { s: '{{ $cursor }}' } },
        },
      }),
      ...err.map((n) => plainStream(`err_${n}`)),
      plainStream('errm'),
      {
        name: 'data',
        parent: { stream: 'parents', key: `id & "|" & ${strOf(parentKey)}` },
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
  const { value, holds } = declare(c);
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
  /** Refused for the stream it is in (no parent, no incremental), not for the area. */
  requires?: true;
}

const REQUIRES = BINDING_NAMES.filter((n) => bindingInfo(n)?.requires !== undefined);

/** Where the converse spec reads a binding outside each area; stream 0 is plain, stream 1 a child incremental one. */
const REFUSED_AT: Record<BindingArea, (n: Name, i: number) => Array<string | number>> = {
  connection: (_, i) => ['rate_limits', 'budgets', i, 'requests'],
  request: (n) => ['streams', 1, 'request', 'params', `n_${n}`],
  connector_request: (n) => ['request', 'params', `n_${n}`],
  pagination: () => ['streams', 1, 'pagination', 'token'],
  incremental: (n) => ['streams', 1, 'incremental', 'send', 'params', `n_${n}`],
  incremental_start: () => ['streams', 1, 'incremental', 'start'],
  errors: (_, i) => ['errors', i, 'body'],
  data: (_, i) => ['streams', 1, 'map', i, 'input'],
  parent_key: () => ['streams', 1, 'parent', 'key'],
  mapping: (_, i) => ['streams', 1, 'map', i, 'expression'],
  webhook_verify: () => ['webhooks', 'verify', 'token'],
  webhook_data: (_, i) => ['webhooks', 'events', i, 'when'],
  webhook_mapping: (_, i) => ['webhooks', 'events', 0, 'map', i, 'expression'],
};

function refusedUses(): RefusedUse[] {
  const u: RefusedUse[] = [];
  for (const area of BINDING_AREAS)
    outside(area).forEach((n, i) => {
      u.push({ name: n, area, path: REFUSED_AT[area](n, i) });
    });
  for (const n of REQUIRES)
    u.push({ name: n, area: 'request', path: ['streams', 0, 'request', 'params', `r_${n}`], requires: true });
  return u;
}

function refuseSpec(): Values {
  const names = (...path: Array<string | number>) =>
    refusedUses()
      .filter((x) => formatPath(x.path) === formatPath(path))
      .map((x) => v(x.name));
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
    request: { params: byName('n_', outside('connector_request'), (n) => tpl(v(n))) },
    rate_limits: {
      budgets: outside('connection').map((n, i) => ({ name: `b${i}`, requests: tpl(v(n)), per_seconds: 1 })),
    },
    errors: outside('errors').map((n) => ({ status: 418, body: v(n), action: 'ignore' })),
    streams: [
      {
        ...plainStream('top'),
        request: { path: '/top', params: byName('r_', REQUIRES, (n) => tpl(v(n))) },
      },
      {
        name: 'kid',
        parent: { stream: 'top', key: `$string([${names('streams', 1, 'parent', 'key').join(', ')}])` },
        request: { path: '/kid', params: byName('n_', outside('request'), (n) => tpl(v(n))) },
        pagination: {
          type: 'cursor',
          param: 'next',
          token: `$string([${names('streams', 1, 'pagination', 'token').join(', ')}])`,
        },
        incremental: {
          cursor_field: 'updated_at',
          type: 'datetime',
          order: 'none',
          start: names('streams', 1, 'incremental', 'start').map(tpl).join('-'),
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
        token: names('webhooks', 'verify', 'token').map(tpl).join('-'),
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

/** A connection whose rate budget renders to no number (RQ1007): its run must fail and be closed. */
function budgetSpec(): Values {
  return {
    spec_version: 1,
    name: 'budget',
    version: '1.0.0',
    connection: CONNECTION,
    base_url: '{{ $config.api }}',
    auth: { type: 'none' },
    rate_limits: { budgets: [{ name: 'bad', requests: '{{ $config.flavour }}', per_seconds: 1 }] },
    streams: [plainStream('budget_unused')],
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
      runRows: {},
      webhookErrors: {},
      refuse: [],
    };
    c.specs.refuse = stringify(refuseSpec(), { lineWidth: 0 });
    c.refuse = lintSpecText(c.specs.refuse, 'refuse/connector.yaml');
    c.specs.probe = stringify(probeSpec(c), { lineWidth: 0 });
    webhookSpecs(c);
    c.specs.budget = stringify(budgetSpec(), { lineWidth: 0 });

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
    for (const name of ['probe', 'refuse', 'budget']) {
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
      const rows = await t.db.query<{ status: string; error_code: string | null; error: string | null }>(
        'select status, error_code, error from sync_runs where organization_id = ? and connector = ?',
        [base.id, name],
      );
      c.runRows[name] = rows[0];
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

  /** Problems of one area: a binding no site observes, or one the engine did not bind to the value promised. */
  function judge(area: BindingArea, names: readonly Name[]): string[] {
    const problems: string[] = [];
    for (const n of names) {
      const at = c.sites.filter((s) => s.area === area && s.names.includes(n));
      if (!at.length) problems.push(`$${n} in ${area}: no site of the engine observes it`);
      for (const s of at) {
        const got = seen.get(s) ?? { error: 'never read' };
        let ok = false;
        let detail = got.error ?? '';
        if (got.values && s.kind === 'check') {
          ok = got.values[n] === true;
          detail = n in got.values ? 'did not hold' : 'was not reached (the run stopped before)';
        } else if (got.values) {
          const w = wanted.get(s)?.[n];
          ok = n in got.values && sameAs(n, got.values[n], w);
          detail =
            n in got.values ? `was ${JSON.stringify(got.values[n])}, expected ${JSON.stringify(w)}` : 'was not bound';
        }
        if (!ok) problems.push(`$${n} at ${s.where} (${area}) ${detail}`);
      }
    }
    return problems;
  }

  it('lint accepts every generated use of a binding in its area (no RQ2022–RQ2025, no error at all)', () => {
    const names = Object.keys(c.specs).filter((n) => n !== 'refuse');
    expect(names.length).toBe(3 + 2 * bindingsOf('webhook_verify').length);
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

  it('the probe run ran to the end (a run that did not is no evidence)', () => {
    const run = c.runs.probe;
    expect(run?.error, 'probe sync').toBeUndefined();
    expect(run?.summary?.errorCode === 'RQ1007' ? run.summary.error : undefined, 'probe budgets').toBeUndefined();
    // Only the error probes fail, by design (a 418 not ignored, a 419 permanent).
    const failed = (run?.summary?.streams ?? []).filter(
      (s) => s.status !== 'ok' && s.stream !== 'errm' && !s.stream.startsWith('err_'),
    );
    expect(failed.map((s) => `probe.${s.stream}: ${s.error}`)).toEqual([]);
    expect(c.webhookErrors).toEqual({});
  });

  it.each(BINDING_AREAS)(
    'area %s: the engine binds every binding lint accepts there, to the value promised',
    (area) => {
      expect(judge(area, bindingsOf(area))).toEqual([]);
    },
  );

  it.each(BINDING_AREAS)('area %s: lint refuses (an error) every binding outside it', (area) => {
    const problems: string[] = [];
    for (const u of refusedUses().filter((x) => x.area === area && !x.requires)) {
      const f = refusalOf(c, u);
      if (!f) problems.push(`lint says nothing about $${u.name} at ${formatPath(u.path)}`);
      else if (f.severity !== 'error') problems.push(`${f.code} on $${u.name} at ${f.path} is only a ${f.severity}`);
    }
    expect(problems).toEqual([]);
  });

  it('lint refuses (an error) a binding in a stream without what it requires', () => {
    const uses = refusedUses().filter((u) => u.requires);
    expect(uses.length).toBe(REQUIRES.length);
    expect(
      uses
        .filter((u) => refusalOf(c, u)?.severity !== 'error')
        .map((u) => `$${u.name} at ${formatPath(u.path)}: ${refusalOf(c, u)?.severity ?? 'nothing'}`),
    ).toEqual([]);
  });

  it('the engine refuses to load a spec with the error findings of the converse', () => {
    expect(c.refuse.filter((f) => f.severity === 'error' && /^RQ202[345]$/.test(f.code)).length).toBeGreaterThan(0);
    expect(c.runs.refuse?.code).toBe('RQ2000');
    // Every use was observed by lint: the spec is as large as the table's complement.
    expect(refusedUses().length).toBe(BINDING_AREAS.reduce((k, a) => k + outside(a).length, 0) + REQUIRES.length);
  });

  it.each(BINDING_AREAS)('area %s: scopeBindings hands over exactly the bindings of the area', (area) => {
    const all = Object.fromEntries(BINDING_NAMES.map((n) => [n, `value of ${n}`]));
    const scoped = scopeBindings(area, all);
    expect(Object.keys(scoped).sort()).toEqual([...bindingsOf(area)].sort());
    for (const n of outside(area)) expect(scoped).not.toHaveProperty(n);
  });

  it("connector-wide request and auth get only their area's bindings, even in a child incremental stream", async () => {
    // Lint refuses a spec that reads $cursor or $parent there, so the engine is asked directly.
    const streamValues: Values = { ...c.values, run_started_at: new Date(T0).toISOString() };
    const all = bindingsOf('request');
    const probe = tpl(strOf(all));
    const spec = {
      name: 'direct',
      auth: { type: 'api_key', in: 'header', name: 'X-Auth', value: probe },
      request: { params: { wide: probe, both: 'connector' }, headers: { 'X-Wide': probe, 'X-Both': 'connector' } },
    } as unknown as ConnectorSpec;
    const stream = {
      name: 'kid',
      parent: { stream: 'top' },
      request: { path: '/kid', params: { both: '{{ $cursor_iso }}' }, headers: { 'X-Both': '{{ $parent.id }}' } },
      pagination: { type: 'none' },
    } as unknown as StreamSpec;
    const base = String(c.values.base_url);
    const cctx = { spec, baseUrl: base, bindings: {}, config: {}, secrets: {} } as unknown as ConnectionContext;
    const r = await buildRequest(
      {
        c: cctx,
        stream,
        bindings: scopeBindings('request', streamValues),
        hasCursor: true,
        timeoutMs: 1000,
        hookContext: () => {
          throw new Error('no hooks here');
        },
      },
      { query: [], page: 3 },
    );
    const onPage3: Values = { ...streamValues, page: 3 };
    const expected = Object.fromEntries(bindingsOf('connector_request').map((n) => [n, onPage3[n]]));
    const param = (k: string) => r.searchParams.filter(([n]) => n === k).map(([, x]) => x);
    expect(JSON.parse(param('wide')[0] ?? '{}')).toEqual(expected);
    expect(JSON.parse(r.headers['X-Wide'] ?? '{}')).toEqual(expected);
    expect(JSON.parse(r.headers['X-Auth'] ?? '{}')).toEqual(expected);
    // The stream's own param and header of the same name replace the connector's, with the stream's bindings.
    expect(param('both')).toEqual([START]);
    expect(r.headers['X-Both']).toBe(PARENT.id);
  });

  it('a rate budget that does not render fails the run, which is closed (never left running)', () => {
    const run = c.runs.budget;
    expect(run?.error, 'the failure is in the summary, not thrown').toBeUndefined();
    expect(run?.summary?.status).toBe('failed');
    expect(run?.summary?.errorCode).toBe('RQ1007');
    expect(run?.summary?.error).toContain('rate_limits.budgets[bad].requests');
    expect(c.runRows.budget).toMatchObject({ status: 'failed', error_code: 'RQ1007' });
  });
});
