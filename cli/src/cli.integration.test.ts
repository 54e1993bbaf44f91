import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { routiqInProcess } from '../../test/helpers/cli-inprocess.ts';
import { createTestDatabase, testTmpDir } from '../../test/helpers/db.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/routiq.mjs');
const run = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, DATABASE_URL: '', ...env },
    encoding: 'utf8',
  });

describe('routiq CLI start-up', () => {
  it('a bad config value fails start-up naming the key and the file, exit 3, nothing on stdout', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'routiq-cli-'));
    mkdirSync(path.join(cwd, 'config'));
    writeFileSync(path.join(cwd, 'config/staging.yaml'), 'log:\n  level: info\nrunner:\n  concurrency: 0\n');
    const r = run(['migrate'], cwd, { ROUTIQ_ENV: 'staging' });
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('RQ1003');
    expect(r.stderr).toContain('config/staging.yaml:4:16: runner.concurrency must be >= 1');
    expect(r.stderr).toMatch(/hint: /);
  });

  it('a bad environment override is named; an unknown command is a usage error', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'routiq-cli-'));
    mkdirSync(path.join(cwd, 'config'));
    writeFileSync(path.join(cwd, 'config/development.yaml'), 'log:\n  level: info\n');
    const r = run(['migrate'], cwd, { ROUTIQ_LOG_LEVEL: 'chatty' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('environment variable ROUTIQ_LOG_LEVEL: log.level must be one of');
    const u = run(['frobnicate'], cwd);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('RQ6001 unknown command "frobnicate"');
    const bad = run(['sync', '--bogus'], cwd);
    expect(bad.status).toBe(2);
  });

  it('migrate is idempotent on an embedded database directory, and --json is machine-readable', async () => {
    const cwd = testTmpDir('routiq-cli-');
    mkdirSync(path.join(cwd, 'config'));
    const config = path.join(cwd, 'config/development.yaml');
    writeFileSync(config, `database:\n  embedded_dir: ${path.join(cwd, 'db')}\nlog:\n  level: warn\n`);
    // A blank data directory copied, not initdb'ed here (that is embedded.integration.test.ts's).
    await createTestDatabase('embedded', { dir: path.join(cwd, 'db') });
    const first = run(['migrate', '--json'], cwd);
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).applied.length).toBeGreaterThanOrEqual(2);
    // The second through the CLI's entry in this process: the same command, without a second Node start-up.
    const second = await routiqInProcess(['migrate', '--json', '--config', config]);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).applied).toEqual([]);
    rmSync(cwd, { recursive: true, force: true });
  });
});
