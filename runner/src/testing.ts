/**
 * `@routiq/runner/testing`: engine internals that tests, fixtures and the benchmark outside this package drive
 * directly. Not for product code (the boundaries test keeps it out of what production entry points load).
 */
export { buildConnectionContext } from './engine/connection.ts';
export { mapRecords } from './engine/map.ts';
export { PgSlidingWindowLimiter } from './engine/ratelimit-pg.ts';
export { enableStageClock, readStageClock } from './engine/stage-clock.ts';
export { identityKeyQuery, pageCandidateQuery } from './identity/page-candidates.ts';
export {
  createOrganization,
  patientOf,
  writeConversation,
  writeIdentities,
  writeIdentityPages,
} from './identity/test-support.ts';
