/**
 * Recorded platform traffic: what `routiq connector test --record` saves beside a connector
 * (connectors/<name>/fixtures/*.json) and what `--replay` and the offline connector tests serve back. Responses are
 * stored with the connection's origin as {{BASE}}; credential headers and query parameters are never stored, and any
 * secret value left in a URL or body is scrubbed. A replay server on loopback answers the same requests from the
 * file, phase by phase, so a run needs no network.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpExchange, HttpObserver } from '../engine/http.ts';
import type { CredentialNames } from './scrub.ts';
import { scrubHeaders, scrubSecrets } from './scrub.ts';

export interface Exchange {
  phase: string;
  method: string;
  /** Path and query relative to the origin, query parameters sorted, credential parameters removed. */
  key: string;
  /** The JSON body sent (search APIs page through it), when there was one. */
  requestBody?: string;
  status: number;
  contentType: string;
  headers: Record<string, string>;
  body: string;
}

export interface Cassette {
  connector: string;
  note: string;
  exchanges: Exchange[];
  /** Row counts per unified table after each phase (tests that write to a database check them). */
  expected: Record<string, Record<string, number>>;
  /** The connection it was recorded with: settings ({{BASE}} for the origin) and the names of its secrets. */
  connection?: { config: Record<string, unknown>; secrets: string[] };
  /** What was left out of every request; the replay server ignores these query parameters too. */
  credentials?: CredentialNames;
}

export const BASE = '{{BASE}}';
const KEPT_HEADERS = ['x-ratelimit-reset', 'retry-after', 'link', 'x-ratelimit-remaining', 'x-ratelimit-limit'];

/**
 * Parameters measured from the moment the request is sent (Chatwoot `updated_within=<seconds>`): a replay can never
 * send the recorded value, so they match by name only.
 */
const CLOCK_RELATIVE_PARAMS = new Set(['updated_within']);

/**
 * A request as a cassette key: path and sorted query, credentials dropped. With `origin`, that origin inside a
 * parameter value becomes {{BASE}} (Calendly's `organization=https://api.calendly.com/organizations/…`): the value is
 * URL-encoded in the query, where replacing the origin in the finished key would miss it.
 */
export function requestKey(url: string, dropParams: readonly string[] = [], origin?: string): string {
  const u = new URL(url, 'http://x');
  for (const name of CLOCK_RELATIVE_PARAMS) if (u.searchParams.has(name)) u.searchParams.set(name, '*');
  const params = [...u.searchParams.entries()]
    .filter(([k]) => !dropParams.includes(k))
    .map(([k, v]): [string, string] => [k, origin ? v.replaceAll(origin, BASE) : v])
    .sort(([a, av], [b, bv]) => (a === b ? av.localeCompare(bv) : a.localeCompare(b)));
  const q = new URLSearchParams(params).toString();
  return `${u.pathname}${q ? `?${q}` : ''}`;
}

/** JSON text in one canonical form (a body sent by got and a body read from a file compare equal). */
function canonicalBody(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  try {
    return JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v);
  } catch {
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
}

export interface Recorder {
  observer: HttpObserver;
  /** What every recorded request was stripped of. */
  credentials: CredentialNames;
  exchanges: Exchange[];
  setPhase(p: string): void;
}

/** Collects a run's exchanges (in-process, from the HTTP client's observer), scrubbed as they arrive. */
export function createRecorder(o: {
  origin: string;
  credentials: CredentialNames;
  secrets: readonly string[];
}): Recorder {
  const exchanges: Exchange[] = [];
  let phase = 'full';
  const scrub = (s: string) => scrubSecrets(s, o.secrets).replaceAll(o.origin, BASE);
  const onExchange = (x: HttpExchange) => {
    const u = new URL(x.sentUrl);
    const headers: Record<string, string> = {};
    const kept = scrubHeaders(x.headers, o.credentials, o.secrets);
    for (const h of KEPT_HEADERS) if (kept[h] !== undefined) headers[h] = scrub(kept[h]);
    const body = canonicalBody(x.request.body);
    exchanges.push({
      phase,
      method: x.request.method.toUpperCase(),
      key: scrub(requestKey(`${u.pathname}${u.search}`, o.credentials.query, o.origin)),
      ...(body !== undefined ? { requestBody: scrub(body) } : {}),
      status: x.status,
      contentType: String(x.headers['content-type'] ?? 'application/json'),
      headers,
      body: scrub(x.bodyText),
    });
  };
  return {
    observer: { onExchange },
    credentials: o.credentials,
    exchanges,
    setPhase: (p) => {
      phase = p;
    },
  };
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export interface ReplayServer {
  url: string;
  /** Requests the cassette has no answer for (answered 404 with a JSON body saying so). */
  misses: string[];
  setPhase(p: string): void;
  close(): Promise<void>;
}

/** Serves a cassette on loopback: same method, key (and JSON body when one was recorded) → the recorded answer. */
export async function startReplay(cassette: Cassette): Promise<ReplayServer> {
  let phase = 'full';
  let origin = '';
  const misses: string[] = [];
  const served = new Map<string, number>();
  const drop = cassette.credentials?.query ?? [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = requestKey(req.url ?? '/', drop, origin);
      const method = req.method ?? 'GET';
      const sent = chunks.length ? canonicalBody(Buffer.concat(chunks).toString('utf8')) : undefined;
      const candidates = cassette.exchanges.filter(
        (e) =>
          e.phase === phase &&
          e.method === method &&
          e.key === key &&
          (e.requestBody === undefined || e.requestBody.replaceAll(BASE, origin) === sent),
      );
      if (!candidates.length) {
        misses.push(`${phase} ${method} ${key}${sent ? ` ${sent.slice(0, 200)}` : ''}`);
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not in cassette', key }));
        return;
      }
      const id = `${phase} ${method} ${key} ${sent ?? ''}`;
      const n = served.get(id) ?? 0;
      served.set(id, n + 1);
      const e = candidates[Math.min(n, candidates.length - 1)] as Exchange;
      const sub = (s: string) => s.replaceAll(BASE, origin);
      res.writeHead(e.status, {
        'content-type': e.contentType,
        ...Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, sub(v)])),
      });
      res.end(sub(e.body));
    });
  });
  origin = await listen(server);
  return {
    url: origin,
    misses,
    setPhase: (p) => {
      phase = p;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Connection settings with {{BASE}} replaced (replay) or the origin replaced by {{BASE}} (record). */
export function substituteBase(config: Record<string, unknown>, from: string, to: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) out[k] = typeof v === 'string' ? v.replaceAll(from, to) : v;
  return out;
}
