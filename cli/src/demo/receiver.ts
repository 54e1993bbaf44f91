import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Database,
  ingestWebhook,
  isRoutiqError,
  type Logger,
  type RoutiqConfig,
  safeMessage,
} from '@routiq/runner';

/**
 * A minimal webhook endpoint for the demo: POST /webhooks/<org>/<connection>. The service mode will mount the
 * same ingestWebhook() behind fastify; this one exists so the demo needs nothing but Node.
 */
export async function startWebhookReceiver(db: Database, config: RoutiqConfig, logger: Logger, env: NodeJS.ProcessEnv) {
  let received = 0;
  let rejected = 0;
  const errors: string[] = [];
  const server = http.createServer((req, res) => {
    const m = /^\/webhooks\/([^/]+)\/([^/?]+)/.exec(req.url ?? '');
    const org = m ? config.organizations.find((o) => o.id === decodeURIComponent(m[1] ?? '')) : undefined;
    const conn = org?.connections.find((c) => c.name === decodeURIComponent(m?.[2] ?? ''));
    if (req.method !== 'POST' || !org || !conn) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received++;
      ingestWebhook({
        db,
        config,
        org,
        conn,
        headers: req.headers,
        rawBody: Buffer.concat(chunks).toString('utf8'),
        logger,
        env,
      })
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
