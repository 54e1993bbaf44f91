import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { FaultKind, SimStats } from '../types.ts';
import { applyFaultCommand, FaultController } from './faults.ts';

export interface SimRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The raw query string without `?` (Cliniko rebuilds links from it). */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  remoteAddress: string;
}

export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface HostHooks {
  /** The platform itself. */
  handle(req: SimRequest): SimResponse | Promise<SimResponse>;
  /** The model's state for GET /__sandbox/snapshot (query parameters may narrow it). */
  snapshot(req: SimRequest): unknown;
  /** POST /__sandbox/mutate: `steps` (query or JSON body, default 1) random changes; what changed. */
  mutate(steps: number): unknown;
  /** Further control routes under /__sandbox/; return undefined for "not mine". */
  control?(req: SimRequest, sub: string): SimResponse | undefined | Promise<SimResponse | undefined>;
  /** Stats bucket for a request. */
  group(req: SimRequest): string;
  /** What an injected 5xx looks like on this platform; `variant` picks 500/502/503 deterministically. */
  fault5xx(variant: number): SimResponse;
  /** What this platform's rate limiter sends. */
  fault429(req: SimRequest): SimResponse;
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): SimResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

export function text(status: number, body: string, contentType = 'text/plain', headers: Record<string, string> = {}) {
  return { status, headers: { 'content-type': contentType, ...headers }, body } satisfies SimResponse;
}

export function html(status: number, body: string, headers: Record<string, string> = {}): SimResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...headers }, body };
}

export const NGINX_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
export const NGINX_503 =
  '<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

/** Parses a JSON request body. Empty body gives `{}`; invalid JSON throws. */
export function readJson(req: SimRequest): Record<string, unknown> {
  if (req.body.length === 0) return {};
  const parsed: unknown = JSON.parse(req.body.toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object');
  return parsed as Record<string, unknown>;
}

export function emptyStats(): SimStats {
  return { requests: 0, byStatus: {}, rateLimited: 0, byGroup: {}, faults: {} };
}

function bump(rec: Record<string, number>, key: string): void {
  rec[key] = (rec[key] ?? 0) + 1;
}

const MAX_BODY = 5 * 1024 * 1024;

/**
 * One HTTP server on 127.0.0.1: fault injection, stats, the shared part of the /__sandbox/ control API,
 * then the platform's own handler.
 */
export class SimHost {
  readonly faults: FaultController;
  private statsData: SimStats = emptyStats();
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  private timers = new Set<NodeJS.Timeout>();
  private baseOrigin = '';

  constructor(
    private readonly hooks: HostHooks,
    faults?: FaultController,
  ) {
    this.faults = faults ?? new FaultController();
  }

  get origin(): string {
    return this.baseOrigin;
  }

  get stats(): SimStats {
    return structuredClone(this.statsData);
  }

  resetStats(): void {
    this.statsData = emptyStats();
  }

  async listen(port = 0): Promise<string> {
    const server = createServer((req, res) => {
      this.onRequest(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`sandbox internal error: ${err instanceof Error ? err.message : String(err)}\n`);
        } else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    this.baseOrigin = `http://127.0.0.1:${addr.port}`;
    return this.baseOrigin;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > MAX_BODY) {
        res.writeHead(413, { 'content-type': 'text/plain' });
        res.end('Payload Too Large\n');
        return;
      }
      chunks.push(b);
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const simReq: SimRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      rawQuery: url.search.startsWith('?') ? url.search.slice(1) : url.search,
      headers: req.headers,
      body: Buffer.concat(chunks),
      remoteAddress: req.socket.remoteAddress ?? '127.0.0.1',
    };

    if (simReq.path.startsWith('/__sandbox/')) {
      const out = await this.control(simReq);
      this.write(res, out);
      return;
    }

    this.statsData.requests += 1;
    bump(this.statsData.byGroup, this.hooks.group(simReq));

    const fault = this.faults.next();
    if (fault) {
      bump(this.statsData.faults, fault);
      await this.injectFault(fault, simReq, req, res);
      return;
    }
    const out = await this.hooks.handle(simReq);
    this.record(out.status);
    this.write(res, out);
  }

  private record(status: number | string): void {
    bump(this.statsData.byStatus, String(status));
    if (status === 429) this.statsData.rateLimited += 1;
  }

  private async injectFault(kind: FaultKind, simReq: SimRequest, req: IncomingMessage, res: ServerResponse) {
    switch (kind) {
      case '5xx': {
        const out = this.hooks.fault5xx(this.faults.variant(3));
        this.record(out.status);
        this.write(res, out);
        return;
      }
      case '429': {
        const out = this.hooks.fault429(simReq);
        this.record(out.status);
        this.write(res, out);
        return;
      }
      case 'reset': {
        this.record('reset');
        req.socket.resetAndDestroy();
        return;
      }
      case 'timeout': {
        this.record('timeout');
        const socket = req.socket;
        const t = setTimeout(() => {
          this.timers.delete(t);
          socket.destroy();
        }, this.faults.timeoutHoldMs);
        this.timers.add(t);
        socket.once('close', () => {
          clearTimeout(t);
          this.timers.delete(t);
        });
        return;
      }
      case 'truncated': {
        const out = await this.hooks.handle(simReq);
        this.record(out.status);
        const body = Buffer.from(out.body ?? '');
        res.writeHead(out.status, { ...out.headers, 'content-length': String(body.length) });
        const socket = req.socket;
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => socket.destroy());
        return;
      }
    }
  }

  private write(res: ServerResponse, out: SimResponse): void {
    const body = out.body === undefined ? Buffer.alloc(0) : Buffer.from(out.body);
    res.writeHead(out.status, { ...out.headers, 'content-length': String(body.length) });
    res.end(body);
  }

  private async control(req: SimRequest): Promise<SimResponse> {
    const sub = req.path.slice('/__sandbox/'.length);
    try {
      if (sub === 'stats' && req.method === 'GET') return json(200, this.stats);
      if (sub === 'stats/reset' && req.method === 'POST') {
        this.resetStats();
        return json(200, this.stats);
      }
      if (sub === 'faults' && req.method === 'GET') return json(200, this.faults.state());
      if (sub === 'faults' && req.method === 'POST') return json(200, applyFaultCommand(this.faults, readJson(req)));
      if (sub === 'snapshot' && req.method === 'GET') return json(200, this.hooks.snapshot(req));
      if (sub === 'mutate' && req.method === 'POST')
        return json(200, this.hooks.mutate(Number(req.query.get('steps') ?? readJson(req).steps ?? 1)));
      const out = await this.hooks.control?.(req, sub);
      if (out) return out;
      return json(404, { error: `unknown sandbox control route ${req.method} /__sandbox/${sub}` });
    } catch (err) {
      return json(400, { error: err instanceof Error ? err.message : String(err) });
    }
  }
}
