import { describeResilience } from '../helpers/resilience.ts';

/** Issue #6: 5% injected faults of every kind over a ~20k-record sync, and a long 429 storm. */
await describeResilience({
  title: 'resilience against faulty simulators, ~20k records',
  chatwoot: { scale: 16, faultRate: 0.05, minMessages: 18_000 },
  cliniko: { scale: 10, faultRate: 0.05, kinds: ['5xx', 'timeout', 'reset', '429', 'truncated'] },
  stormScale: 12,
  chaosTimeoutMs: 600_000,
  stormTimeoutMs: 300_000,
});
