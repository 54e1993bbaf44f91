/** Helpers shared by the sandbox's own tests. */
import { createServer, type IncomingHttpHeaders } from 'node:http';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until just after a fixed-window boundary, so a burst of requests lands in one window. */
export async function alignToWindow(windowMs: number): Promise<void> {
  await sleep(windowMs - (Date.now() % windowMs) + 15);
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP receiver (webhooks, External Requests). `respond` decides status and delay per request. */
export async function startReceiver(
  respond: (r: Received, n: number) => { status?: number; delayMs?: number; body?: string } = () => ({}),
) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      const out = respond(r, received.length);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(out.status ?? 200, { 'content-type': 'application/json' });
        res.end(out.body ?? '{"ok":true}');
      };
      if (out.delayMs) setTimeout(send, out.delayMs);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Replaces the sim's origin (random port) so snapshots of two sims can be compared. */
export function portless<T>(value: T, origin: string): unknown {
  return JSON.parse(JSON.stringify(value).replaceAll(origin, 'http://sandbox'));
}
