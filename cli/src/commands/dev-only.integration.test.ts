/**
 * The commands that need a development package (@routiq/sandbox: the simulators and the labelled identity data)
 * in an installation without it, as `npm ci --omit=dev` would leave: they say so and exit 2, and the others work.
 * The installation is a temporary copy of the CLI whose node_modules has every package of this checkout except
 * @routiq/sandbox (a copy, not a symlink: Node resolves packages from a module's real path).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const PRODUCTION_PACKAGES = ['connectors', 'migrations', 'runner', 'schemas', 'sdk'];

let dir: string;

function routiq(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(dir, 'cli/bin/routiq.mjs'), ...args],
      { cwd: dir, env: { ...process.env, ROUTIQ_FROM_SOURCE: '1' } },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'routiq-prod-'));
  cpSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  mkdirSync(path.join(dir, 'cli'));
  for (const part of ['package.json', 'bin', 'src'])
    cpSync(path.join(ROOT, 'cli', part), path.join(dir, 'cli', part), { recursive: true });
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, '@routiq'), { recursive: true });
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name !== '@routiq') symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  for (const pkg of PRODUCTION_PACKAGES) {
    symlinkSync(path.join(ROOT, pkg), path.join(dir, pkg));
    symlinkSync(path.join(ROOT, pkg), path.join(modules, '@routiq', pkg));
  }
  symlinkSync(path.join(dir, 'cli'), path.join(modules, '@routiq/cli'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an installation without the development packages', () => {
  it('patients evaluate: RQ6001 naming the missing package, exit 2', async () => {
    const r = await routiq(['patients', 'evaluate', '--size', '50']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^RQ6001 routiq patients evaluate needs the dev-only package @routiq\/sandbox/);
    expect(r.stderr).toMatch(/run it from a development checkout/);
  });

  it('demo: RQ6001, exit 2', async () => {
    const r = await routiq(['demo', '--dir', path.join(dir, 'demo')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^RQ6001 .*demo/);
    expect(r.stderr).toMatch(/@routiq\/sandbox/);
  });

  it('the other commands still load (patients help)', async () => {
    const r = await routiq(['patients', 'help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: routiq patients/);
  });
});
