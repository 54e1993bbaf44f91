import { tier, UNIT } from './vitest.config.ts';

/** `npm run test:unit`: pure unit tests, no database. */
export default tier(UNIT, { database: false });
