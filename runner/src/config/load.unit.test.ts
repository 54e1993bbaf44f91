import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveSecrets } from './load.ts';

function dirWith(files: Record<string, string>): string {
  const d = mkdtempSync(path.join(tmpdir(), 'routiq-cfg-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    writeFileSync(path.join(d, f), text);
  }
  return d;
}

describe('loadConfig', () => {
  it('loads config/<ROUTIQ_ENV>.yaml with defaults applied', () => {
    const cwd = dirWith({ 'config/staging.yaml': 'log:\n  level: debug\n' });
    const c = loadConfig({ cwd, env: { ROUTIQ_ENV: 'staging' } });
    expect(c.env).toBe('staging');
    expect(c.log.level).toBe('debug');
    expect(c.runner.batchSize).toBe(500);
    expect(c.database.url).toBeUndefined();
    expect(c.database.embeddedDir).toBe('.routiq/db');
  });

  it('names the bad key, the file and its line:col', () => {
    const cwd = dirWith({ 'config/development.yaml': 'runner:\n  batch_size: 0\n' });
    expect(() => loadConfig({ cwd, env: {} })).toThrowError(
      /config\/development\.yaml:2:15: runner\.batch_size must be >= 1/,
    );
  });

  it('reports an unknown key with its position', () => {
    const cwd = dirWith({ 'config/development.yaml': 'log:\n  levle: info\n' });
    try {
      loadConfig({ cwd, env: {} });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('RQ1003');
      expect((e as Error).message).toContain('config/development.yaml:2:3: log.levle is not a known key');
    }
  });

  it('reports every bad value, not just the first', () => {
    const cwd = dirWith({ 'config/development.yaml': 'log:\n  level: loud\nrunner:\n  concurrency: -1\n' });
    expect(() => loadConfig({ cwd, env: {} })).toThrowError(
      /log\.level must be one of[\s\S]*runner\.concurrency must be >= 1/,
    );
  });

  it('environment variables override the file and are named when invalid', () => {
    const cwd = dirWith({ 'config/development.yaml': 'log:\n  level: info\n' });
    expect(loadConfig({ cwd, env: { ROUTIQ_LOG_LEVEL: 'warn', DATABASE_URL: 'postgresql://x@h/db' } })).toMatchObject({
      log: { level: 'warn' },
      database: { url: 'postgresql://x@h/db' },
    });
    expect(() => loadConfig({ cwd, env: { DATABASE_URL: 'mysql://nope' } })).toThrowError(
      /environment variable DATABASE_URL: database\.url must match/,
    );
  });

  it('refuses a literal secret and resolves ${ENV} references lazily', () => {
    const bad = dirWith({
      'c.yaml':
        'organizations:\n  - id: org_1\n    name: A\n    connections:\n      - connector: cliniko\n        secrets:\n          api_key: abc123\n',
    });
    expect(() => loadConfig({ cwd: bad, file: 'c.yaml', env: {} })).toThrowError(
      /c\.yaml:7:20: organizations\.0\.connections\.0\.secrets\.api_key must match/,
    );
    const ok = dirWith({
      'c.yaml':
        'organizations:\n  - id: org_1\n    name: A\n    connections:\n      - connector: cliniko\n        secrets:\n          api_key: ${CLINIKO_KEY}\n',
    });
    const c = loadConfig({ cwd: ok, file: 'c.yaml', env: {} });
    const conn = c.organizations[0]!.connections[0]!;
    expect(() => resolveSecrets(conn, 'org_1', {})).toThrowError(/references \$\{CLINIKO_KEY\}, which is not set/);
    expect(resolveSecrets(conn, 'org_1', { CLINIKO_KEY: 'k-au1' })).toEqual({ api_key: 'k-au1' });
  });

  it('a missing file and bad YAML are clear errors', () => {
    const cwd = dirWith({ 'config/development.yaml': 'log: [unclosed\n' });
    expect(() => loadConfig({ cwd, env: { ROUTIQ_ENV: 'nope' } })).toThrowError(/config\/nope\.yaml does not exist/);
    try {
      loadConfig({ cwd, env: {} });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string; where: string }).code).toBe('RQ1002');
      expect((e as { where: string }).where).toMatch(/^config\/development\.yaml:\d+:\d+$/);
    }
  });
});
