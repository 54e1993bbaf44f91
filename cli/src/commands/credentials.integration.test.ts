import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../test/helpers/connectors.ts';

/**
 * `routiq credentials` refuses what it must before touching a database: a value on the command line, a setting
 * that is not a secret, a missing key list (a malformed one: security/crypto.unit.test.ts). The full flow (set, list,
 * rotate, delete, audit) runs in test/soak/credentials-cli.soak.test.ts and test/soak/secret-scan.soak.test.ts.
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/routiq.mjs');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('routiq credentials: refusals (CLI, no database)', () => {
  let tmp: string;
  let configFile: string;
  const routiq = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BIN, ...args, '--config', configFile],
        { cwd: tmp, env: { ...process.env, ROUTIQ_ENV: '', ROUTIQ_ENCRYPTION_KEYS: '', ...env }, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 70) : 0, stdout, stderr }),
      );
      child.stdin?.end('a-value');
    });

  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-cli-creds-'));
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `connectors_dir: ${JSON.stringify(CONNECTORS_DIR)}
organizations:
  - id: org_cred
    name: Credential clinic
    connections:
      - connector: cliniko
        credential_store: true
        config: { base_url: "http://127.0.0.1:9", contact_email: ops@routiq.example }
`,
    );
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('never takes a value from argv; names what is wrong with the target or the keys, exit 2 or 3', async () => {
    const argv = await routiq(['credentials', 'set', 'org_cred', 'cliniko', 'api_key', 'tok_live_abc123']);
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/^RQ6001 credentials set takes ORG CONNECTION NAME \(the value comes from stdin\)/);
    expect(argv.stderr).not.toContain('tok_live_abc123');

    const noKeys = await routiq(['credentials', 'set', 'org_cred', 'cliniko', 'api_key']);
    expect(noKeys.code).toBe(3);
    expect(noKeys.stderr).toMatch(/^RQ1020 ROUTIQ_ENCRYPTION_KEYS: ROUTIQ_ENCRYPTION_KEYS is not set/);

    const notSecret = await routiq(['credentials', 'set', 'org_cred', 'cliniko', 'contact_email'], {
      ROUTIQ_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    });
    expect(notSecret.code).toBe(3);
    expect(notSecret.stderr).toMatch(
      /"contact_email" is not a secret setting of connector cliniko \(secret settings: api_key\)/,
    );
  });
});
