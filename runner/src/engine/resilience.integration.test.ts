import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, postgresReachable, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';
import '@routiq/sdk';
import { type Database, openDatabase } from '../db/database.ts';
import { HttpClient } from './http.ts';
import { PgSlidingWindowLimiter } from './ratelimit-pg.ts';
import { syncAll } from './run-all.ts';
import { syncConnection } from './sync.ts';

async function server(handler: http.RequestListener) {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

function client(o: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) {
  return new HttpClient({
    minTlsVersion: 'TLSv1.3',
    allowInsecureHttp: false,
    rules: [],
    signals: {},
    retry: { maxRetries: 1000, baseDelayMs: 500, maxDelayMs: 60_000 },
    deadline: Date.now() + 3600_000,
    retryWindowMs: 1200_000,
    limitersFor: () => [],
    ...o,
  });
}
const get = (url: string) => ({ method: 'GET', url, headers: {}, searchParams: [], timeoutMs: 2000 });

describe('HTTP resilience', () => {
  it('rides out a 15-minute outage without a person (virtual clock)', async () => {
    let virtual = 0;
    const outageEnds = 15 * 60_000;
    const srv = await server((_req, res) => {
      if (virtual < outageEnds) res.writeHead(503).end('down');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    let attempts = 0;
    const c = client({
      now: () => Date.now() + virtual,
      sleep: async (ms) => {
        virtual += ms;
      },
      onRequest: () => attempts++,
    });
    const res = await c.request(get(srv.url));
    await srv.close();
    expect(res.body).toEqual({ ok: true });
    expect(virtual).toBeGreaterThanOrEqual(outageEnds);
    expect(attempts).toBeGreaterThan(10);
  });

  it('gives up at the end of the retry window with a transient error (the checkpoint stays)', async () => {
    let virtual = 0;
    const srv = await server((_req, res) => res.writeHead(502).end('bad gateway'));
    const c = client({
      retryWindowMs: 60_000,
      now: () => Date.now() + virtual,
      sleep: async (ms) => {
        virtual += ms;
      },
    });
    await expect(c.request(get(srv.url))).rejects.toMatchObject({ failureClass: 'transient', code: 'RQ3001' });
    await srv.close();
    expect(virtual).toBeLessThanOrEqual(60_000);
  });

  it('classifies: 401 → auth (no retry), 404 → permanent, 200 with status:error → permanent by rule, truncated JSON → transient', async () => {
    let n = 0;
    const srv = await server((req, res) => {
      n++;
      if (req.url === '/401') return void res.writeHead(401).end('{"error":"Invalid Access Token"}');
      if (req.url === '/404')
        return void res.writeHead(404, { 'content-type': 'text/html' }).end('<html>Not found</html>');
      if (req.url === '/mc')
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"status":"error","message":"Subscriber does not exist"}');
      if (req.url === '/trunc' && n < 8)
        return res.writeHead(200, { 'content-type': 'application/json' }).end('{"payload":[{"id":1},');
      return res.writeHead(200, { 'content-type': 'application/json' }).end('{"payload":[]}');
    });
    const c = client({
      rules: [{ status: [200, 400], body: "status = 'error'", action: 'permanent', message: 'message' }],
      sleep: async () => {},
    });
    n = 0;
    await expect(c.request(get(`${srv.url}/401`))).rejects.toMatchObject({ failureClass: 'auth', code: 'RQ3003' });
    expect(n).toBe(1);
    await expect(c.request(get(`${srv.url}/404`))).rejects.toMatchObject({ failureClass: 'permanent', status: 404 });
    await expect(c.request(get(`${srv.url}/mc`))).rejects.toThrow(/Subscriber does not exist/);
    n = 0;
    const ok = await c.request(get(`${srv.url}/trunc`));
    expect(ok.body).toEqual({ payload: [] });
    await srv.close();
  });

  it('waits for X-RateLimit-Reset and pauses every request on the budget', async () => {
    let virtual = 0;
    let first = true;
    const resetAt = Math.ceil((Date.now() + 40_000) / 1000);
    const srv = await server((_req, res) => {
      if (first) {
        first = false;
        res.writeHead(429, { 'x-ratelimit-reset': String(resetAt), 'content-type': 'text/plain' }).end('Retry later\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const paused: number[] = [];
    const c = client({
      signals: { resetHeader: { name: 'X-RateLimit-Reset', format: 'epoch_seconds' } },
      now: () => Date.now() + virtual,
      sleep: async (ms) => {
        virtual += ms;
      },
      limitersFor: () => [{ acquire: async () => {}, pauseUntil: (u) => paused.push(u) }],
    });
    await c.request(get(srv.url));
    await srv.close();
    expect(virtual).toBeGreaterThan(30_000);
    expect(paused).toHaveLength(1);
    expect((paused[0] as number) - (Date.now() + virtual)).toBeLessThan(1000);
  });
});

const kinds = await backends();

describe.each(kinds)('circuit breaker (%s)', (kind) => {
  let t: TestDb;
  let good: TinyApi;
  let down: Awaited<ReturnType<typeof server>>;
  beforeAll(async () => {
    t = await openTestDb(kind);
    good = await startTinyApi({ items: 5 });
    down = await server((_req, res) => res.writeHead(503).end('down'));
  });
  afterAll(async () => {
    await good?.close();
    await down?.close();
    await t?.drop();
  });

  it('pauses a connection after repeated failed runs; the other connections keep syncing', async () => {
    const spec = (name: string) => itemsSpec(name);
    const dir = connectorsDir({ flaky: spec('flaky'), steady: spec('steady') });
    const o = org('org_breaker', [
      { connector: 'flaky', config: { base_url: down.url } },
      { connector: 'steady', config: { base_url: good.url } },
    ]);
    const config = testConfig(dir, [o], { retryWindowSeconds: 1, breakerThreshold: 3, breakerCooldownSeconds: 600 });
    for (let i = 1; i <= 3; i++) {
      const r = await syncAll(t.db, config, {}, silentLogger);
      expect(r.find((x) => x.connection === 'flaky')?.status).toBe('failed');
      expect(r.find((x) => x.connection === 'steady')?.status).toBe('succeeded');
    }
    const fourth = await syncAll(t.db, config, {}, silentLogger);
    expect(fourth.find((x) => x.connection === 'flaky')).toMatchObject({
      status: 'failed',
      errorCode: 'RQ3008',
      runId: '',
    });
    expect(fourth.find((x) => x.connection === 'steady')?.status).toBe('succeeded');
    const h = await t.db.query<{ status: string }>(
      "select status from service_health where component = 'connection' and connection = 'flaky'",
    );
    expect(h[0]?.status).toBe('paused');
  });
});

describe.skipIf(!(await postgresReachable()))('rate-limit budget shared by several instances (postgres)', () => {
  let t: TestDb;
  let other: Database;
  beforeAll(async () => {
    t = await openTestDb('postgres');
    other = await openDatabase({ url: t.url, poolMax: 4 });
  });
  afterAll(async () => {
    await other?.close();
    await t?.drop();
  });

  /** Takes `count` grants per caller; returns the grant times the database decided, sorted. */
  async function grants(callers: Array<{ l: PgSlidingWindowLimiter; count: number }>, jitterMs = 0) {
    const at: number[] = [];
    await Promise.all(
      callers.map(async ({ l, count }) => {
        for (let i = 0; i < count; i++) {
          if (jitterMs) await new Promise((r) => setTimeout(r, Math.random() * jitterMs));
          const g = await l.take();
          // Resolved at its grant, not before (timers may fire up to a millisecond early).
          expect(Date.now()).toBeGreaterThanOrEqual(Math.floor(g.at) - 1);
          at.push(g.at);
        }
      }),
    );
    return at.sort((x, y) => x - y);
  }

  /** The budget on the database's own schedule: any limit + 1 consecutive grants span a full window. */
  function expectWithinBudget(at: number[], limit: number, windowMs: number) {
    for (let i = 0; i + limit < at.length; i++)
      expect((at[i + limit] as number) - (at[i] as number)).toBeGreaterThanOrEqual(windowMs);
  }

  it('two processes on one database never exceed the budget together', async () => {
    const limit = 8;
    const windowMs = 400;
    const a = new PgSlidingWindowLimiter(t.db, 'test:shared', limit, windowMs);
    const b = new PgSlidingWindowLimiter(other, 'test:shared', limit, windowMs);
    const at = await grants([
      { l: a, count: 12 },
      { l: b, count: 12 },
      { l: a, count: 12 },
      { l: b, count: 12 },
    ]);
    expect(at).toHaveLength(48);
    expectWithinBudget(at, limit, windowMs);
  });

  it('a budget larger than its chunk count stays exact under irregular arrivals from two processes', async () => {
    // 70 per window: chunks of 3 grants, grant statements spanning several chunks and wrapping the ring.
    const limit = 70;
    const windowMs = 300;
    const mk = (db: Database) => new PgSlidingWindowLimiter(db, 'test:chunked', limit, windowMs);
    const at = await grants(
      [mk(t.db), mk(t.db), mk(other), mk(other)].flatMap((l) => [
        { l, count: 40 },
        { l, count: 35 },
      ]),
      8,
    );
    expect(at).toHaveLength(300);
    expectWithinBudget(at, limit, windowMs);
  });

  it('a pause asked for in one process holds every process until the reset', async () => {
    const a = new PgSlidingWindowLimiter(t.db, 'test:paused', 100, 60_000);
    const b = new PgSlidingWindowLimiter(other, 'test:paused', 100, 60_000);
    await b.take();
    const until = Date.now() + 300;
    a.pauseUntil(until);
    await expect
      .poll(
        async () =>
          (await t.db.query("select 1 from rate_limit_budgets where key = 'test:paused' and paused_until is not null"))
            .length,
      )
      .toBe(1);
    const g = await b.take();
    expect(g.at).toBeGreaterThanOrEqual(until);
    expect(Date.now()).toBeGreaterThanOrEqual(until - 1);
  });

  it('costs one statement and one row per grant whatever the budget', async () => {
    // One connection: its statements are the limiter's, and its statistics can be flushed on demand.
    const one = await openDatabase({ url: t.url, poolMax: 1 });
    try {
      let statements = 0;
      one.orm.em
        .getConnection()
        .getKnex()
        .on('query', () => statements++);
      const stats = async () => {
        await one.query('select pg_stat_force_next_flush()');
        const r = await one.query<Record<string, string>>(
          `select n_tup_ins, n_tup_upd, n_tup_del, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) as tup_read
           from pg_stat_user_tables where relname = 'rate_limit_budgets'`,
        );
        return Object.fromEntries(Object.entries(r[0] ?? {}).map(([k, v]) => [k, Number(v)]));
      };
      const limits = [40, 40_000];
      const limiters = limits.map((n) => new PgSlidingWindowLimiter(one, `test:cost:${n}`, n, 60_000));
      for (const l of limiters) await l.acquire(); // creates the key's row
      // The plan must not change between the two measurements (an autoanalyze may turn index into sequential scans
      // on a table this small: then a grant reads every key's row, still none per request of the budget).
      await one.query('alter table rate_limit_budgets set (autovacuum_enabled = false)');
      const keys = Number((await one.query<{ n: number }>('select count(*) as n from rate_limit_budgets'))[0]?.n);
      const costs = [];
      for (const [i, l] of limiters.entries()) {
        const before = await stats();
        statements = 0;
        for (let j = 0; j < 30; j++) await l.acquire();
        const perGrant = statements / 30;
        const after = await stats();
        const size = await one.query<{ bytes: number }>(
          'select pg_column_size(b.*) as bytes from rate_limit_budgets b where key = ?',
          [`test:cost:${limits[i]}`],
        );
        costs.push({
          perGrant,
          inserted: (after.n_tup_ins as number) - (before.n_tup_ins as number),
          updated: (after.n_tup_upd as number) - (before.n_tup_upd as number),
          deleted: (after.n_tup_del as number) - (before.n_tup_del as number),
          // Reading the statistics itself reads no rate_limit_budgets row.
          readPerGrant: ((after.tup_read as number) - (before.tup_read as number)) / 30,
          rowBytes: Number(size[0]?.bytes),
        });
      }
      for (const c of costs) {
        expect(c).toMatchObject({ perGrant: 1, inserted: 0, updated: 30, deleted: 0 });
        expect(c.readPerGrant).toBeGreaterThanOrEqual(1);
        expect(c.readPerGrant).toBeLessThanOrEqual(keys);
        expect(c.rowBytes).toBeLessThan(500);
      }
      // A thousand times the budget, the same cost.
      expect(costs[1]?.readPerGrant).toBe(costs[0]?.readPerGrant);
    } finally {
      await one.close();
    }
  });

  it('grants every caller of a process waiting at once with one statement', async () => {
    let statements = 0;
    const db = await openDatabase({ url: t.url, poolMax: 4 });
    try {
      db.orm.em
        .getConnection()
        .getKnex()
        .on('query', () => statements++);
      const l = new PgSlidingWindowLimiter(db, 'test:batched', 1000, 60_000);
      await l.acquire();
      statements = 0;
      await Promise.all(Array.from({ length: 200 }, () => l.acquire()));
      expect(statements).toBeLessThanOrEqual(10);
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(!(await postgresReachable()))('budget keys never store a credential (postgres)', () => {
  it('rate_limit_budgets holds a hash of the Cliniko key, not the key', async () => {
    const t = await openTestDb('postgres');
    const api = await startTinyApi({ items: 3 });
    try {
      const spec = itemsSpec('keyed')
        .replace(
          'auth: { type: none }',
          'auth: { type: none }\nrate_limits:\n  budgets:\n    - { name: per_user, requests: 100, per_seconds: 60, scope: credential, key: "{{ $secrets.api_key }}" }',
        )
        .replace(
          '    base_url: { type: string, format: uri }',
          '    base_url: { type: string, format: uri }\n    api_key: { type: string, secret: true }',
        );
      const o = org('org_keyed', [{ connector: 'keyed', config: { base_url: api.url }, secrets: { api_key: '${K}' } }]);
      const r = await syncConnection({
        db: t.db,
        config: testConfig(connectorsDir({ keyed: spec }), [o]),
        org: o,
        conn: o.connections[0]!,
        logger: silentLogger,
        env: { K: 'super-secret-key-au1' },
      });
      expect(r.status, JSON.stringify(r.streams)).toBe('succeeded');
      const keys = await t.db.query<{ key: string }>('select key from rate_limit_budgets');
      expect(keys.length).toBe(1);
      expect(keys[0]?.key).not.toContain('super-secret');
      expect(keys[0]?.key).toMatch(/^keyed:per_user:keyed:[0-9a-f]{16}$/);
    } finally {
      await api.close();
      await t.drop();
    }
  });
});
