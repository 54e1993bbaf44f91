import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import '@routiq/sdk';
import { type ConnectionSummary, syncConnection } from './sync.ts';

/**
 * Issue #17, "Must show": a platform's responses are untrusted. Credentials go only to the connection's origins (a
 * next link elsewhere is refused with RQ3009, or followed bare when the spec says so); pages that alternate or
 * tokens that keep changing over the same records end in RQ3007 within a few requests; records whose primary key
 * or external id is not a platform id are dead-lettered (RQ5007) and never stored as "null", "true", "[1,2]".
 */
const kinds = await backends();
const SECRET = 'sek-untrusted-7f3a';
const BASIC = `Basic ${Buffer.from(`${SECRET}:`).toString('base64')}`;

interface Received {
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}
interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}
interface Api {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A server whose every answer the test decides; it records what it was sent. */
async function api(handle: (r: Received, n: number, self: string) => Reply): Promise<Api> {
  const received: Received[] = [];
  let self = '';
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const r: Received = { path: u.pathname, query: u.searchParams, headers: req.headers };
    received.push(r);
    const reply = handle(r, received.length, self);
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
    res.end(JSON.stringify(reply.body));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: self,
    received,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** Basic auth with the secret (as Cliniko), plus a header whose template uses $secrets and one that does not. */
function spec(name: string, stream: string, requestExtra = ''): string {
  return `spec_version: 1
name: ${name}
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
    files_url: { type: string }
    secret: { type: string, secret: true }
  required: [base_url, secret]
base_url: "{{ $config.base_url }}"
auth: { type: basic, username: "{{ $secrets.secret }}" }
request:
  headers:
    Accept: application/json
    X-Tenant-Key: "{{ $secrets.secret }}"
${requestExtra}streams:
  - name: items
${stream}    map:
      - target: practitioners
        expression: |
          { "external_id": $string(id), "display_name": name }
`;
}

const LINKED = (crossOrigin = '') => `    request: { path: /items }
    records: items
    pagination: { type: next_link, path: links.next${crossOrigin} }
`;

const items = (...ids: string[]) => ids.map((id) => ({ id, name: `Dr ${id}` }));

describe.each(kinds)('untrusted platform responses (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  async function run(
    id: string,
    name: string,
    text: string,
    config: Record<string, unknown>,
  ): Promise<{
    summary: ConnectionSummary;
    stored: string[];
    letters: Array<{ error_code: string; message: string }>;
  }> {
    const o = org(id, [{ connector: name, config, secrets: { secret: '${UNTRUSTED_SECRET}' } }]);
    const summary = await syncConnection({
      db: t.db,
      config: testConfig(connectorsDir({ [name]: text }), [o]),
      org: o,
      conn: o.connections[0]!,
      logger: silentLogger,
      env: { UNTRUSTED_SECRET: SECRET },
    });
    const stored = (
      await t.db.query<{ external_id: string }>(
        'select external_id from practitioners where organization_id = ? order by external_id',
        [id],
      )
    ).map((r) => r.external_id);
    const letters = await t.db.query<{ error_code: string; message: string }>(
      'select error_code, message from sync_errors where organization_id = ? order by created_at, error_code',
      [id],
    );
    return { summary, stored, letters };
  }

  /** The base API: page 1 here, page 2 at `next` (another origin). */
  const twoOrigins = async () => {
    const other = await api(() => ({ body: { items: items('c', 'd'), links: {} } }));
    const base = await api(() => ({ body: { items: items('a', 'b'), links: { next: `${other.url}/items?page=2` } } }));
    return { base, other, close: () => Promise.all([base.close(), other.close()]) };
  };

  describe('a next link to another origin', () => {
    it('is refused by default (RQ3009): the other origin is never contacted, page 1 is kept', async () => {
      const s = await twoOrigins();
      try {
        const r = await run('org_xo_refuse', 'xo_refuse', spec('xo_refuse', LINKED()), { base_url: s.base.url });
        expect(r.summary.status).toBe('failed');
        expect(r.summary.streams[0]).toMatchObject({ status: 'failed', errorCode: 'RQ3009' });
        expect(r.summary.streams[0]?.error).toContain(new URL(s.other.url).origin);
        expect(s.other.received).toEqual([]);
        expect(s.base.received.map((x) => x.headers.authorization)).toEqual([BASIC]);
        expect(r.stored).toEqual(['a', 'b']);
        expect(r.letters.map((l) => l.error_code)).toEqual(['RQ3009']);
        expect(r.letters[0]?.message).not.toContain(SECRET);
      } finally {
        await s.close();
      }
    });

    it('is followed without credentials when the spec says cross_origin: without_credentials', async () => {
      const s = await twoOrigins();
      try {
        const name = 'xo_bare';
        const r = await run(`org_${name}`, name, spec(name, LINKED(', cross_origin: without_credentials')), {
          base_url: s.base.url,
        });
        expect(r.summary.status, JSON.stringify(r.summary.streams)).toBe('succeeded');
        expect(r.stored).toEqual(['a', 'b', 'c', 'd']);
        expect(s.base.received.map((x) => [x.headers.authorization, x.headers['x-tenant-key']])).toEqual([
          [BASIC, SECRET],
        ]);
        expect(s.other.received).toHaveLength(1);
        const bare = s.other.received[0]!;
        expect(bare.headers.authorization).toBeUndefined();
        expect(bare.headers['x-tenant-key']).toBeUndefined();
        expect(bare.headers.accept).toBe('application/json');
        expect(JSON.stringify({ h: bare.headers, q: [...bare.query] })).not.toContain(SECRET);
      } finally {
        await s.close();
      }
    });

    it('gets the credentials when its origin is in request.allowed_origins', async () => {
      const s = await twoOrigins();
      try {
        const name = 'xo_allowed';
        const text = spec(name, LINKED(), '  allowed_origins: ["{{ $config.files_url }}"]\n');
        const r = await run(`org_${name}`, name, text, { base_url: s.base.url, files_url: s.other.url });
        expect(r.summary.status, JSON.stringify(r.summary.streams)).toBe('succeeded');
        expect(r.stored).toEqual(['a', 'b', 'c', 'd']);
        expect(s.other.received.map((x) => [x.headers.authorization, x.headers['x-tenant-key']])).toEqual([
          [BASIC, SECRET],
        ]);
      } finally {
        await s.close();
      }
    });

    it('from a Link header is refused the same way', async () => {
      const other = await api(() => ({ body: items('c') }));
      const base = await api(() => ({
        body: items('a'),
        headers: { link: `<${other.url}/items?page=2>; rel="next"` },
      }));
      try {
        const name = 'xo_header';
        const text = spec(name, '    request: { path: /items }\n    pagination: { type: next_link, from: header }\n');
        const r = await run(`org_${name}`, name, text, { base_url: base.url });
        expect(r.summary.streams[0]).toMatchObject({ status: 'failed', errorCode: 'RQ3009' });
        expect(other.received).toEqual([]);
        expect(r.stored).toEqual(['a']);
      } finally {
        await Promise.all([base.close(), other.close()]);
      }
    });
  });

  describe('pagination loops end with RQ3007 after a handful of requests', () => {
    const loops: Array<[string, string, (r: Received, n: number, self: string) => Reply]> = [
      [
        'pages alternating A, B, A, B (page numbers ignored)',
        '    request: { path: /items }\n    records: items\n    pagination: { type: page_number, size: 2 }\n',
        (_r, n) => ({ body: { items: n % 2 ? items('a1', 'a2') : items('b1', 'b2') } }),
      ],
      [
        'next links alternating between two URLs',
        LINKED(),
        (r, _n, self) =>
          r.query.get('p') === 'b'
            ? { body: { items: items('b1'), links: { next: `${self}/items?p=a` } } }
            : { body: { items: items('a1'), links: { next: `${self}/items?p=b` } } },
      ],
      [
        'a new cursor token on every page over the same records',
        '    request: { path: /items }\n    records: items\n    pagination: { type: cursor, token: next, param: cursor }\n',
        (_r, n) => ({ body: { items: items('s1', 's2'), next: `tok-${n}-${Math.random().toString(36).slice(2)}` } }),
      ],
      [
        'a new cursor token on every page, records alternating',
        '    request: { path: /items }\n    records: items\n    pagination: { type: cursor, token: next, param: cursor }\n',
        (_r, n) => ({ body: { items: n % 2 ? items('x1') : items('y1'), next: `tok-${n}` } }),
      ],
      [
        'cursor tokens alternating',
        '    request: { path: /items }\n    records: items\n    pagination: { type: cursor, token: next, param: cursor }\n',
        (r, n) => ({ body: { items: items(`t${n}`), next: r.query.get('cursor') === 'B' ? 'A' : 'B' } }),
      ],
    ];
    it.each(loops.map((l, i) => [...l, i] as const))('%s', async (_label, stream, handle, i) => {
      const server = await api(handle);
      try {
        const name = `loop_${i}`;
        const r = await run(`org_${name}`, name, spec(name, stream), { base_url: server.url });
        expect(r.summary.streams[0], JSON.stringify(r.summary.streams)).toMatchObject({
          status: 'failed',
          errorCode: 'RQ3007',
        });
        expect(server.received.length).toBeLessThan(10);
        expect(r.letters.map((l) => l.error_code)).toEqual(['RQ3007']);
        expect(r.letters[0]?.message).toMatch(/pagination loop/);
        // What the pages held before the loop showed is kept.
        expect(r.stored.length).toBeGreaterThan(0);
      } finally {
        await server.close();
      }
    });
  });

  it('dead-letters records whose primary key or external id is not a platform id (RQ5007), storing none of them', async () => {
    const records = [
      { id: 'ok-1', name: 'kept' },
      { id: null, name: 'null id' },
      { id: true, name: 'boolean id' },
      { id: [1, 2], name: 'array id' },
      { id: {}, name: 'object id' },
      { name: 'no id' },
      { id: '  ', name: 'blank id' },
      { id: 7, name: 'numeric id' },
      { id: 'ok-2', name: 'kept too' },
    ];
    const server = await api(() => ({ body: { items: records } }));
    try {
      const name = 'odd_ids';
      const text = spec(name, '    request: { path: /items }\n    records: items\n    pagination: { type: none }\n');
      const r = await run(`org_${name}`, name, text, { base_url: server.url });
      expect(r.summary.status, JSON.stringify(r.summary.streams)).toBe('succeeded');
      expect(r.summary.streams[0]).toMatchObject({ status: 'ok', records: 9, inserted: 3, deadLetters: 6 });
      expect(r.stored).toEqual(['7', 'ok-1', 'ok-2']);
      expect(r.letters.map((l) => l.error_code)).toEqual(Array(6).fill('RQ5007'));
      const all = await t.db.query<{ n: string }>(
        "select count(*)::text as n from practitioners where external_id in ('null', 'true', '[1,2]', '{}', '', '  ', 'undefined')",
      );
      expect(all[0]?.n).toBe('0');
    } finally {
      await server.close();
    }
  });

  it('dead-letters a record whose mapped external id is a stringified non-id ($string(null), $string([1,2]))', async () => {
    const server = await api(() => ({
      body: {
        items: [
          { id: 'c1', owner: { id: 41 } },
          { id: 'c2', owner: { id: null } },
          { id: 'c3', owner: { id: [1, 2] } },
          { id: 'c4', owner: { id: true } },
        ],
      },
    }));
    try {
      const name = 'odd_mapped';
      const text = spec(
        name,
        '    request: { path: /items }\n    records: items\n    pagination: { type: none }\n',
      ).replace('$string(id), "display_name": name', '$string(owner.id), "display_name": id');
      const r = await run(`org_${name}`, name, text, { base_url: server.url });
      expect(r.summary.status).toBe('succeeded');
      expect(r.stored).toEqual(['41']);
      expect(r.letters.map((l) => l.error_code)).toEqual(['RQ5007', 'RQ5007', 'RQ5007']);
    } finally {
      await server.close();
    }
  });
});
