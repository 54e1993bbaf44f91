export type { DuplicateOptions, DuplicateStats, LikelyDuplicate } from './duplicates.ts';
export { findLikelyDuplicates, findLikelyDuplicatesWithStats } from './duplicates.ts';
export type { ErrorExample, EvaluateOptions, EvaluationOrder, EvaluationResult, PairCounts } from './evaluate.ts';
export { evaluateMatching, formatReport } from './evaluate.ts';
export type { LabelledIdentity, LabelledOptions, LabelledPerson, LabelledSet } from './labelled.ts';
export {
  DEFAULT_LABELLED_PEOPLE,
  DEFAULT_LABELLED_SEED,
  generateLabelledSet,
  Rng,
  toIdentityInput,
} from './labelled.ts';
export type { MatchDecision } from './match.ts';
export { decideMatch, matchIdentity } from './match.ts';
export { MemoryIdentityStore } from './memory-store.ts';
export type { DobLevel, FirstNameLevel, LastNameLevel, PreparedName } from './names.ts';
export { foldName, jaroWinkler, prepareName, soundex } from './names.ts';
export type { PreparedIdentity } from './prepare.ts';
export {
  candidateQueryFor,
  identityPhoneE164,
  normalizeEmail,
  normalizeIdentityForStorage,
  prepareIdentity,
} from './prepare.ts';
export type { PatientMerge, ReconcileOptions } from './reconcile.ts';
export { planPatientMerges } from './reconcile.ts';
export type { Conflict, KeyLevel, PairFeatures, PairScore, ScoreOptions } from './score.ts';
export { explain, explainScore, scorePair } from './score.ts';
export type { IdentitySettings } from './settings.ts';
export { DEFAULT_IDENTITY_SETTINGS, readIdentitySettings } from './settings.ts';
