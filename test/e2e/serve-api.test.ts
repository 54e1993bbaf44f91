import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ChatwootSim, type ManyChatSim, startChatwoot, startManyChat } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends, createTestDatabase, testTmpDir } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService, until } from './serve-harness.ts';

/**
 * Issue #18: the HTTP face of `routiq serve` besides webhooks. Health (ready answers 503 from the moment draining
 * starts, while a sync still finishes), Prometheus metrics, the OpenAPI document of every route, the token-guarded
 * status API, on-demand syncs and DLQ replays through the queue. Then the real process: `routiq serve --migrate`
 * on an embedded database, SIGHUP reloads an edited config without a restart, SIGTERM drains and exits 0.
 */
const TOKEN = 'svc-token-api-test';
const PAGE = '104729000000002';
const MC_KEY = `${PAGE}:0123456789abcdef0123456789abcdef`;
const CW = { account: 21, token: 'tok-api', secret: 'whsec-api' };
const env = { MC_KEY, MC_HOOK: 'hook-api', CW_TOKEN: CW.token, CW_SECRET: CW.secret };
const ORG_A = 'org_api_a';
const ORG_B = 'org_api_b';
const BIN = path.resolve(import.meta.dirname, '../../cli/bin/routiq.mjs');
const kinds = await backends();

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: unknown = text;
  if (res.headers.get('content-type')?.startsWith('application/json')) body = JSON.parse(text);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body };
}

describe.each(kinds)('routiq serve: health, metrics, OpenAPI, status and admin API (%s)', (kind) => {
  let mc: ManyChatSim;
  let cw: ChatwootSim;
  let svc: RunningService;
  beforeAll(async () => {
    mc = await startManyChat({ pages: [{ pageId: PAGE, token: MC_KEY }], seed: 3, scale: 1 });
    // A timeout fault holds the socket this long: a sync that meets it is still running when draining starts.
    cw = await startChatwoot({
      accounts: [{ accountId: CW.account, token: CW.token, webhookSecret: CW.secret }],
      seed: 4,
      scale: 1,
      faults: { timeoutHoldMs: 3000 },
    });
    const manychat = {
      connector: 'manychat',
      config: { base_url: mc.url },
      secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
    };
    const chatwoot = {
      connector: 'chatwoot',
      config: { base_url: cw.url, account_id: CW.account },
      secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
      streams: ['contacts'],
    };
    const config = testConfig(CONNECTORS_DIR, [org(ORG_A, [manychat, chatwoot]), org(ORG_B, [manychat])], {
      deadlineSeconds: 300,
    });
    svc = await startService(kind, config, env, { token: TOKEN, pollingIntervalSeconds: 0.5, drainSeconds: 20 });
  });
  afterAll(async () => {
    await svc?.close();
    await mc?.close();
    await cw?.close();
  });

  it('answers liveness and readiness, and documents every route in OpenAPI', async () => {
    expect(await get(`${svc.url}/health/live`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await get(`${svc.url}/health/ready`)).toMatchObject({
      status: 200,
      body: { status: 'ok', checks: { database: 'ok', migrations: 'ok', queue: 'ok', draining: 'no' } },
    });
    const doc = await get(`${svc.url}/openapi.json`);
    expect(doc).toMatchObject({ status: 200, body: { openapi: '3.1.0' } });
    const paths = (doc.body as { paths: Record<string, Record<string, { security?: unknown }>> }).paths;
    const documented = Object.entries(paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(documented.sort()).toEqual(
      [
        'POST /webhooks/{org}/{connection}',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
        'GET /api/status',
        'POST /api/syncs',
        'POST /api/dlq/replay',
        'GET /openapi.json',
        'GET /status',
        'GET /status/live',
        'GET /status/login',
        'POST /status/login',
        'POST /status/logout',
        'POST /status/dlq/{id}/replay',
        'GET /status/assets/app.css',
        'GET /status/assets/app.js',
      ].sort(),
    );
    // Every documented operation is a registered route, and only the admin ones ask for the token.
    for (const [p, ops] of Object.entries(paths))
      for (const [m, op] of Object.entries(ops)) {
        const url = p.replace(/\{(\w+)\}/g, ':$1');
        expect(svc.service.app.hasRoute({ method: m.toUpperCase() as 'GET' | 'POST', url }), `${m} ${p}`).toBe(true);
        expect(op.security !== undefined, `${m} ${p}`).toBe(p.startsWith('/api/'));
      }
  });

  it('guards the admin API with the service token; the status lists every organization and connection', async () => {
    for (const headers of [{}, bearer('wrong-token'), { authorization: TOKEN }, bearer(`${TOKEN}x`)]) {
      expect((await get(`${svc.url}/api/status`, headers)).status).toBe(401);
      expect((await post(`${svc.url}/api/syncs`, '{}', headers)).status).toBe(401);
      expect((await post(`${svc.url}/api/dlq/replay`, '{"ids": []}', headers)).status).toBe(401);
    }
    const status = await get(`${svc.url}/api/status`, bearer(TOKEN));
    expect(status.status).toBe(200);
    const body = status.body as {
      organizations: Array<{ id: string; connections: Array<{ connection: string; configured: boolean }> }>;
      instance: { draining: boolean };
    };
    expect(
      body.organizations.map((o) => [o.id, o.connections.map((c) => [c.connection, c.configured]).sort()]),
    ).toEqual([
      [
        ORG_A,
        [
          ['chatwoot', true],
          ['manychat', true],
        ],
      ],
      [ORG_B, [['manychat', true]]],
    ]);
    expect(body.instance.draining).toBe(false);
  });

  it('queues an on-demand sync that runs and is reported', async () => {
    const auth = bearer(TOKEN);
    expect((await post(`${svc.url}/api/syncs`, '{"organization_id": "org_nobody"}', auth)).status).toBe(404);
    expect((await post(`${svc.url}/api/syncs`, 'not json', auth)).status).toBe(400);
    const res = await post(`${svc.url}/api/syncs`, JSON.stringify({ organization_id: ORG_B }), auth);
    expect(res).toEqual({
      status: 202,
      body: {
        queued: [{ organization_id: ORG_B, connection: 'manychat', job: expect.any(String) }],
        already_queued: [],
      },
    });
    const run = await until('the queued sync to finish', async () => {
      const rows = await svc.db.query<{ status: string; connector: string }>(
        "select status, connector from sync_runs where organization_id = ? and status <> 'running'",
        [ORG_B],
      );
      return rows[0];
    });
    expect(run).toEqual({ status: 'succeeded', connector: 'manychat' });
    const status = (await get(`${svc.url}/api/status`, auth)).body as {
      organizations: Array<{ id: string; connections: Array<{ connection: string; lagSeconds: number | null }> }>;
    };
    const b = status.organizations.find((o) => o.id === ORG_B)?.connections.find((c) => c.connection === 'manychat');
    expect(b?.lagSeconds).toEqual(expect.any(Number));
  });

  it('exports routiq_ metrics, webhook deliveries included', async () => {
    const url = `${svc.url}/webhooks/${ORG_A}/manychat`;
    const sid = String(mc.snapshot().pages[0]!.subscribers[0]!.id);
    const ok = await mc.simulateInbound({
      pageId: PAGE,
      subscriberId: sid,
      text: 'metrics?',
      url,
      headers: { 'X-Routiq-Token': env.MC_HOOK },
    });
    expect(ok?.status).toBe(202);
    expect((await post(url, ok!.requestBody, { 'X-Routiq-Token': 'wrong' })).status).toBe(401);
    await svc.service.idle();
    const m = await get(`${svc.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain/);
    const text = String(m.body);
    expect(text).toContain('routiq_webhook_deliveries_total{connector="manychat",outcome="accepted"} 1\n');
    expect(text).toContain('routiq_webhook_deliveries_total{connector="manychat",outcome="rejected"} 1\n');
    expect(text).toContain('routiq_webhook_processed_total{connector="manychat",result="processed"} 1\n');
    expect(text).toMatch(/routiq_webhook_to_row_seconds_count\{connector="manychat"\} 1\n/);
    expect(text).toContain('routiq_sync_runs_total{connector="manychat",status="succeeded"} 1\n');
    expect(text).toMatch(/routiq_connection_lag_seconds\{organization="org_api_b",connection="manychat"\} \d+\n/);
    expect(text).toMatch(/routiq_process_cpu_user_seconds_total/);
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!] as const);
    expect(families.length).toBeGreaterThan(10);
    for (const [name, type] of families) {
      expect(name).toMatch(/^routiq_/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
  });

  it('queues a dead-letter replay by ids', async () => {
    const auth = bearer(TOKEN);
    // A flow whose "data" is not JSON: accepted (it is authenticated) and dead-lettered, never lost.
    const sid = String(mc.snapshot().pages[0]!.subscribers[1]!.id);
    const body = JSON.stringify({ subscriber_id: sid, text: 'hi', data: '{{user}' });
    expect((await post(`${svc.url}/webhooks/${ORG_A}/manychat`, body, { 'X-Routiq-Token': env.MC_HOOK })).status).toBe(
      202,
    );
    await svc.service.idle();
    const letters = await svc.db.query<{ id: string; stream: string }>(
      'select id::text as id, stream from sync_errors where organization_id = ? and not resolved',
      [ORG_A],
    );
    expect(letters.map((l) => l.stream)).toEqual(['webhook:message']);
    expect((await post(`${svc.url}/api/dlq/replay`, '{}', auth)).status).toBe(400);
    // A filter must select something (a misspelt field must not replay every organization's letters); ids are UUIDs.
    for (const bad of ['{"filter": {"colour": "red"}}', '{"filter": {}}', '{"ids": ["1"]}'])
      expect((await post(`${svc.url}/api/dlq/replay`, bad, auth)).status, bad).toBe(400);
    const res = await post(`${svc.url}/api/dlq/replay`, JSON.stringify({ ids: [letters[0]!.id] }), auth);
    expect(res).toEqual({ status: 202, body: { job: expect.any(String) } });
    // The replay job runs: one outcome for the one letter (its payload still is not JSON data).
    const job = await until('the replay job to finish', async () => {
      const rows = await svc.db.query<{ state: string; output: unknown }>(
        'select state, output from pgboss.job where id = ?::uuid',
        [res.body.job],
      );
      const r = rows[0];
      return r && (r.state === 'completed' || r.state === 'failed') ? r : undefined;
    });
    expect(job.state).toBe('completed');
    const counts = (typeof job.output === 'string' ? JSON.parse(job.output) : job.output) as Record<string, number>;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('answers ready 503 from the moment draining starts, lets a running sync finish, then closes', async () => {
    const auth = bearer(TOKEN);
    cw.faults.queue(['timeout']);
    const res = await post(
      `${svc.url}/api/syncs`,
      JSON.stringify({ organization_id: ORG_A, connection: 'chatwoot' }),
      auth,
    );
    expect(res.status).toBe(202);
    // The run's first request is being held by the simulator.
    await until('the chatwoot sync to meet its timeout fault', async () =>
      cw.stats.faults.timeout ? true : undefined,
    );
    const started = Date.now();
    const closing = svc.service.close();
    const ready = await get(`${svc.url}/health/ready`);
    expect(ready).toMatchObject({ status: 503, body: { status: 'unavailable', checks: { draining: 'yes' } } });
    await closing;
    expect(Date.now() - started).toBeLessThan(20_000);
    const runs = await svc.db.query<{ status: string }>(
      "select status from sync_runs where organization_id = ? and connector = 'chatwoot'",
      [ORG_A],
    );
    expect(runs).toEqual([{ status: 'succeeded' }]);
    await expect(fetch(`${svc.url}/health/live`)).rejects.toThrow();
  });
});

/** Lines of a child's stream, as they arrive. */
function lines(stream: NodeJS.ReadableStream): {
  all: string[];
  next(match: (l: string) => boolean, ms: number): Promise<string>;
} {
  const all: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    all.push(...parts);
    for (const w of waiters) w();
  });
  return {
    all,
    next(match, ms) {
      let seen = 0;
      return new Promise((resolve, reject) => {
        const check = () => {
          for (; seen < all.length; seen++)
            if (match(all[seen]!)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(all[seen]!);
              return;
            }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching line within ${ms} ms; got:\n${all.join('\n')}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

describe('routiq serve as a process (embedded database)', () => {
  let tmp: string;
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('starts with --migrate, reloads an edited config on SIGHUP, drains and exits 0 on SIGTERM', async () => {
    tmp = testTmpDir('routiq-serve-proc-');
    // A blank embedded database (a copy of the test template): --migrate brings it up to date.
    const { embeddedDir } = await createTestDatabase('embedded', { dir: path.join(tmp, 'db') });
    const later = new Date(Date.now() + 12 * 3600_000);
    const quiet = `${later.getUTCMinutes()} ${later.getUTCHours()} * * *`;
    const orgYaml = (id: string) => `  - id: ${id}
    name: Org ${id}
    connections:
      - connector: manychat
        schedule: "${quiet}"
        config: { base_url: "http://127.0.0.1:9" }
        secrets: { api_key: "\${MC_KEY}", webhook_token: "\${MC_HOOK}" }
`;
    const configYaml = (ids: string[]) => `database:
  embedded_dir: ${JSON.stringify(embeddedDir)}
log:
  level: info
service:
  host: 127.0.0.1
  drain_seconds: 5
  polling_interval_seconds: 0.5
connectors_dir: ${JSON.stringify(CONNECTORS_DIR)}
organizations:
${ids.map(orgYaml).join('')}`;
    const file = path.join(tmp, 'routiq.yaml');
    writeFileSync(file, configYaml(['org_proc_a']));

    const childEnv: NodeJS.ProcessEnv = { ...process.env, ROUTIQ_SERVICE_TOKEN: TOKEN, MC_KEY, MC_HOOK: env.MC_HOOK };
    for (const k of ['DATABASE_URL', 'ROUTIQ_DB_DIR', 'ROUTIQ_LOG_LEVEL', 'ROUTIQ_CONNECTORS_DIR', 'PORT'])
      delete childEnv[k];
    const proc = spawn(process.execPath, [BIN, 'serve', '--config', file, '--port', '0', '--json', '--migrate'], {
      cwd: tmp,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const out = lines(proc.stdout!);
    const log = lines(proc.stderr!);
    const first = await Promise.race([
      out.next((l) => l.startsWith('{'), 45_000),
      exited.then((e) => {
        throw new Error(`routiq serve exited early (${JSON.stringify(e)}):\n${log.all.join('\n')}`);
      }),
    ]);
    const { url, pid } = JSON.parse(first) as { url: string; pid: number };
    expect(pid).toBe(proc.pid);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(`${url}/health/ready`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const orgs = async () =>
      (
        (await get(`${url}/api/status`, bearer(TOKEN))).body as { organizations: Array<{ id: string }> }
      ).organizations.map((o) => o.id);
    expect(await orgs()).toEqual(['org_proc_a']);

    // SIGHUP alone reloads (the file watcher has nothing to report).
    proc.kill('SIGHUP');
    await log.next((l) => l.includes('"configuration reloaded"'), 15_000);
    // An organization added to the file is served without a restart.
    writeFileSync(file, configYaml(['org_proc_a', 'org_proc_b']));
    proc.kill('SIGHUP');
    await until('the added organization in /api/status', async () => {
      const ids = await orgs();
      return ids.includes('org_proc_b') ? ids : undefined;
    });
    expect(await orgs()).toEqual(['org_proc_a', 'org_proc_b']);
    expect((await get(`${url}/health/ready`)).status).toBe(200);

    const stopped = Date.now();
    proc.kill('SIGTERM');
    const end = await Promise.race([
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit within the drain bound:\n${log.all.join('\n')}`)), 15_000),
      ),
    ]);
    expect(end, log.all.join('\n')).toEqual({ code: 0, signal: null });
    // Drain bound (5 s) plus the closing of the queue, server and database.
    expect(Date.now() - stopped).toBeLessThan(15_000);
    expect(log.all.some((l) => l.includes('"stopped"'))).toBe(true);
  });
});
