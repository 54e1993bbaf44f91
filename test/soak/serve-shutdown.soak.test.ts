import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, migrate, openDatabase } from '@routiq/runner';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresReachable } from '../helpers/db.ts';
import { connectorsDir } from '../helpers/engine.ts';
import { threadsSpec } from '../helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../helpers/tiny-api.ts';

/**
 * Issue #18, the bounds of `routiq serve` going away (docs/service.md "Reload and shutdown", "Several instances"):
 * - SIGTERM with a sync running: the process exits 0 within service.shutdown_timeout_seconds (plus a margin for a
 *   loaded machine), whether the run stops at its next checkpoint (slow pages) or hangs in a request past the bound;
 *   its job is not left `active` in pg-boss, and the next run resumes so that the database equals the source.
 * - SIGKILL of the instance running a sync: the surviving instance closes the run and retries the job within a
 *   beat and the retry delay (not after pg-boss's expiry, here 12 minutes), and the retry completes the data.
 * The real processes on PostgreSQL (several instances need it); kill and signal points are events (requests seen
 * by the API), never delays.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');
const TOKEN = 'svc-token-shutdown-test';
const ORG = 'org_shutdown';
const SHUTDOWN_S = 6;
/** Process start-up of node and teardown on a 2-core machine shared with other work. */
const MARGIN_MS = 5_000;
const pgUp = await postgresReachable();

interface Proc {
  child: ChildProcess;
  pid: number;
  url: string;
  log: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function serve(config: string, env: NodeJS.ProcessEnv): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--port', '0', '--json'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: string[] = [];
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on('exit', (code, signal) => r({ code, signal })),
    );
    child.stderr?.on('data', (d) => log.push(String(d)));
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      log.push(String(d));
      const m = /\{"url":"([^"]+)","pid":(\d+)\}/.exec(out);
      if (m) resolve({ child, pid: Number(m[2]), url: m[1]!, log, exit });
    });
    child.on('error', reject);
    void exit.then((e) => reject(new Error(`serve exited (${e.code ?? e.signal}) before listening:\n${log.join('')}`)));
  });
}

function routiqSync(config: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'sync', '--config', config], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** Resolves when the API has received `n` more requests. */
function requestsSeen(api: TinyApi, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const off = api.onRequest(() => {
      if (++seen === n) {
        off();
        resolve();
      }
    });
  });
}

async function poll<T>(what: () => string, withinMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function expectEqualsSource(db: Database, api: TinyApi): Promise<void> {
  const convs = await db.query<{ external_id: string }>(
    'select external_id from conversations where organization_id = ? order by external_id',
    [ORG],
  );
  expect(convs.map((c) => c.external_id)).toEqual(api.items.map((i) => i.id).sort());
  const msgs = await db.query<{ external_id: string; content: string }>(
    'select external_id, content from messages where organization_id = ? order by external_id::bigint',
    [ORG],
  );
  expect(msgs).toEqual(api.notes.map((n) => ({ external_id: String(n.id), content: n.body })));
}

describe.skipIf(!pgUp)('routiq serve: bounded shutdown and recovery of a killed instance (issue #18)', () => {
  let api: TinyApi;
  let work: string;
  let config: string;
  let env: NodeJS.ProcessEnv;
  let db: Database;
  let drop: () => Promise<void>;
  const procs: Proc[] = [];

  beforeEach(async () => {
    api = await startTinyApi({ items: 150, notesPerItem: 7, delayMs: 40 });
    work = mkdtempSync(path.join(tmpdir(), 'routiq-serve-shutdown-'));
    const target = await createTestDatabase('postgres');
    drop = target.drop;
    db = await openDatabase({ url: target.url });
    await migrate(db);
    const later = new Date(Date.now() + 12 * 3600_000);
    config = path.join(work, 'routiq.yaml');
    // JSON is YAML. The schedule cannot fire during the test: runs are requested through the API.
    writeFileSync(
      config,
      JSON.stringify({
        connectors_dir: connectorsDir({ threads: threadsSpec() }),
        log: { level: 'info' },
        // A long deadline: pg-boss's expiry (deadline + 120 s) is far beyond anything awaited here.
        runner: { batch_size: 50, concurrency: 2, deadline_seconds: 600 },
        service: {
          host: '127.0.0.1',
          drain_seconds: 2,
          shutdown_timeout_seconds: SHUTDOWN_S,
          polling_interval_seconds: 0.5,
        },
        organizations: [
          {
            id: ORG,
            name: 'Shutdown clinic',
            connections: [
              {
                connector: 'threads',
                schedule: `${later.getUTCMinutes()} ${later.getUTCHours()} * * *`,
                config: { base_url: api.url },
              },
            ],
          },
        ],
      }),
    );
    env = { DATABASE_URL: target.url, ROUTIQ_SERVICE_TOKEN: TOKEN, ROUTIQ_LOG_LEVEL: 'info' };
  });
  afterEach(async () => {
    for (const p of procs.splice(0))
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await api?.close();
    await db?.close();
    await drop?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const requestSync = async (url: string) => {
    const res = await fetch(`${url}/api/syncs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ organization_id: ORG }),
    });
    expect(res.status).toBe(202);
  };

  it.each([
    ['slow pages: the run stops at its next checkpoint', false],
    ['a request hanging past the bound: the run is left to its checkpoints', true],
  ])(
    'SIGTERM mid-run (%s): exit 0 within shutdown_timeout_seconds, the next run resumes',
    {
      timeout: 120_000,
    },
    async (_what, hang) => {
      const p = await serve(config, env);
      procs.push(p);
      const midRun = requestsSeen(api, 40);
      await requestSync(p.url);
      await midRun;
      if (hang) {
        api.setDelay(120_000);
        await requestsSeen(api, 1); // a request now hangs
      }
      const signalled = Date.now();
      p.child.kill('SIGTERM');
      const end = await Promise.race([
        p.exit,
        new Promise<'late'>((r) => setTimeout(() => r('late'), SHUTDOWN_S * 1000 + MARGIN_MS)),
      ]);
      expect(end, p.log.join('')).toEqual({ code: 0, signal: null });
      const took = Date.now() - signalled;
      expect(took).toBeLessThan(SHUTDOWN_S * 1000 + MARGIN_MS);
      api.setDelay(0);

      const [run] = await db.query<{ status: string; error_code: string | null }>(
        'select status, error_code from sync_runs where organization_id = ? order by started_at',
        [ORG],
      );
      // Stopped at a checkpoint (RQ6003) — or, hanging, still 'running' for the next run to close as abandoned.
      expect(run).toEqual(hang ? { status: 'running', error_code: null } : { status: 'failed', error_code: 'RQ6003' });
      // The job is not stranded 'active' until pg-boss's expiry: completed, or failed back to the queue.
      const jobs = await db.query<{ state: string }>("select state from pgboss.job where name = 'routiq-sync'");
      expect(jobs.map((j) => j.state)).not.toContain('active');
      expect(jobs.length).toBe(1);

      const resumed = await routiqSync(config, env);
      expect(resumed.code, resumed.stderr).toBe(0);
      await expectEqualsSource(db, api);
      const runs = await db.query<{ status: string; error_code: string | null }>(
        'select status, error_code from sync_runs where organization_id = ? order by started_at',
        [ORG],
      );
      expect(runs.at(-1)?.status).toBe('succeeded');
      if (hang) expect(runs[0]).toEqual({ status: 'abandoned', error_code: 'RQ6002' });
    },
  );

  it('SIGKILL of the instance running a sync: a survivor closes the run and retries its job at once, not at expiry', {
    timeout: 150_000,
  }, async () => {
    procs.push(await serve(config, env), await serve(config, env));
    const midRun = requestsSeen(api, 40);
    await requestSync(procs[0]!.url);
    await midRun;
    const [running] = await db.query<{ id: string; pid: number }>(
      "select id::text, pid from sync_runs where organization_id = ? and status = 'running'",
      [ORG],
    );
    const victim = procs.find((p) => p.pid === Number(running?.pid));
    const survivor = procs.find((p) => p !== victim);
    expect(victim && survivor).toBeTruthy();
    victim!.child.kill('SIGKILL');
    await victim!.exit;

    // Found at the survivor's next beat (15 s), retried after the retry delay (10 s): a bound well below the
    // 12 minutes pg-boss would otherwise keep the job active.
    const done = await poll(
      () => `the retried job to complete on the survivor:\n${survivor!.log.join('')}`,
      60_000 + MARGIN_MS,
      async () => {
        const [j] = await db.query<{ state: string; retry_count: number }>(
          "select state, retry_count from pgboss.job where name = 'routiq-sync'",
        );
        return j?.state === 'completed' ? j : undefined;
      },
    );
    expect(done.retry_count).toBe(1);
    const runs = await db.query<{ id: string; status: string; error_code: string | null; pid: number; error: string }>(
      'select id::text, status, error_code, pid, error from sync_runs where organization_id = ? order by started_at',
      [ORG],
    );
    expect(runs.map((r) => ({ status: r.status, code: r.error_code, pid: Number(r.pid) }))).toEqual([
      { status: 'abandoned', code: 'RQ6002', pid: victim!.pid },
      { status: 'succeeded', code: null, pid: survivor!.pid },
    ]);
    expect(runs[0]?.error).toContain('surviving instance');
    await expectEqualsSource(db, api);
    expect(survivor!.log.join('')).toContain('recovered the work of an instance that died');
    survivor!.child.kill('SIGTERM');
    expect(await survivor!.exit).toEqual({ code: 0, signal: null });
  });
});
