import { execFileSync } from 'node:child_process';

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
