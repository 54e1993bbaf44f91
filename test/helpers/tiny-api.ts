import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny generic REST API for engine tests (NOT a platform simulator): one list of items served with every
 * pagination style the spec language has, behind every auth style, plus id-windowed child notes.
 */
export interface Item {
  id: string;
  name: string;
  updated_at: string;
}
export interface Note {
  id: number;
  item_id: string;
  body: string;
  created_at: number;
}

export interface TinyApiOptions {
  items?: number;
  notesPerItem?: number;
  auth?: 'none' | 'api_key' | 'query' | 'bearer' | 'basic' | 'oauth2';
  secret?: string;
  /** Delay every response (ms), for kill tests. */
  delayMs?: number;
}

export interface TinyApi {
  url: string;
  items: Item[];
  notes: Note[];
  requests: Map<string, number>;
  total(): number;
  /** Call `listener` with the path of every request as it arrives (before the response); returns an unsubscribe. */
  onRequest(listener: (path: string) => void): () => void;
  /** Respond 429 (with Retry-After: 0 and X-Reset) to the next n requests. */
  throttleNext(n: number): void;
  failNext(n: number, status?: number): void;
  touch(ids: string[]): void;
  /** Change the delay of every later response (ms); a long one holds requests past a shutdown bound. */
  setDelay(ms: number): void;
  addNotes(itemId: string, n: number): void;
  close(): Promise<void>;
}

export async function startTinyApi(o: TinyApiOptions = {}): Promise<TinyApi> {
  const base = Date.parse('2026-01-01T00:00:00Z');
  const items: Item[] = Array.from({ length: o.items ?? 57 }, (_, i) => ({
    id: String(9_007_199_254_740_993n + BigInt(i)),
    name: `Item ${i} ‘quoted’ "x" \\ ?`,
    updated_at: new Date(base + i * 60_000).toISOString(),
  }));
  let noteId = 1000;
  const notes: Note[] = [];
  for (const it of items)
    for (let k = 0; k < (o.notesPerItem ?? 0); k++)
      notes.push({ id: noteId++, item_id: it.id, body: `note ${k}`, created_at: 1_760_000_000 + noteId });
  const requests = new Map<string, number>();
  const listeners = new Set<(path: string) => void>();
  let throttle = 0;
  let fail = 0;
  let failStatus = 503;
  const secret = o.secret ?? 's3cret';
  const auth = o.auth ?? 'none';
  let delayMs = o.delayMs ?? 0;

  const authorized = (req: http.IncomingMessage, url: URL) => {
    switch (auth) {
      case 'none':
        return true;
      case 'api_key':
        return req.headers['x-api-key'] === secret;
      case 'query':
        return url.searchParams.get('api_key') === secret;
      case 'bearer':
        return req.headers.authorization === `Bearer ${secret}`;
      case 'basic':
        return req.headers.authorization === `Basic ${Buffer.from(`${secret}:`).toString('base64')}`;
      case 'oauth2':
        return req.headers.authorization === 'Bearer tok-from-oauth';
    }
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.set(url.pathname, (requests.get(url.pathname) ?? 0) + 1);
    for (const l of listeners) l(url.pathname);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
        ...headers,
      });
      res.end(text);
    };
    const respond = () => {
      if (url.pathname === '/oauth/token') {
        let data = '';
        req.on('data', (c) => (data += c));
        req.on('end', () => {
          const f = new URLSearchParams(data);
          if (f.get('client_secret') === secret && f.get('grant_type') === 'client_credentials')
            send(200, { access_token: 'tok-from-oauth', expires_in: 3600 });
          else send(401, { error: 'invalid_client' });
        });
        return;
      }
      if (throttle > 0) {
        throttle--;
        return send(429, 'Retry later\n', { 'retry-after': '0' });
      }
      if (fail > 0) {
        fail--;
        return send(failStatus, { error: 'boom' });
      }
      if (!authorized(req, url)) return send(401, { error: 'Invalid Access Token' });
      const since = url.searchParams.get('updated_since');
      const list = items
        .filter((i) => !since || i.updated_at > since)
        .sort((a, b) => a.updated_at.localeCompare(b.updated_at));
      const num = (k: string, d: number) => Number(url.searchParams.get(k) ?? d);
      const m = /^\/items\/([^/]+)\/notes$/.exec(url.pathname);
      if (m) {
        const mine = notes.filter((n) => n.item_id === m[1]).sort((a, b) => a.id - b.id);
        const before = url.searchParams.get('before');
        const after = url.searchParams.get('after');
        let page: Note[];
        if (after) page = mine.filter((n) => n.id > Number(after)).slice(0, 10);
        else if (before) page = mine.filter((n) => n.id < Number(before)).slice(-4);
        else page = mine.slice(-4);
        return send(200, { payload: page });
      }
      switch (url.pathname) {
        case '/items/page': {
          const p = num('page', 1);
          const per = num('per_page', 10);
          return send(200, { data: list.slice((p - 1) * per, p * per), total: list.length });
        }
        case '/items/offset':
          return send(200, { items: list.slice(num('offset', 0), num('offset', 0) + num('limit', 10)) });
        case '/items/cursor': {
          const start = Number(url.searchParams.get('cursor') ?? 0);
          const next = start + 10 < list.length ? String(start + 10) : null;
          return send(200, { results: list.slice(start, start + 10), meta: { next } });
        }
        case '/items/link': {
          const p = num('page', 1);
          const nextUrl =
            p * 10 < list.length
              ? `${url.pathname}?page=${p + 1}${since ? `&updated_since=${encodeURIComponent(since)}` : ''}`
              : undefined;
          return send(200, {
            items: list.slice((p - 1) * 10, p * 10),
            links: nextUrl ? { next: `http://${req.headers.host}${nextUrl}` } : {},
          });
        }
        case '/items/header': {
          const p = num('page', 1);
          const h: Record<string, string> = {};
          if (p * 10 < list.length)
            h.link = `<http://${req.headers.host}/items/header?page=${p + 1}${since ? `&updated_since=${encodeURIComponent(since)}` : ''}>; rel="next"`;
          return send(200, list.slice((p - 1) * 10, p * 10), h);
        }
        default:
          return send(404, '<html>Not found</html>');
      }
    };
    if (delayMs) setTimeout(respond, delayMs);
    else respond();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    items,
    notes,
    requests,
    total: () => [...requests.values()].reduce((a, b) => a + b, 0),
    onRequest(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    throttleNext: (n) => {
      throttle = n;
    },
    failNext: (n, status = 503) => {
      fail = n;
      failStatus = status;
    },
    touch(ids) {
      const now = Date.now();
      for (const it of items) if (ids.includes(it.id)) it.updated_at = new Date(now).toISOString();
    },
    setDelay(ms) {
      delayMs = ms;
    },
    addNotes(itemId, n) {
      for (let k = 0; k < n; k++)
        notes.push({ id: noteId++, item_id: itemId, body: `late ${k}`, created_at: 1_770_000_000 + noteId });
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
