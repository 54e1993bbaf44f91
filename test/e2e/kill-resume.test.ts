import { describeKillResume } from '../helpers/kill-resume.ts';

/**
 * Issue #4, the quick version: three kills at different depths of the first full sync (early in the item pages,
 * among the notes, deep into the notes); each run resumes from the last checkpoint of the one before. The
 * 20-kill version with a changing source is test/soak/kill-resume.soak.test.ts.
 */
await describeKillResume({
  title: 'SIGKILL mid-sync 3 times, then resume',
  killPoints: [12, 90, 170],
  // Five CLI processes (migrate, three cut runs, the final run), each ~2.5 s of CPU to start on the embedded database.
  timeoutMs: 120_000,
});
