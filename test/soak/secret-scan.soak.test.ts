import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '@routiq/runner';
import { sandboxCredentials } from '@routiq/sandbox';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Issue #20, "Must show" (the long form of test/e2e/secret-scan.test.ts): a full `routiq demo` (every connector,
 * full and incremental syncs, pushed webhooks) at trace level, then `dlq list`, `credentials set|list|rotate` on its
 * configuration: none of the demo's secrets (nor the service token or encryption keys in the environment) appears
 * on stdout, stderr or anywhere in its database.
 */
const BIN = path.resolve(import.meta.dirname, '../../cli/bin/routiq.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'routiq-demo-scan-'));
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const SERVICE_TOKEN = `svc-${randomBytes(16).toString('hex')}`;
const env = {
  ...process.env,
  ROUTIQ_LOG_LEVEL: 'trace',
  ROUTIQ_SERVICE_TOKEN: SERVICE_TOKEN,
  ROUTIQ_ENCRYPTION_KEYS: `k1:${K1}`,
  DATABASE_URL: '',
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The demo's tenant credentials are deterministic for its seed (1). */
function demoSecrets(): string[] {
  const t = sandboxCredentials(1, 0);
  return [t.chatwoot.token, t.chatwoot.webhookSecret, t.cliniko.apiKey, t.manychat.token, 'demo-token-1'];
}

function run(args: string[], input?: string, extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...env, ...extra },
    ...(input !== undefined ? { input } : {}),
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, text: `${r.stdout}\n${r.stderr}` };
}

describe('secrets never leak from a full demo run', () => {
  it('demo sync + webhooks, dlq list, credentials set/list/rotate: no secret in output or database', async () => {
    const secrets = demoSecrets();
    const all = [...secrets, SERVICE_TOKEN, K1, K2];
    const encoded = [Buffer.from(`${secrets[2]}:`).toString('base64')];
    const leaks = (text: string) =>
      [...all, ...encoded, ...all.map(encodeURIComponent)].filter((s) => text.includes(s));

    let output = '';
    const demo = spawn(process.execPath, [BIN, 'demo', '--orgs', '1', '--scale', '1', '--json', '--dir', dir], { env });
    demo.stdout.on('data', (c) => (output += c));
    demo.stderr.on('data', (c) => (output += c));
    const code = await new Promise<number | null>((r) => demo.on('close', r));
    expect(code, output.slice(-2000)).toBe(0);
    expect(output).toMatch(/"msg":"webhook ingested"/);
    expect(output).toMatch(/"msg":"sync finished"/);

    const config = path.join(dir, 'routiq.yaml');
    const org = 'org_demo_bondi_physio';
    const outputs = [output];
    const list = run(['dlq', 'list', '--config', config, '--all', '--json']);
    expect(list.status).toBe(0);
    outputs.push(list.text);
    const set = run(['credentials', 'set', org, 'cliniko', 'api_key', '--config', config], secrets[2]);
    expect(set.status, set.text).toBe(0);
    outputs.push(set.text);
    const fromEnv = run(
      ['credentials', 'set', org, 'chatwoot', 'api_token', '--from-env', 'CW', '--config', config],
      undefined,
      {
        CW: secrets[0],
      },
    );
    expect(fromEnv.status, fromEnv.text).toBe(0);
    outputs.push(fromEnv.text);
    const rotate = run(['credentials', 'rotate', '--config', config, '--json'], undefined, {
      ROUTIQ_ENCRYPTION_KEYS: `k2:${K2},k1:${K1}`,
    });
    expect(rotate.status, rotate.text).toBe(0);
    expect(JSON.parse(rotate.text.split('\n\n')[0] ?? rotate.text)).toMatchObject({ rotated: 2, remaining: 0 });
    outputs.push(rotate.text);
    const listed = run(['credentials', 'list', '--config', config, '--json']);
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.text.trim()).map((r: { key_id: string }) => r.key_id)).toEqual(['k2', 'k2']);
    outputs.push(listed.text);
    expect(leaks(outputs.join('\n'))).toEqual([]);

    const db = await openDatabase({ embeddedDir: path.join(dir, 'db') });
    try {
      const tables = await db.query<{ schema: string; name: string }>(
        `select table_schema as schema, table_name as name from information_schema.tables
         where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
      );
      let dump = '';
      for (const t of tables) dump += JSON.stringify(await db.query(`select * from "${t.schema}"."${t.name}"`));
      expect(dump).toContain('"action":"sync.write"');
      expect(dump).toContain('"action":"credentials.rotate"');
      expect(leaks(dump)).toEqual([]);
    } finally {
      await db.close();
    }
    expect(leaks(readFileSync(config, 'utf8'))).toEqual([]);
  }, 600_000);
});
