import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorsDir } from '../helpers/engine.ts';
import { type PrivatePg, privatePgAvailable, startPrivatePg } from '../helpers/private-pg.ts';
import { threadsSpec } from '../helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../helpers/tiny-api.ts';

/**
 * `routiq sync` exit codes when PostgreSQL is the problem (docs/cli.md: 4 = database), as a user runs it: a child
 * process, its tiny API in this process.
 */
const BIN = path.resolve(import.meta.dirname, '../../cli/bin/routiq.mjs');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function routiq(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, ROUTIQ_LOG_LEVEL: 'warn', ...env }, timeout: 170_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Resolves once a sync run is writing (a running run and some messages), so the outage hits it mid-way. */
async function underWay(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      const r = await c.query<{ n: number }>(
        "select (select count(*) from sync_runs where status = 'running')::int * (select count(*) from messages)::int as n",
      );
      if ((r.rows[0]?.n ?? 0) > 0) return;
    } catch {
      // tables not there yet
    } finally {
      await c.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the sync never got under way');
}

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('routiq sync exit codes for database failures', { timeout: 180_000 }, () => {
  let api: TinyApi;
  let tmp: string;
  let configFile: string;

  beforeAll(async () => {
    api = await startTinyApi({ items: 120, notesPerItem: 6, delayMs: 25 });
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-sync-exit-'));
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `connectors_dir: ${JSON.stringify(connectorsDir({ threads: threadsSpec() }))}
organizations:
  - id: org_exit
    name: Exit clinic
    connections:
      - connector: threads
        config: { base_url: ${JSON.stringify(api.url)} }
`,
    );
  });
  afterAll(async () => {
    await api?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('an unreachable server is exit 4 with RQ4001 and the URL without its password', async () => {
    const url = `postgresql://routiq:s3cret-pw@127.0.0.1:${await closedPort()}/routiq`;
    const r = await routiq(tmp, { DATABASE_URL: url }, 'sync', '--config', configFile);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^RQ4001 could not connect to postgresql:\/\/routiq:\*\*\*@127\.0\.0\.1:\d+\/routiq/m);
    expect(r.stderr).toContain('hint: ');
    expect(r.stderr).not.toContain('s3cret-pw');
    expect(r.stdout).toBe('');
  });

  describe.skipIf(!privatePgAvailable())('PostgreSQL goes away during the sync', () => {
    let server: PrivatePg;
    // biome-ignore lint/suspicious/noDuplicateTestHooks: this nested describe's own server, beside the outer set-up
    beforeAll(() => {
      server = startPrivatePg();
    });
    // biome-ignore lint/suspicious/noDuplicateTestHooks: see above
    afterAll(() => server?.stop());

    it('exit 4 with a database error code, not 1 with RQ6002', async () => {
      const env = { DATABASE_URL: server.url };
      const m = await routiq(tmp, env, 'migrate', '--config', configFile);
      expect(m.code, m.stderr).toBe(0);
      const run = routiq(tmp, env, 'sync', '--config', configFile, '--json');
      await underWay(server.url);
      server.stop();
      const r = await run;
      expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(4);
      expect(r.stderr).toMatch(/^RQ4006 the database connection failed: /m);
      expect(r.stderr).not.toMatch(/RQ6002/);
      expect(r.stderr).toContain('hint: ');
    });
  });
});
