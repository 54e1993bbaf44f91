import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyYaml, lintConfigText, lintPaths } from './index.ts';

const fixtures = path.join(import.meta.dirname, 'fixtures');
let root: string;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'routiq-lint-'));
  const w = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  cpSync(path.join(fixtures, 'valid/cliniko.yaml'), path.join(root, 'connectors/cliniko/connector.yaml'));
  w('connectors/bad/connector.yaml', readFileSync(path.join(fixtures, 'broken/bad-enum-order.yaml'), 'utf8'));
  w('connectors/cliniko/tests/recorded.yaml', 'requests:\n  - GET /patients\n');
  w('connectors/node_modules/x/connector.yaml', 'spec_version: 99\n');
  w('lint/fixtures/broken/b.yaml', 'spec_version: 1\nname: [\n');
  w(
    'config/dev.yaml',
    [
      'database:',
      '  pool_maxx: 3',
      'organizations:',
      '  - id: org_1',
      '    name: Clinic',
      '    connections:',
      '      - connector: cliniko',
      '        config: { contact_email: a@example.com }',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is config-file syntax, not a JS template
      '        secrets: { api_key: "${CLINIKO_KEY}" }',
      '      - connector: clinko',
      '',
    ].join('\n'),
  );
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('lintPaths', () => {
  it('lints specs and config files under directories, skipping other YAML, node_modules and fixtures/broken', async () => {
    const r = await lintPaths(['connectors', 'config', 'lint'], { cwd: root });
    expect(r.files).toEqual(['config/dev.yaml', 'connectors/bad/connector.yaml', 'connectors/cliniko/connector.yaml']);
    expect(r.skipped).toEqual(['connectors/cliniko/tests/recorded.yaml']);
    expect(r.findings.map((f) => `${f.file}:${f.line}:${f.col} ${f.code}`)).toEqual([
      'config/dev.yaml:2:3 RQ1003',
      'config/dev.yaml:10:20 RQ1006',
      'connectors/bad/connector.yaml:26:14 RQ2013',
    ]);
    expect(r.findings[0]?.message).toMatch(/unknown key "pool_maxx" in database; did you mean "pool_max"\?/);
    expect(r.findings[1]?.message).toMatch(
      /connector "clinko" does not exist in connectors\/; did you mean "cliniko"\?/,
    );
  });

  it('lints a fixtures/broken directory or file when it is named explicitly', async () => {
    const r = await lintPaths(['lint/fixtures/broken'], { cwd: root });
    expect(r.files).toEqual(['lint/fixtures/broken/b.yaml']);
    expect(r.findings.map((f) => f.code)).toEqual(['RQ2001']);
    const one = await lintPaths(['lint/fixtures/broken/b.yaml'], { cwd: root });
    expect(one.files).toEqual(['lint/fixtures/broken/b.yaml']);
  });

  it('lints the project fixtures: valid ones clean, broken ones skipped', async () => {
    const r = await lintPaths([fixtures], { cwd: path.resolve(fixtures, '../../../..') });
    expect(r.files).toEqual([
      'runner/src/lint/fixtures/valid/chatwoot.yaml',
      'runner/src/lint/fixtures/valid/cliniko.yaml',
    ]);
    expect(r.findings).toEqual([]);
  });

  it('throws a usage error (RQ6001) for a path that does not exist', async () => {
    await expect(lintPaths(['nope'], { cwd: root })).rejects.toMatchObject({ code: 'RQ6001' });
  });
});

describe('classifyYaml', () => {
  it('recognises specs and config files by their keys, name or modeline', () => {
    expect(classifyYaml('x.yaml', 'spec_version: 1\n')).toBe('spec');
    expect(classifyYaml('a/connector.yaml', 'name: [\n')).toBe('spec');
    expect(classifyYaml('x.yaml', '# yaml-language-server: $schema=../schemas/connector.schema.json\nname: x\n')).toBe(
      'spec',
    );
    expect(classifyYaml('x.yaml', 'database:\n  url: x\n')).toBe('config');
    expect(classifyYaml('x.yaml', 'runner: {}\n')).toBe('config');
    expect(classifyYaml('x.yaml', 'requests: []\n')).toBeUndefined();
  });
});

describe('lintConfigText', () => {
  const at = (text: string, opts = {}) =>
    lintConfigText(text, 'c.yaml', opts).map((f) => `${f.code} ${f.line}:${f.col} ${f.message}`);

  it('reports YAML errors as RQ1002 and schema errors as RQ1003, all of them, at their line:col', () => {
    expect(at('database:\n  url: "postgres://x\n')).toEqual([
      expect.stringMatching(/^RQ1002 2:8 unclosed quoted string/),
    ]);
    expect(at('log:\n  level: verbose\nrunner:\n  batch_size: 0\n')).toEqual([
      'RQ1003 2:10 log.level "verbose" is not one of trace, debug, info, warn, error, fatal, silent',
      'RQ1003 4:15 runner.batch_size must be >= 1, got 0',
    ]);
  });

  it('reports duplicate organizations and connections like loadConfig does', () => {
    const text =
      'organizations:\n  - { id: a, name: A, connections: [{ connector: x }, { connector: x }] }\n  - { id: a, name: B }\n';
    expect(at(text)).toEqual([
      expect.stringMatching(/^RQ1003 2:55 .*connection name "x" is used twice/),
      expect.stringMatching(/^RQ1003 3:11 organizations\[1\]\.id "a" is used twice/),
    ]);
  });

  it('checks connections against their connector when given the connectors directory', () => {
    const missing = 'organizations:\n  - id: a\n    name: A\n    connections:\n      - connector: cliniko\n';
    expect(at(missing, { connectorsDir: path.join(root, 'connectors') })).toEqual([
      'RQ1007 5:9 connection to "cliniko" is missing required settings secrets.api_key, config.contact_email',
    ]);
    const dir = path.join(root, 'connectors');
    const text = [
      'organizations:',
      '  - id: a',
      '    name: A',
      '    connections:',
      '      - connector: cliniko',
      '        config: { api_key: x, colour: red }',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is config-file syntax, not a JS template
      '        secrets: { contact_email: "${EMAIL}" }',
      '',
    ].join('\n');
    expect(at(text, { connectorsDir: dir })).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is config-file syntax, not a JS template
      'RQ1007 6:19 api_key is a secret of connector "cliniko": put it under secrets: as ${ENV_VAR}, never in config:',
      'RQ1007 6:31 config.colour is not a setting of connector "cliniko"',
      'RQ1007 7:20 contact_email is not a secret of connector "cliniko": put it under config:',
    ]);
  });
});
