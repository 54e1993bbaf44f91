import { FULL_PER_PLATFORM, webhookFuzzSuite } from '../helpers/webhook-fuzz.ts';

// Issue #17: a seeded fuzz of at least 2,000 deliveries per platform (npm test runs 300 of the same kinds).
webhookFuzzSuite(FULL_PER_PLATFORM);
