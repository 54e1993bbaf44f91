import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * Test tiers (package.json scripts):
 * - `npm run test:unit` (vitest.unit.config.ts): *.unit.test.ts only; no database, no child process; seconds.
 * - `vitest run` here, what `npm test` runs: unit + integration + end-to-end, with a light version of each soak
 *   scenario (a few kills, a small chaos run), within minutes on 2 cores.
 * - `npm run test:soak` (vitest.soak.config.ts): *.soak.test.ts, the long scenarios (20 kills, ~20k records
 *   through 5% faults, large sets). CI (.ci/run) runs it after `npm test`.
 * - `npm run test:scale` (vitest.scale.config.ts): *.scale.test.ts, production-size scenarios (tens of minutes);
 *   by hand, not in CI.
 */
export function tier(include: string[], o: { database: boolean }): ViteUserConfig {
  const json = process.env.ROUTIQ_VITEST_JSON;
  return defineConfig({
    test: {
      include,
      exclude: ['**/node_modules/**', '**/dist/**'],
      // Integration tests start embedded databases and child processes; 2 cores here.
      maxWorkers: 2,
      // Test files share their worker's module graph instead of re-importing the engine (MikroORM, PGlite, ajv …)
      // each: about a third of the suite's CPU. Tests therefore must not depend on fresh module state; the
      // engine's process-wide caches are keyed by file, database or URL, and no test mocks modules or globals.
      isolate: false,
      testTimeout: 60_000,
      hookTimeout: 120_000,
      // One initdb per run for the embedded database; test databases are copies of it (test/helpers/db.ts).
      ...(o.database ? { globalSetup: ['test/helpers/global-setup.ts'] } : {}),
      // CI also writes a JSON report (see .ci/run) to print a plain "N passed, N failed" line.
      reporters: json ? ['default', 'json'] : ['default'],
      ...(json ? { outputFile: { json } } : {}),
    },
  });
}

export const UNIT = ['**/*.unit.test.ts'];
export const DEFAULT = [...UNIT, '**/*.integration.test.ts', 'test/e2e/**/*.test.ts'];
export const SOAK = ['**/*.soak.test.ts'];
export const SCALE = ['**/*.scale.test.ts'];

export default tier(DEFAULT, { database: true });
