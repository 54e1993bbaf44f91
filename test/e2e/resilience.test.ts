import { describeResilience } from '../helpers/resilience.ts';

/**
 * Issue #6, the quick version: every fault kind over a whole Chatwoot sync, faults on a Cliniko sync, both at the
 * simulators' base scale. The ~20k-record version and the 429 storm are test/soak/resilience.soak.test.ts.
 */
await describeResilience({
  title: 'resilience against faulty simulators, small sources',
  chatwoot: { scale: 1, faultRate: 0.08, minMessages: 1000 },
  cliniko: { scale: 1, faultRate: 0.05, kinds: ['5xx', 'timeout', 'reset', 'truncated'] },
});
