import { SCALE, tier } from './vitest.config.ts';

/**
 * `npm run test:scale`: the scenarios at production size that take tens of minutes on 2 cores (three `routiq serve`
 * processes × 200 organizations × 3 connections; patient matching at 20,000 patients per organization). Not run by
 * CI (.ci/run): run them by hand before a release, on a quiet machine.
 */
export default tier(SCALE, { database: true });
