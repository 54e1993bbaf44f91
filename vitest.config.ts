import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.unit.test.ts', '**/*.integration.test.ts', 'test/e2e/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // Integration tests start embedded databases and child processes; 2 cores here.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // CI also writes a JSON report (see .ci/run) to print a plain "N passed, N failed" line.
    reporters: process.env.ROUTIQ_VITEST_JSON ? ['default', 'json'] : ['default'],
    ...(process.env.ROUTIQ_VITEST_JSON ? { outputFile: { json: process.env.ROUTIQ_VITEST_JSON } } : {}),
  },
});
