import { webhookFuzzSuite } from '../helpers/webhook-fuzz.ts';

// The same seeded fuzz as the soak tier's 2,000-per-platform run (test/soak/webhook-fuzz.soak.test.ts), lighter.
webhookFuzzSuite(300);
