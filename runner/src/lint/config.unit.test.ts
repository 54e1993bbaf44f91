import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { lintConfigText } from './config.ts';

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'routiq-lint-config-'));
  mkdirSync(path.join(root, 'connectors/cliniko'), { recursive: true });
  writeFileSync(
    path.join(root, 'connectors/cliniko/connector.yaml'),
    'connection:\n  properties:\n    api_key: { type: string, secret: true }\n    contact_email: { type: string }\n  required: [api_key]\n',
  );
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const lint = (text: string) =>
  lintConfigText(text, 'c.yaml', { connectorsDir: path.join(root, 'connectors') }).map(
    (f) => `c.yaml:${f.line}:${f.col}: ${f.message}`,
  );

/** The same file through loadConfig: the lines of its error, or [] when it loads. */
function load(text: string): string[] {
  writeFileSync(path.join(root, 'c.yaml'), text);
  try {
    loadConfig({ cwd: root, file: 'c.yaml', env: {} });
    return [];
  } catch (e) {
    return (e as Error).message.split('\n');
  }
}

const conn = (secretsBlock: string, extra = '') =>
  `${extra}organizations:\n  - id: org_1\n    name: A\n    connections:\n      - connector: cliniko\n        secrets:\n${secretsBlock}`;

describe('lintConfigText: secrets and passwords', () => {
  it('a literal secret is reported as "a literal value", never printed, exactly as loadConfig reports it', () => {
    for (const value of ['sk-live-TOPSECRET', '"sk-live-TOPSECRET"', '123456789', '[sk-live-TOPSECRET]']) {
      const text = conn(`          api_key: ${value}\n`);
      const found = lint(text);
      expect(found).toEqual([
        expect.stringMatching(/^c\.yaml:7:20: .*secrets\.api_key is a literal value \(not shown\)/),
      ]);
      expect(found.join('\n')).not.toMatch(/TOPSECRET|123456789/);
      expect(load(text)).toEqual(found);
    }
  });

  it('secrets: that is not a mapping is reported without its value', () => {
    const text =
      'organizations:\n  - id: org_1\n    name: A\n    connections:\n      - connector: cliniko\n        secrets: sk-live-TOPSECRET\n';
    const found = lint(text);
    expect(found.join('\n')).toContain('secrets must be a mapping of setting: ${ENV_VAR} references');
    expect(found.join('\n')).not.toContain('TOPSECRET');
  });

  it('a reference to a system or routiq variable is refused', () => {
    const text = conn('          api_key: ${HOME}\n');
    expect(lint(text)).toEqual([
      'c.yaml:7:20: organizations[0].connections[0].secrets.api_key references ${HOME}, but HOME is a system variable, not a secret: reference the variable that holds this secret, e.g. ${CLINIKO_API_KEY}',
    ]);
    expect(load(text)).toEqual(lint(text));
  });

  it('a literal password in database.url is an error, a ${VAR} password or none is fine', () => {
    const bad = conn(
      '          api_key: ${CLINIKO_KEY}\n',
      'database:\n  url: postgres://u:pw-LITERAL@db.example/app\n',
    );
    const found = lint(bad);
    expect(found).toEqual([
      'c.yaml:2:8: database.url holds a literal password (not shown): set DATABASE_URL in the environment instead, or write the password as a reference, e.g. postgresql://user:${DB_PASSWORD}@host/db',
    ]);
    expect(load(bad)).toEqual(found);
    // A schema message that quotes the URL quotes it masked.
    const wrong = lint('database:\n  url: mysql://u:pw-LITERAL@db.example/app\n').join('\n');
    expect(wrong).toContain('mysql://u:***@db.example/app');
    expect(wrong).not.toContain('pw-LITERAL');
    expect(
      lint(conn('          api_key: ${CLINIKO_KEY}\n', 'database:\n  url: postgres://u:${DB_PASSWORD}@h/app\n')),
    ).toEqual([]);
  });
});
