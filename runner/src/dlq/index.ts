/** Dead letters (sync_errors): list, inspect, resolve and replay with the current spec; and the status report. */
export type { DeadLetterFilter, ErrorClass } from './filter.ts';
export {
  assertDeadLetterId,
  ERROR_CLASSES,
  hasSelector,
  parseAge,
  RECORD_CLASSES,
  REQUEST_CLASSES,
  validateFilter,
} from './filter.ts';
export type { ReplayOptions, ReplayOutcome, ReplayStatus } from './replay.ts';
export { replayDeadLetters } from './replay.ts';
export type {
  ConnectionHealth,
  ConnectionStatus,
  OrganizationStatus,
  RunInfo,
  StatusReport,
  StreamCheckpoint,
} from './status.ts';
export { getStatus } from './status.ts';
export type { DeadLetter, ResolveOptions, ResolveResult } from './store.ts';
export { countDeadLetters, getDeadLetter, listDeadLetters, resolveDeadLetters } from './store.ts';
