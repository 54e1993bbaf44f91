/**
 * `@routiq/sandbox/identity`: test data for identity matching (dev only) — a deterministic labelled identity set
 * as the three platforms would hand it over, and the offline evaluation of the sdk matcher on it
 * (`routiq patients evaluate`, the quality tests).
 */
export type {
  ErrorExample,
  EvaluateOptions,
  EvaluationOrder,
  EvaluationResult,
  KindQuality,
  PairCounts,
} from './evaluate.ts';
export { evaluateMatching, formatReport } from './evaluate.ts';
export type { LabelledIdentity, LabelledNoise, LabelledOptions, LabelledPerson, LabelledSet } from './labelled.ts';
export {
  DEFAULT_LABELLED_PEOPLE,
  DEFAULT_LABELLED_SEED,
  decorateName,
  generateLabelledSet,
  HELD_OUT_SEED,
  NOISE_KINDS,
  toIdentityInput,
} from './labelled.ts';
