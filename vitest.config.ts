import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.unit.test.ts', '**/*.integration.test.ts', 'test/e2e/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // Integration tests start embedded databases and child processes; 2 cores here.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
