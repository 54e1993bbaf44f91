/**
 * `@routiq/sdk/identity`: patient matching, name and contact normalisation, duplicate scoring and the reconcile
 * plan — what the runner's identity operations and the dev-only evaluation harness (`@routiq/datagen`) build on.
 */
export type { DuplicateOptions, DuplicateStats, LikelyDuplicate } from './duplicates.ts';
export { findLikelyDuplicates, findLikelyDuplicatesWithStats } from './duplicates.ts';
export type { DecideOptions, MatchDecision } from './match.ts';
export { decideMatch, matchIdentity } from './match.ts';
export { MemoryIdentityStore } from './memory-store.ts';
export type { DobLevel, FirstNameLevel, LastNameLevel, PreparedName } from './names.ts';
export {
  cleanDisplayName,
  damerauLevenshtein,
  foldName,
  jaroWinkler,
  nameKeyOf,
  prepareName,
  soundex,
} from './names.ts';
export type { PreparedIdentity } from './prepare.ts';
export {
  candidateQueryFor,
  evidenceForStorage,
  identityKey,
  identityNameKey,
  identityPhoneE164,
  inboxPhoneE164,
  normalizeEmail,
  normalizeIdentityForStorage,
  prepareIdentity,
} from './prepare.ts';
export type { PatientLink, PatientMerge, ReconcileOptions } from './reconcile.ts';
export { planPatientLinks, planPatientMerges } from './reconcile.ts';
export type { Conflict, KeyLevel, PairFeatures, PairScore, ScoreOptions } from './score.ts';
export { explain, explainScore, scorePair } from './score.ts';
export type { IdentitySettings } from './settings.ts';
export { DEFAULT_IDENTITY_SETTINGS, readIdentitySettings } from './settings.ts';
