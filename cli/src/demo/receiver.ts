import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  checkPayload,
  type Database,
  DEFAULT_PAYLOAD_LIMITS,
  ingestWebhook,
  isRoutiqError,
  type Logger,
  type PayloadLimits,
  type RoutiqConfig,
  safeMessage,
  tooLarge,
} from '@routiq/runner';

export interface ReceiverOptions {
  /** Body size and JSON nesting limits (default DEFAULT_PAYLOAD_LIMITS: 1 MiB, depth 64). */
  limits?: Partial<PayloadLimits>;
}

/**
 * A minimal webhook endpoint for the demo: POST /webhooks/<org>/<connection>. The service mode will mount the
 * same ingestWebhook() behind fastify; this one exists so the demo needs nothing but Node. Whatever arrives is
 * untrusted: a bad URL, an oversized or over-nested body gets a 4xx with its reason, never a crash, and a body
 * is never buffered past the size limit.
 */
export async function startWebhookReceiver(
  db: Database,
  config: RoutiqConfig,
  logger: Logger,
  env: NodeJS.ProcessEnv,
  opts: ReceiverOptions = {},
) {
  const limits: PayloadLimits = { ...DEFAULT_PAYLOAD_LIMITS, ...opts.limits };
  let received = 0;
  let rejected = 0;
  const errors: string[] = [];
  const reject = (req: http.IncomingMessage, res: http.ServerResponse, status: number, reason: string) => {
    rejected++;
    logger.warn({ status, reason, path: safePath(req.url) }, 'webhook refused');
    if (res.headersSent) return;
    // A refused body is not read to its end: the connection closes once the answer is out.
    res.on('finish', () => req.socket.destroy());
    res
      .writeHead(status, { 'content-type': 'application/json', connection: 'close' })
      .end(JSON.stringify({ error: reason }));
  };

  const server = http.createServer((req, res) => {
    const route = parseRoute(req.url ?? '');
    if (route && 'error' in route) {
      reject(req, res, 400, route.error);
      return;
    }
    const org = route && config.organizations.find((o) => o.id === route.org);
    const conn = route && org?.connections.find((c) => c.name === route.connection);
    if (req.method !== 'POST' || !org || !conn) {
      res.writeHead(404).end();
      return;
    }
    const announced = Number(req.headers['content-length']);
    const early = Number.isFinite(announced) ? tooLarge(announced, limits) : undefined;
    if (early) {
      reject(req, res, early.status, early.reason);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      const over = tooLarge(size, limits);
      if (over) {
        refused = true;
        chunks.length = 0;
        req.pause();
        reject(req, res, over.status, over.reason);
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {
      refused = true;
    });
    req.on('end', () => {
      if (refused) return;
      received++;
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const bad = checkPayload(rawBody, limits);
      if (bad) {
        reject(req, res, bad.status, bad.reason);
        return;
      }
      ingestWebhook({ db, config, org, conn, headers: req.headers, rawBody, logger, env })
        .then((r) => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.status }));
        })
        .catch((err) => {
          rejected++;
          if (errors.length < 20) errors.push(safeMessage(err));
          const status = isRoutiqError(err) && err.code === 'RQ5005' ? 401 : 500;
          logger.warn({ err: { message: safeMessage(err) } }, 'webhook not ingested');
          res
            .writeHead(status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: status === 401 ? safeMessage(err) : 'internal error; see the service log' }));
        });
    });
  });
  // A client that trickles its request in must not hold a connection for Node's default 5 minutes.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({ received, rejected, errors: [...errors] }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** `/webhooks/<org>/<connection>` with both segments decoded, why the path is unusable, or undefined (no route). */
export function parseRoute(url: string): { org: string; connection: string } | { error: string } | undefined {
  const m = /^\/webhooks\/([^/?]+)\/([^/?]+)\/?(?:\?.*)?$/.exec(url);
  if (!m) return undefined;
  try {
    return { org: decodeURIComponent(m[1] ?? ''), connection: decodeURIComponent(m[2] ?? '') };
  } catch {
    return { error: 'the URL path has malformed percent-encoding' };
  }
}

/** The request path for a log line: truncated, without the query string. */
function safePath(url: string | undefined): string {
  const p = (url ?? '').split('?')[0] ?? '';
  return p.length > 200 ? `${p.slice(0, 200)}…` : p;
}
