import { SOAK, tier } from './vitest.config.ts';

/** `npm run test:soak`: the long scenarios (see vitest.config.ts). */
export default tier(SOAK, { database: true });
