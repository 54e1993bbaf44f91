import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routiqInProcess } from '../../../test/helpers/cli-inprocess.ts';
import { hasScript, type Result, settle } from '../../../test/helpers/cli-process.ts';
import { createTestDatabase, testTmpDir } from '../../../test/helpers/db.ts';

/**
 * `routiq db shell` as a user runs it, on an embedded database directory named in a config file: statements piped
 * on stdin, and typed at the prompt on a terminal (a pseudo-terminal opened by util-linux `script`). Child processes
 * for each exit code and the terminal; further sessions through the CLI's entry in this process (same command code,
 * the database opened per session).
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/routiq.mjs');

describe('routiq db shell (embedded database)', { timeout: 180_000 }, () => {
  let tmp: string;
  let configFile: string;
  const env = () => ({ ...process.env, DATABASE_URL: '', ROUTIQ_DB_DIR: '', ROUTIQ_ENV: '', ROUTIQ_LOG_LEVEL: '' });

  const shell = (input: string, ...args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BIN, 'db', 'shell', '--config', configFile, ...args],
        { cwd: tmp, env: env(), timeout: 60_000 },
        settle(resolve),
      );
      child.stdin?.end(input);
    });
  const inProcess = (input: string, ...args: string[]): Promise<Result> =>
    routiqInProcess(['db', 'shell', '--config', configFile, ...args], {}, { stdin: input });

  beforeAll(async () => {
    tmp = testTmpDir('routiq-cli-db-');
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `database:\n  embedded_dir: ${JSON.stringify(path.join(tmp, 'db'))}\nlog:\n  level: warn\n`,
    );
    await createTestDatabase('embedded', { dir: path.join(tmp, 'db'), migrated: true });
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('piped: runs statements across lines in order, a ";" in a string ends nothing, \\q stops reading', async () => {
    const r = await shell("select 1 as one, 'a;b' as s;\nselect 2\n  as two;\n\\q\nselect 3 as three;\n");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('one  s\n1    a;b\ntwo\n2\n');
    expect(r.stderr).toContain('(1 row)');
    expect(r.stderr).not.toContain('routiq=>');
  });

  it('read-only unless --write, under row-level security (--org narrows to one organization), audited', async () => {
    const refused = await shell(
      "insert into organizations (id, name) values ('org_shell_a', 'A');\nselect 1 as after;\n",
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('RQ4007');
    expect(refused.stderr).toContain('read-only transaction');
    expect(refused.stdout).toBe('');

    const written = await inProcess(
      "insert into organizations (id, name) values ('org_shell_a', 'A'), ('org_shell_b', 'B;');\nselect id, name from organizations where id like 'org_shell_%' order by id;\n\\d organizations\n",
      '--write',
      '--json',
    );
    expect(written.code, written.stderr).toBe(0);
    const lines = written.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.slice(0, 2)).toEqual([
      [],
      [
        { id: 'org_shell_a', name: 'A' },
        { id: 'org_shell_b', name: 'B;' },
      ],
    ]);
    expect(lines[2].map((c: { column: string }) => c.column)).toContain('timezone');

    // One organization's scope sees its own row only; the cross-organization path (the default) sees both.
    const scoped = await inProcess(
      "select id from organizations where id like 'org_shell_%' order by id\n",
      '--org',
      'org_shell_b',
    );
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(scoped.stdout).toBe('id\norg_shell_b\n');
    // Schema changes belong to migrations: the service's roles have no CREATE.
    const ddl = await inProcess('create table notes (id int);\n', '--write');
    expect(ddl.code).toBe(1);
    expect(ddl.stderr).toMatch(/permission denied|must be owner/);

    const audit = await inProcess(
      "select action, actor_type, organization_id, count, details->>'scope' as scope from audit_log where resource_type = 'sql' order by created_at, id\n",
      '--json',
    );
    expect(audit.code, audit.stderr).toBe(0);
    // The statements of this test that ran (refused ones did not): the insert, the select, \\d's catalog read, the
    // scoped select — each with its scope and row count.
    expect((JSON.parse(audit.stdout) as unknown[]).slice(-4)).toEqual([
      { action: 'sql.write', actor_type: 'cli', organization_id: null, count: 0, scope: 'cross_organization' },
      // --write: every statement of that session may write, and is audited as such
      { action: 'sql.write', actor_type: 'cli', organization_id: null, count: 2, scope: 'cross_organization' },
      {
        action: 'sql.read',
        actor_type: 'cli',
        organization_id: null,
        count: expect.any(Number),
        scope: 'cross_organization',
      },
      { action: 'sql.read', actor_type: 'cli', organization_id: 'org_shell_b', count: 1, scope: 'organization' },
    ]);
  });

  it('routiq sql runs one statement with the same rules (read-only unless --write, rows to stdout)', async () => {
    const sql = (...args: string[]): Promise<Result> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [BIN, 'sql', ...args, '--config', configFile],
          { cwd: tmp, env: env(), timeout: 60_000 },
          settle(resolve),
        );
      });
    const r = await sql("select 'a' as x, null as y, '{\"k\":1}'::jsonb as z", '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ x: 'a', y: null, z: { k: 1 } }]);
    const refused = await sql("delete from organizations where id = 'org_nobody'");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/RQ4007 .*read-only transaction[\s\S]*hint: .*--write/);
  });

  it.skipIf(!hasScript)('on a terminal: a prompt, each statement answered, \\q quits', async () => {
    const cmd = `exec '${process.execPath}' '${BIN}' db shell --config '${configFile}'`;
    const r = await new Promise<Result>((resolve) => {
      const child = execFile(
        'script',
        ['-qfec', cmd, '/dev/null'],
        { cwd: tmp, env: env(), timeout: 60_000 },
        settle(resolve),
      );
      // Typed as a person would: the next line once the answer is on the screen.
      let seen = '';
      let quit = false;
      child.stdin?.write('select 41 + 1 as answer;\n');
      child.stdout?.on('data', (c: Buffer) => {
        seen += c.toString();
        if (!quit && seen.includes('(1 row)')) {
          quit = true;
          child.stdin?.end('\\q\n');
        }
      });
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('(read-only; --write to change data)');
    expect(r.stdout).toContain('routiq=> ');
    expect(r.stdout).toMatch(/answer\r?\n42\r?\n\(1 row\)/);
  });
});
