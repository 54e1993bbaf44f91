import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';

/** What a `routiq` child process left: its exit code (70 when it died without one), stdout and stderr. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** An execFile callback that resolves with the child's Result, whether it exited 0 or not. */
export const settle =
  (resolve: (r: Result) => void) => (error: { code?: number | string | null } | null, stdout: string, stderr: string) =>
    resolve({ code: error ? (typeof error.code === 'number' ? error.code : 70) : 0, stdout, stderr });

/** util-linux `script` opens a pseudo-terminal for terminal-only behaviour (prompts, colour, progress lines). */
export const hasScript: boolean = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');

/** Variables a config reads that a test's own environment must not leak into a `routiq` run (child or in-process). */
export const CLI_UNSET_ENV = [
  'DATABASE_URL',
  'ROUTIQ_DB_DIR',
  'ROUTIQ_CONNECTORS_DIR',
  'ROUTIQ_LOG_LEVEL',
  'ROUTIQ_ENV',
];

/**
 * `routiq <args>` from the repository root as a user runs it, with CLI_UNSET_ENV unset unless `env` sets them (the
 * config decides the database). Resolves when it exits, whatever the code.
 */
export function routiqAtRoot(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    for (const k of CLI_UNSET_ENV) delete base[k];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 70, stdout, stderr }));
  });
}
