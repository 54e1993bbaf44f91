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

const CONNECTORS = {
  'connectors/cliniko/connector.yaml': [
    'spec_version: 1',
    'name: cliniko',
    'connection:',
    '  properties:',
    '    api_key: { type: string, secret: true }',
    '    contact_email: { type: string, format: email }',
    '    base_url: { type: string, format: uri }',
    '    requests_per_minute: { type: integer, default: 200 }',
    '  required: [api_key, contact_email]',
    '',
  ].join('\n'),
  'connectors/chatwoot/connector.yaml': 'connection:\n  properties:\n    base_url: { type: string }\n',
};

/** A config with one cliniko connection whose body (config:/secrets: lines) is given; the connector is on line 5. */
const connection = (body: string, connector = 'cliniko') =>
  `organizations:\n  - id: org_1\n    name: A\n    connections:\n      - connector: ${connector}\n${body}`;

function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected an error');
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

  it('refuses a literal secret without repeating it, and resolves ${ENV} references lazily', () => {
    const bad = dirWith({
      ...CONNECTORS,
      'c.yaml': connection(
        '        config: { contact_email: a@b.co }\n        secrets:\n          api_key: sk-live-TOPSECRET\n',
      ),
    });
    const e = thrown(() => loadConfig({ cwd: bad, file: 'c.yaml', env: {} }));
    expect(e.code).toBe('RQ1003');
    expect(e.message).toContain('c.yaml:8:20: organizations[0].connections[0].secrets.api_key is a literal value');
    expect(e.message).toContain('${CLINIKO_API_KEY}');
    expect(e.message).not.toContain('TOPSECRET');
    const ok = dirWith({
      ...CONNECTORS,
      'c.yaml': connection(
        '        config: { contact_email: a@b.co }\n        secrets:\n          api_key: ${CLINIKO_KEY}\n',
      ),
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

describe('loadConfig start-up validation of connections', () => {
  const load = (files: Record<string, string>, env: NodeJS.ProcessEnv = {}) =>
    loadConfig({ cwd: dirWith({ ...CONNECTORS, ...files }), file: 'c.yaml', env });

  it('an unknown connector fails at start-up naming file:line:col and the known connectors', () => {
    const e = thrown(() => load({ 'c.yaml': connection('', 'clinko') }));
    expect(e.code).toBe('RQ1006');
    expect(e.message).toBe(
      'c.yaml:5:20: connector "clinko" does not exist in connectors/; did you mean "cliniko"? (known: chatwoot, cliniko)',
    );
    // ROUTIQ_CONNECTORS_DIR moves the folder, as it does for the engine.
    const moved = thrown(() =>
      load(
        { 'c.yaml': connection('        config: { contact_email: a@b.co }\n        secrets: { api_key: "${K}" }\n') },
        {
          ROUTIQ_CONNECTORS_DIR: 'elsewhere',
        },
      ),
    );
    expect(moved.message).toContain('does not exist in elsewhere/ (elsewhere/ holds no connectors)');
  });

  it('a secret under config: is an error that does not repeat the value; settings are checked against the spec', () => {
    const e = thrown(() =>
      load({
        'c.yaml': connection(
          '        config: { api_key: sk-live-TOPSECRET, contact_email: not-an-email, colour: red, requests_per_minute: fast }\n',
        ),
      }),
    );
    expect(e.code).toBe('RQ1007');
    expect(e.message.split('\n')).toEqual([
      'c.yaml:6:19: api_key is a secret of connector "cliniko": put it under secrets: as ${ENV_VAR}, never in config:',
      'c.yaml:6:62: config.contact_email must be an email address, got "not-an-email"',
      'c.yaml:6:76: config.colour is not a setting of connector "cliniko"',
      'c.yaml:6:110: config.requests_per_minute must be an integer, got "fast"',
    ]);
    expect(e.message).not.toContain('TOPSECRET');
  });

  it('secrets: holds only declared secret settings', () => {
    const e = thrown(() =>
      load({
        'c.yaml': connection(
          '        config: { contact_email: a@b.co }\n        secrets: { api_key: "${K}", contact_email: "${E}", apikey: "${X}" }\n',
        ),
      }),
    );
    expect(e.message.split('\n')).toEqual([
      'c.yaml:7:37: contact_email is not a secret of connector "cliniko": put it under config:',
      'c.yaml:7:60: secrets.apikey is not a setting of connector "cliniko"; did you mean "api_key"?',
    ]);
  });

  it.each([
    ['HOME', 'a system variable'],
    ['PATH', 'a system variable'],
    ['NODE_OPTIONS', 'a system variable'],
    ['NPM_CONFIG_CACHE', 'belong to other tools (npm)'],
    ['DATABASE_URL', 'a routiq setting'],
    ['ROUTIQ_LOG_LEVEL', 'a routiq setting'],
  ])('a secret referencing ${%s} is refused at start-up', (name, why) => {
    const e = thrown(() =>
      load({
        'c.yaml': connection(
          `        config: { contact_email: a@b.co }\n        secrets: { api_key: "\${${name}}" }\n`,
        ),
      }),
    );
    expect(e.code).toBe('RQ1003');
    expect(e.message).toContain(`c.yaml:7:29: organizations[0].connections[0].secrets.api_key references \${${name}}`);
    expect(e.message).toContain(why);
    expect(e.message).toContain('e.g. ${CLINIKO_API_KEY}');
  });

  it('a URL with a password in a config value is refused without showing it', () => {
    const e = thrown(() =>
      load({
        'c.yaml': connection(
          '        config: { contact_email: a@b.co, base_url: "https://me:hunter2@proxy.example/v1" }\n        secrets: { api_key: "${K}" }\n',
        ),
      }),
    );
    expect(e.message).toContain('c.yaml:6:52: config.base_url has a password in its URL');
    expect(e.message).not.toContain('hunter2');
  });
});

describe('loadConfig database.url', () => {
  const file = (url: string) => dirWith({ 'c.yaml': `database:\n  url: ${JSON.stringify(url)}\n` });

  it('a literal password in the file is an error that points at DATABASE_URL or a ${VAR} reference', () => {
    for (const url of ['postgres://u:pw-LITERAL@db.example/app', 'postgresql://u@db.example/app?password=pw-LITERAL']) {
      const e = thrown(() => loadConfig({ cwd: file(url), file: 'c.yaml', env: {} }));
      expect(e.code).toBe('RQ1003');
      expect(e.message).toMatch(/^c\.yaml:2:8: database\.url holds a literal password \(not shown\): set DATABASE_URL/);
      expect(e.message).not.toContain('pw-LITERAL');
    }
    // No password, or the password from the environment: fine.
    expect(loadConfig({ cwd: file('postgres://u@db.example/app'), file: 'c.yaml', env: {} }).database.url).toBe(
      'postgres://u@db.example/app',
    );
    expect(
      loadConfig({
        cwd: file('postgres://u@db.example/app'),
        file: 'c.yaml',
        env: { DATABASE_URL: 'postgres://e:pw@h/d' },
      }).database.url,
    ).toBe('postgres://e:pw@h/d');
  });

  it('fills ${VAR} references from the environment, percent-encoded; a missing one is RQ1004', () => {
    const cwd = file('postgres://u:${DB_PASSWORD}@db.example/app');
    expect(loadConfig({ cwd, file: 'c.yaml', env: { DB_PASSWORD: 'p@ss/w:rd' } }).database.url).toBe(
      'postgres://u:p%40ss%2Fw%3Ard@db.example/app',
    );
    const e = thrown(() => loadConfig({ cwd, file: 'c.yaml', env: {} }));
    expect(e.code).toBe('RQ1004');
    expect(e.message).toContain('database.url references ${DB_PASSWORD}, which is not set');
    const sys = thrown(() => loadConfig({ cwd: file('postgres://u:${HOME}@h/d'), file: 'c.yaml', env: {} }));
    expect(sys.message).toContain('database.url references ${HOME} as its password, but HOME is a system variable');
  });
});
