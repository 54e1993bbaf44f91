import { describeResilience } from '../helpers/resilience.ts';

/**
 * Issue #6, the quick version: every fault kind over a whole Chatwoot sync, faults on a Cliniko sync, both at the
 * simulators' base scale, and a short 429 storm. The ~20k-record version is test/soak/resilience.soak.test.ts.
 */
await describeResilience({
  title: 'resilience against faulty simulators, small sources',
  chatwoot: { scale: 1, faultRate: 0.08, minMessages: 1000 },
  cliniko: { scale: 1, faultRate: 0.05, kinds: ['5xx', 'timeout', 'reset', 'truncated'] },
  stormScale: 1,
  chaosTimeoutMs: 120_000,
  stormTimeoutMs: 120_000,
});
