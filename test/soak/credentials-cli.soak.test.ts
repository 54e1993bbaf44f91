import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, openDatabase } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends, createTestDatabase } from '../helpers/db.ts';

/**
 * `routiq credentials set|list|rotate|delete` as an operator runs them (a child process each): the value comes from
 * stdin (or a named variable: the soak test), never argv; no output carries it; rotation re-seals under the first key; every change
 * is audited with a `cli` actor and the invocation's correlation id. (Soak tier: each command is a process opening
 * the database; the argument checks that need none are in cli/src/commands/credentials.integration.test.ts.) On the PostgreSQL server when there is one
 * (a child opening it is cheap), else the embedded database.
 */
const BIN = path.resolve(import.meta.dirname, '../../cli/bin/routiq.mjs');
const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const VALUE = `cliniko-${randomBytes(8).toString('hex')}-au1`;
const kind = (await backends()).includes('postgres') ? 'postgres' : 'embedded';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe(`routiq credentials (CLI, ${kind})`, () => {
  let tmp: string;
  let configFile: string;
  let target: Awaited<ReturnType<typeof createTestDatabase>>;

  const routiq = (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BIN, ...args, '--config', configFile],
        {
          cwd: tmp,
          env: {
            ...process.env,
            DATABASE_URL: target.url ?? '',
            ROUTIQ_DB_DIR: '',
            ROUTIQ_LOG_LEVEL: '',
            ROUTIQ_ENV: '',
            ROUTIQ_ENCRYPTION_KEYS: K1,
            ...o.env,
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 70) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      child.stdin?.end(o.input ?? '');
    });

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-cli-creds-'));
    target = await createTestDatabase(kind, { dir: path.join(tmp, 'db'), migrated: true });
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `database:
  embedded_dir: ${JSON.stringify(path.join(tmp, 'db'))}
log:
  level: silent
connectors_dir: ${JSON.stringify(CONNECTORS_DIR)}
organizations:
  - id: org_cred
    name: Credential clinic
    connections:
      - connector: cliniko
        credential_store: true
        config: { base_url: "http://127.0.0.1:9", contact_email: ops@routiq.example }
`,
    );
    const m = await routiq(['migrate']);
    expect(m.code, m.stderr).toBe(0);
  });
  afterAll(async () => {
    await target?.drop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('set from stdin, list, rotate, delete: values never printed, never taken from argv', async () => {
    const all: Result[] = [];
    const run = async (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
      const r = await routiq(args, o);
      all.push(r);
      return r;
    };
    const set = await run(['credentials', 'set', 'org_cred', 'cliniko', 'api_key'], { input: `${VALUE}\n` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toMatch(/stored org_cred\/cliniko\/api_key \(version 1, key k1\)/);

    // A value on the command line is a usage error; so is a setting that is not a secret, or a missing key list.
    const argv = await run(['credentials', 'set', 'org_cred', 'cliniko', 'api_key', VALUE]);
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/^RQ6001 credentials set takes ORG CONNECTION NAME/);
    const notSecret = await run(['credentials', 'set', 'org_cred', 'cliniko', 'contact_email'], { input: 'x' });
    expect(notSecret.code).toBe(3);
    expect(notSecret.stderr).toMatch(
      /"contact_email" is not a secret setting of connector cliniko \(secret settings: api_key\)/,
    );
    const noKeys = await run(['credentials', 'set', 'org_cred', 'cliniko', 'api_key'], {
      input: 'x',
      env: { ROUTIQ_ENCRYPTION_KEYS: '' },
    });
    expect(noKeys.code).toBe(3);
    expect(noKeys.stderr).toMatch(/^RQ1020 ROUTIQ_ENCRYPTION_KEYS: ROUTIQ_ENCRYPTION_KEYS is not set/);

    const rotate = await run(['credentials', 'rotate', '--json'], { env: { ROUTIQ_ENCRYPTION_KEYS: `${K2},${K1}` } });
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(JSON.parse(rotate.stdout)).toEqual({ key_id: 'k2', rotated: 1, remaining: 0, failed: [] });

    const list = await run(['credentials', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({
        organization_id: 'org_cred',
        connection: 'cliniko',
        name: 'api_key',
        key_id: 'k2',
        version: 1,
      }),
    ]);

    const del = await run(['credentials', 'delete', 'org_cred', 'cliniko', 'api_key']);
    expect(del.code, del.stderr).toBe(0);

    for (const r of all) expect(`${r.stdout}${r.stderr}`).not.toContain(VALUE);

    let db: Database | undefined;
    try {
      db = await openDatabase({ url: target.url, embeddedDir: path.join(tmp, 'db') });
      const audit = await db.query<{ action: string; actor_type: string; count: number; correlation_id: string }>(
        "select action, actor_type, count, correlation_id from audit_log where action like 'credentials.%' order by id",
      );
      expect(audit.map((a) => [a.action, a.actor_type, a.count])).toEqual([
        ['credentials.set', 'cli', 1],
        ['credentials.rotate', 'cli', 1],
        ['credentials.delete', 'cli', 1],
      ]);
      // One correlation id per invocation.
      expect(new Set(audit.map((a) => a.correlation_id)).size).toBe(3);
      expect(JSON.stringify(await db.query('select * from audit_log'))).not.toContain(VALUE);
    } finally {
      await db?.close();
    }
  }, 180_000);
});
