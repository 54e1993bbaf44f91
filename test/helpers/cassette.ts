import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Recorded platform traffic for offline connector tests (and the seed of `routiq connector test --record/--replay`).
 * A recording proxy sits between the engine and a simulator and stores responses only — never request headers, so
 * no credential reaches a fixture; the proxy's own origin in bodies and headers (Cliniko's links.next) is stored as
 * {{BASE}}. A replay server answers the same requests from the file, phase by phase.
 */
export interface Exchange {
  phase: string;
  method: string;
  /** Path and query, query parameters sorted. */
  key: string;
  status: number;
  contentType: string;
  headers: Record<string, string>;
  body: string;
}

export interface Cassette {
  connector: string;
  note: string;
  exchanges: Exchange[];
  expected: Record<string, Record<string, number>>;
}

const KEPT_HEADERS = ['x-ratelimit-reset', 'retry-after', 'link'];

/**
 * Parameters measured from the moment the request is sent (Chatwoot `updated_within=<seconds>`): a replay can never
 * send the recorded value, so they match by name only.
 */
const CLOCK_RELATIVE_PARAMS = new Set(['updated_within']);

export function requestKey(url: string): string {
  const u = new URL(url, 'http://x');
  for (const name of CLOCK_RELATIVE_PARAMS) if (u.searchParams.has(name)) u.searchParams.set(name, '*');
  const params = [...u.searchParams.entries()].sort(([a, av], [b, bv]) =>
    a === b ? av.localeCompare(bv) : a.localeCompare(b),
  );
  const q = new URLSearchParams(params).toString();
  return `${u.pathname}${q ? `?${q}` : ''}`;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startRecorder(target: string) {
  const exchanges: Exchange[] = [];
  let phase = 'full';
  let origin = '';
  const targetUrl = new URL(target);
  const prefix = targetUrl.pathname.replace(/\/$/, '');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const upstream = await fetch(`${targetUrl.origin}${prefix}${req.url ?? ''}`, {
        method: req.method ?? 'GET',
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'content-length'),
        ) as Record<string, string>,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      const text = await upstream.text();
      const targetOrigin = `${targetUrl.origin}${prefix}`;
      const scrub = (s: string) => s.replaceAll(origin, '{{BASE}}').replaceAll(targetOrigin, '{{BASE}}');
      const headers: Record<string, string> = {};
      for (const h of KEPT_HEADERS) {
        const v = upstream.headers.get(h);
        if (v) headers[h] = scrub(v);
      }
      exchanges.push({
        phase,
        method: req.method ?? 'GET',
        key: requestKey(req.url ?? '/'),
        status: upstream.status,
        contentType: upstream.headers.get('content-type') ?? 'application/json',
        headers,
        body: scrub(text),
      });
      const out = text.replaceAll(targetOrigin, origin);
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/json',
        ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replaceAll('{{BASE}}', origin)])),
      });
      res.end(out);
    });
  });
  origin = await listen(server);
  return {
    url: origin,
    exchanges,
    setPhase: (p: string) => {
      phase = p;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function startReplay(cassette: Cassette) {
  let phase = 'full';
  let origin = '';
  const misses: string[] = [];
  const served = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const key = requestKey(req.url ?? '/');
    const candidates = cassette.exchanges.filter(
      (e) => e.phase === phase && e.method === (req.method ?? 'GET') && e.key === key,
    );
    if (!candidates.length) {
      misses.push(`${phase} ${req.method} ${key}`);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not in cassette', key }));
      return;
    }
    const id = `${phase} ${key}`;
    const n = served.get(id) ?? 0;
    served.set(id, n + 1);
    const e = candidates[Math.min(n, candidates.length - 1)] as Exchange;
    const sub = (s: string) => s.replaceAll('{{BASE}}', origin);
    res.writeHead(e.status, {
      'content-type': e.contentType,
      ...Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, sub(v)])),
    });
    res.end(sub(e.body));
  });
  origin = await listen(server);
  return {
    url: origin,
    misses,
    setPhase: (p: string) => {
      phase = p;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
