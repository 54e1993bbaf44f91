import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../test/helpers/db.ts';

/**
 * `routiq db shell` as a user runs it, on an embedded database directory named in a config file: statements piped
 * on stdin, and typed at the prompt on a terminal (a pseudo-terminal opened by util-linux `script`).
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/routiq.mjs');

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('routiq db shell (embedded database)', { timeout: 180_000 }, () => {
  let tmp: string;
  let configFile: string;
  const env = () => ({ ...process.env, DATABASE_URL: '', ROUTIQ_DB_DIR: '', ROUTIQ_ENV: '', ROUTIQ_LOG_LEVEL: '' });
  const settle =
    (resolve: (r: Result) => void) =>
    (error: { code?: number | string | null } | null, stdout: string, stderr: string) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 70) : 0, stdout, stderr });

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

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-cli-db-'));
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `database:\n  embedded_dir: ${JSON.stringify(path.join(tmp, 'db'))}\nlog:\n  level: warn\n`,
    );
    await createTestDatabase('embedded', { dir: path.join(tmp, 'db') });
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

  it('read-only unless --write: the first refused statement stops a piped shell with exit 1', async () => {
    const refused = await shell('create table notes (id int, body text);\nselect 1 as after;\n');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('RQ6001');
    expect(refused.stderr).toContain('read-only transaction');
    expect(refused.stdout).toBe('');

    const written = await shell(
      "create table notes (id int, body text);\ninsert into notes values (1, 'x'), (2, null);\nselect * from notes order by id;\n\\d notes\n",
      '--write',
      '--json',
    );
    expect(written.code, written.stderr).toBe(0);
    const lines = written.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.slice(0, 3)).toEqual([
      [],
      [],
      [
        { id: 1, body: 'x' },
        { id: 2, body: null },
      ],
    ]);
    expect(lines[3].map((c: { column: string }) => c.column)).toEqual(['id', 'body']);

    const text = await shell('select * from notes order by id\n'); // the last statement needs no ";"
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe('id  body\n1   x\n2\n');
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
    const refused = await sql('create table nope (id int)');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('hint: add --write');
  });

  it.skipIf(!hasScript())('on a terminal: a prompt, each statement answered, \\q quits', async () => {
    const cmd = `exec '${process.execPath}' '${BIN}' db shell --config '${configFile}'`;
    const r = await new Promise<Result>((resolve) => {
      const child = execFile(
        'script',
        ['-qfec', cmd, '/dev/null'],
        { cwd: tmp, env: env(), timeout: 60_000 },
        settle(resolve),
      );
      child.stdin?.end('select 41 + 1 as answer;\n\\q\n');
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('(read-only; --write to change data)');
    expect(r.stdout).toContain('routiq=> ');
    expect(r.stdout).toMatch(/answer\r?\n42\r?\n\(1 row\)/);
  });
});
