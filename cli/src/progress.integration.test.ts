import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routiqInProcess } from '../../test/helpers/cli-inprocess.ts';
import { hasScript, type Result, settle } from '../../test/helpers/cli-process.ts';
import { createTestDatabase, testTmpDir } from '../../test/helpers/db.ts';
import { connectorsDir } from '../../test/helpers/engine.ts';
import { itemsSpec } from '../../test/helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../../test/helpers/tiny-api.ts';
import { stripAnsi } from './output.ts';

/**
 * Progress lines of the long commands as a user sees them: each command runs as a child process on a real terminal
 * (a pseudo-terminal opened by util-linux `script`), and once with its output not a terminal, through the CLI's entry
 * in this process (test/helpers/cli-inprocess.ts). Only the terminal run shows the line; the other prints exactly
 * what it printed before progress lines existed.
 */
const BIN = path.resolve(import.meta.dirname, '../bin/routiq.mjs');
/** A spec whose mapping rejects Item 4 (one dead letter), and that honours Retry-After (a 0 s rate-limit wait). */
const spec = (status: string) =>
  itemsSpec('paced', {
    target: 'appointments',
    mapping: `{ "external_id": id, "status": ${status}, "notes": name }`,
  }).replace('streams:', 'rate_limits: { retry_after_header: Retry-After }\nstreams:');

// Child processes on an embedded database: slow on a loaded 2-core machine.
describe.skipIf(!hasScript)(
  'progress lines on a terminal (sync, dlq replay, patients reconcile)',
  { timeout: 240_000 },
  () => {
    let api: TinyApi;
    let tmp: string;
    let configFile: string;
    const env = (extra: NodeJS.ProcessEnv = {}) => ({
      ...process.env,
      DATABASE_URL: '',
      ROUTIQ_DB_DIR: '',
      ROUTIQ_CONNECTORS_DIR: '',
      ROUTIQ_LOG_LEVEL: '',
      ROUTIQ_ENV: '',
      NO_COLOR: '',
      TERM: 'xterm',
      ...extra,
    });

    /** Output not a terminal. */
    const piped = (args: string[]): Promise<Result> =>
      routiqInProcess([...args, '--config', configFile], { NO_COLOR: '', TERM: 'xterm' });

    /** On a pseudo-terminal 160 columns wide: stdout and stderr arrive mixed, as on a screen. */
    const onTerminal = (args: string[], extra?: NodeJS.ProcessEnv): Promise<Result> => {
      const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const cmd = `stty cols 160 2>/dev/null; exec ${[process.execPath, BIN, ...args, '--config', configFile].map(q).join(' ')}`;
      return new Promise((resolve) => {
        execFile(
          'script',
          ['-qfec', cmd, '/dev/null'],
          { cwd: tmp, env: env(extra), timeout: 60_000 },
          settle(resolve),
        );
      });
    };

    beforeAll(async () => {
      api = await startTinyApi({ items: 30 });
      tmp = testTmpDir('routiq-cli-progress-');
      const dir = connectorsDir({ paced: spec('$contains(name, "Item 4 ") ? name : "booked"') });
      configFile = path.join(tmp, 'routiq.yaml');
      writeFileSync(
        configFile,
        `database:
  embedded_dir: ${JSON.stringify(path.join(tmp, 'db'))}
log:
  level: warn
connectors_dir: ${JSON.stringify(dir)}
organizations:
  - id: org_progress
    name: Progress clinic
    connections:
      - connector: paced
        config: { base_url: ${JSON.stringify(api.url)} }
`,
      );
      await createTestDatabase('embedded', { dir: path.join(tmp, 'db') });
      const m = await piped(['migrate']);
      expect(m.code, m.stderr).toBe(0);
    });
    afterAll(async () => {
      await api?.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('sync: a bar per connection with pages, records, requests and rate-limit waits; none piped or with --json', async () => {
      api.throttleNext(1);
      // NO_COLOR: the same line without colour (the colours themselves: progress.unit.test.ts).
      const tty = await onTerminal(['sync', '--full-refresh'], { NO_COLOR: '1' });
      expect(tty.code, tty.stdout).toBe(0);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: an SGR (colour) sequence is what must be absent
      expect(tty.stdout).not.toMatch(/\x1b\[\d*m/);
      const screen = stripAnsi(tty.stdout);
      // Drawn in place (carriage return), kept when the connection is done, before the summary table.
      // The first update is drawn at once; later ones at most every 100 ms, so which pages show depends on speed.
      expect(screen).toMatch(/\rorg_progress \/ paced {2}░{20} 0\/1 streams {2}items/);
      expect(screen).toMatch(
        /\rorg_progress \/ paced {2}█{20} 1\/1 streams {2}\d+ pages · 30 records · \d+ requests · 1 rate-limit wait\r?\n/,
      );
      expect(screen.indexOf('1/1 streams')).toBeLessThan(screen.indexOf('stream  status'));

      const pipe = await piped(['sync']);
      expect(pipe.code, pipe.stderr).toBe(0);
      expect(pipe.stdout).toMatch(/^org_progress \/ paced \(paced 1\.0\.0\) — succeeded/);
      expect(pipe.stderr).not.toMatch(/streams|█|\r/);

      const json = await onTerminal(['sync', '--json']);
      expect(json.code, json.stdout).toBe(0);
      expect(json.stdout).not.toMatch(/█|░/);
      expect(JSON.parse(json.stdout.replaceAll('\r\n', '\n')).runs[0].status).toBe('succeeded');
    });

    it('dlq replay and patients reconcile draw their bars on a terminal only', async () => {
      const replay = await onTerminal(['dlq', 'replay', '--org', 'org_progress', '--dry-run']);
      expect(replay.code, replay.stdout).toBe(1); // the spec is unchanged: the record still fails
      expect(stripAnsi(replay.stdout)).toMatch(
        /\rdead-letter replay \(dry run\) {2}█{20} (\d)\/\1 letters {2}(\d superseded · )?1 failed\r?\n/,
      );
      const pipedReplay = await piped(['dlq', 'replay', '--org', 'org_progress', '--dry-run']);
      expect(pipedReplay.code).toBe(1);
      expect(pipedReplay.stderr).not.toMatch(/letters|█|\r/);

      const reconcile = await onTerminal(['patients', 'reconcile', '--org', 'org_progress', '--dry-run']);
      expect(reconcile.code, reconcile.stdout).toBe(0);
      expect(stripAnsi(reconcile.stdout)).toMatch(/\rreconcile org_progress {2}✓ 0 merges\r?\n/);
    });
  },
);
