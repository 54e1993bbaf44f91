import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Recorded platform traffic for offline connector tests (full then incremental sync, test/e2e/fixtures.test.ts).
 * A recording proxy sits between the engine and a simulator and stores responses only — never request headers, so
 * no credential reaches a fixture; the proxy's own origin in bodies and headers (Cliniko's links.next) is stored as
 * {{BASE}}. A replay server answers the same requests from the file, phase by phase.
 */
import { type Exchange, requestKey } from '@routiq/runner/workbench';

// The cassette format and the replay server are the workbench's (routiq connector test --replay); this file keeps
// the recording proxy that test/fixtures/record.ts puts between the engine and a simulator.
export type { Cassette, Exchange } from '@routiq/runner/workbench';
export { requestKey, startReplay } from '@routiq/runner/workbench';

const KEPT_HEADERS = ['x-ratelimit-reset', 'retry-after', 'link'];

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
        key: requestKey(req.url ?? '/', [], origin),
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
