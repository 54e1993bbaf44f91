import { describeKillResume } from '../helpers/kill-resume.ts';

/**
 * Issue #4: SIGKILL at 20 pseudo-random points of a multi-page, parent→child sync while the source changes under
 * the runs (new notes, touched parents every 5th run); the final database must equal the source exactly.
 */
function killPoints(seed: number, n: number, max: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return 1 + Math.floor((s / 2 ** 31) * max);
  });
}

await describeKillResume({
  title: 'SIGKILL at 20 points, then resume',
  killPoints: killPoints(7, 20, 40),
  changeSourceEvery: 5,
  timeoutMs: 600_000,
});
