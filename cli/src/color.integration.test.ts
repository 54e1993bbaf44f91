import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasScript, type Result, settle } from '../../test/helpers/cli-process.ts';

/**
 * NO_COLOR as a user meets it: `routiq lint` on a broken spec, on a terminal (a pseudo-terminal opened by
 * util-linux `script`) and piped. Colour only on a terminal, and never with NO_COLOR set to a value.
 */
const BIN = path.resolve(import.meta.dirname, '../bin/routiq.mjs');
const SGR = '\x1b[3';

describe.skipIf(!hasScript)('colour and NO_COLOR (routiq lint)', () => {
  let tmp: string;
  const env = (extra: NodeJS.ProcessEnv) => ({ ...process.env, NO_COLOR: '', TERM: 'xterm', ...extra });
  const done = settle;
  const piped = (extra: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, 'lint', 'broken'], { cwd: tmp, env: env(extra) }, done(resolve));
    });
  const onTerminal = (extra: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve) => {
      execFile(
        'script',
        ['-qfec', `exec '${process.execPath}' '${BIN}' lint broken`, '/dev/null'],
        { cwd: tmp, env: env(extra) },
        done(resolve),
      );
    });

  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-cli-color-'));
    mkdirSync(path.join(tmp, 'broken'));
    writeFileSync(path.join(tmp, 'broken/connector.yaml'), 'spec_version: 1\nname: broken\nversion: 1.0.0\n');
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a terminal gets the finding codes in colour', async () => {
    const r = await onTerminal();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/broken\/connector\.yaml:\d+:\d+/);
    expect(r.stdout).toContain(`${SGR}1mRQ2`);
  });

  it('NO_COLOR=1 on a terminal, or a pipe: the same findings without a colour escape', async () => {
    const plain = await onTerminal({ NO_COLOR: '1' });
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/broken\/connector\.yaml:\d+:\d+ RQ2\d+ /);
    expect(plain.stdout).not.toContain('\x1b[');
    const pipe = await piped();
    expect(pipe.code).toBe(1);
    expect(pipe.stdout).toMatch(/^broken\/connector\.yaml:\d+:\d+ RQ2\d+ /);
    expect(pipe.stdout + pipe.stderr).not.toContain('\x1b[');
  });
});
