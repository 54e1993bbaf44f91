/**
 * Pairwise identity scoring, shared by the matcher (scored fallback, confidences) and duplicate detection.
 *
 * The score is a log-odds sum turned into 0..1 with the logistic function, in the spirit of Fellegi-Sunter:
 * every agreeing field adds evidence, a missing field adds none, a disagreeing field subtracts. The prior
 * (-7) is set so that one shared key plus a full agreeing name clears the default merge threshold (phone +
 * exact first and last name ≈ 0.97), while a shared key alone (0.05), a key plus a first name only (0.62) or a
 * phone plus an email without any name (0.82) do not. Two kinds of disagreement are not left to arithmetic,
 * because a pile of shared contact details must never outweigh them (a family shares phone, email, surname):
 * - hard conflict: different dates of birth, or clearly different first names → score capped at 0.5;
 * - soft conflict: a date of birth one digit off or day/month swapped, a first name that is only similar
 *   (Jaro-Winkler ≥ 0.88 but not a typo or nickname), different surnames, or two records of the same source
 *   where only one has a date of birth (or neither has, and they share a phone) and the emails are not equal (a platform keeps one record per person,
 *   so a second record with the same name and phone but no DOB is as likely a namesake father/son as a
 *   duplicate) → capped at 0.85, inside the default review band.
 * The matcher never auto-merges a pair with any conflict, whatever the thresholds.
 */
import type { IdentityInput } from '../hooks.ts';
import {
  compareDob,
  compareFirstNames,
  compareLastNames,
  type DobLevel,
  type FirstNameLevel,
  jaroWinkler,
  type LastNameLevel,
  type PreparedName,
  prepareName,
} from './names.ts';
import { type PreparedIdentity, prepareIdentity } from './prepare.ts';

export type KeyLevel = 'equal' | 'different' | 'missing';

export interface PairFeatures {
  firstName: FirstNameLevel;
  /** Jaro-Winkler of the first given names (0 when one is missing). */
  firstNameSimilarity: number;
  lastName: LastNameLevel;
  /** First and last names agree only when one side is read surname-first ("Smith John"). */
  swappedNames: boolean;
  dateOfBirth: DobLevel;
  phone: KeyLevel;
  email: KeyLevel;
  /** One identity names the other in its cross-references, or both name the same third identity. */
  crossRef: boolean;
  sameSource: boolean;
  /** One identity's phone or email was written in the other's conversations (weak: it may be someone else's). */
  messageKey: boolean;
}

export type Conflict = 'none' | 'soft' | 'hard';

export interface PairScore {
  /** 0..1 */
  score: number;
  conflict: Conflict;
  features: PairFeatures;
  /** Machine-readable reasons, e.g. `phone:equal`, `first_name:nickname`, `conflict:date_of_birth`. */
  reasons: string[];
}

export const HARD_CONFLICT_CAP = 0.5;
export const SOFT_CONFLICT_CAP = 0.85;
const PRIOR = -7;

const FIRST_WEIGHT: Record<FirstNameLevel, number> = {
  exact: 3.5,
  nickname: 3,
  typo: 2.5,
  other_token: 2,
  initial: 0.3,
  similar: 0.5,
  different: -6,
  missing: 0,
};
const LAST_WEIGHT: Record<LastNameLevel, number> = {
  exact: 3,
  partial: 2,
  typo: 2.3,
  initial: 0.5,
  similar: 0.5,
  different: -3,
  missing: 0,
};
const DOB_WEIGHT: Record<DobLevel, number> = { equal: 4.5, near: -1, different: -8, missing: 0 };
const PHONE_WEIGHT: Record<KeyLevel, number> = { equal: 4, different: 0, missing: 0 };
const EMAIL_WEIGHT: Record<KeyLevel, number> = { equal: 4.5, different: 0, missing: 0 };
const CROSS_REF_WEIGHT = 8;
const MESSAGE_KEY_WEIGHT = 2;

function messageKeyLinked(a: PreparedIdentity, b: PreparedIdentity): boolean {
  return (
    (b.phoneE164 !== null && a.messagePhones.has(b.phoneE164)) ||
    (a.phoneE164 !== null && b.messagePhones.has(a.phoneE164)) ||
    (b.email !== null && a.messageEmails.has(b.email)) ||
    (a.email !== null && b.messageEmails.has(a.email))
  );
}

/** First-name agreement strong enough to attribute a shared phone or email to this person. */
export function firstNameAgrees(f: PairFeatures): boolean {
  return (
    f.swappedNames ||
    f.firstName === 'exact' ||
    f.firstName === 'nickname' ||
    f.firstName === 'typo' ||
    f.firstName === 'other_token'
  );
}

/** Surname does not contradict (missing or an initial is fine: WhatsApp profiles often carry "Bob" or "Bob S"). */
export function lastNameAllows(f: PairFeatures): boolean {
  return f.swappedNames || (f.lastName !== 'different' && f.lastName !== 'similar');
}

function keyLevel(a: string | null, b: string | null): KeyLevel {
  if (!a || !b) return 'missing';
  return a === b ? 'equal' : 'different';
}

/**
 * Phones compare in E.164; when one side's number could not be read (a UK mobile typed in national format at an
 * Australian clinic), its digits still tell a different number apart (never an equal one: that needs E.164).
 */
function phoneLevel(a: PreparedIdentity, b: PreparedIdentity): KeyLevel {
  const level = keyLevel(a.phoneE164, b.phoneE164);
  if (level !== 'missing') return level;
  const da = a.phoneE164?.slice(-8) ?? a.phoneDigits;
  const db = b.phoneE164?.slice(-8) ?? b.phoneDigits;
  return da && db && da !== db ? 'different' : 'missing';
}

function crossRefLinked(a: PreparedIdentity, b: PreparedIdentity): boolean {
  if (a.crossRefKeys.has(b.key) || b.crossRefKeys.has(a.key)) return true;
  for (const k of a.crossRefKeys) if (b.crossRefKeys.has(k)) return true;
  return false;
}

function logistic(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

const AGREEING_FIRST = new Set<FirstNameLevel>(['exact', 'nickname', 'typo', 'other_token']);
const ACCEPTABLE_LAST = new Set<LastNameLevel>(['exact', 'typo', 'partial', 'initial', 'missing']);

const surnameFirstReadings = new WeakMap<PreparedName, PreparedName | null>();

/**
 * The name read surname-first: last written token as the first name, the others as the surname. Kept per prepared
 * name: every pair whose first names disagree (a family on one phone, each namesake's relatives) asks again.
 */
function surnameFirst(n: PreparedName): PreparedName | null {
  let r = surnameFirstReadings.get(n);
  if (r === undefined) {
    r = n.tokens.length < 2 ? null : prepareName(n.tokens[n.tokens.length - 1], n.tokens.slice(0, -1).join(' '));
    surnameFirstReadings.set(n, r);
  }
  return r;
}

function compareNames(
  a: PreparedName,
  b: PreparedName,
): { first: FirstNameLevel; last: LastNameLevel; swapped: boolean } {
  const first = compareFirstNames(a, b);
  const last = compareLastNames(a, b);
  if (AGREEING_FIRST.has(first) && last !== 'different') return { first, last, swapped: false };
  // A lone first name against a name read surname-first must be that name exactly (or a nickname): "Isla" is
  // "Kelly Isla", but "William" is not "Georgia Williams" read as "Williams Georgia".
  const lone = a.tokens.length < 2 || b.tokens.length < 2;
  for (const [x, y] of [
    [surnameFirst(a), b],
    [a, surnameFirst(b)],
  ] as const) {
    if (!x || !y) continue;
    const f2 = compareFirstNames(x, y);
    const l2 = compareLastNames(x, y);
    if (lone && f2 !== 'exact' && f2 !== 'nickname') continue;
    if (AGREEING_FIRST.has(f2) && ACCEPTABLE_LAST.has(l2)) return { first: f2, last: l2, swapped: true };
  }
  return { first, last, swapped: false };
}

/** Score two prepared identities. */
export function scorePrepared(a: PreparedIdentity, b: PreparedIdentity): PairScore {
  const names = compareNames(a.name, b.name);
  const swappedNames = names.swapped;
  const features: PairFeatures = {
    firstName: names.first,
    firstNameSimilarity:
      a.name.first && b.name.first ? Math.round(jaroWinkler(a.name.first, b.name.first) * 1000) / 1000 : 0,
    lastName: names.last,
    swappedNames,
    dateOfBirth: compareDob(a.dateOfBirth, b.dateOfBirth),
    phone: phoneLevel(a, b),
    email: keyLevel(a.email, b.email),
    crossRef: crossRefLinked(a, b),
    sameSource: a.source === b.source,
    messageKey: messageKeyLinked(a, b),
  };

  let logit =
    PRIOR +
    FIRST_WEIGHT[features.firstName] +
    LAST_WEIGHT[features.lastName] +
    DOB_WEIGHT[features.dateOfBirth] +
    PHONE_WEIGHT[features.phone] +
    EMAIL_WEIGHT[features.email] +
    (features.crossRef ? CROSS_REF_WEIGHT : 0) +
    (features.messageKey ? MESSAGE_KEY_WEIGHT : 0);
  if (swappedNames) logit -= 0.5;

  const reasons: string[] = [];
  if (features.crossRef) reasons.push('cross_ref');
  if (features.email === 'equal') reasons.push('email:equal');
  if (features.phone === 'equal') reasons.push('phone:equal');
  if (features.messageKey) reasons.push('message_evidence');
  if (features.dateOfBirth !== 'missing') reasons.push(`date_of_birth:${features.dateOfBirth}`);
  if (features.firstName !== 'missing') reasons.push(`first_name:${features.firstName}`);
  if (features.lastName !== 'missing') reasons.push(`last_name:${features.lastName}`);
  if (swappedNames) reasons.push('names:swapped');

  let conflict: Conflict = 'none';
  if (features.dateOfBirth === 'different') {
    conflict = 'hard';
    reasons.push('conflict:date_of_birth');
  }
  if (features.firstName === 'different') {
    conflict = 'hard';
    reasons.push('conflict:first_name');
  }
  if (conflict === 'none') {
    const soft: string[] = [];
    if (features.dateOfBirth === 'near') soft.push('conflict:date_of_birth_near');
    if (features.firstName === 'similar') soft.push('conflict:first_name_similar');
    if (features.lastName === 'different') soft.push('conflict:last_name');
    // Two records of one platform that both lack a birth date but share a phone: a father and son of the same
    // name on the home landline look exactly like a duplicate registration. Left for review.
    if (
      features.sameSource &&
      features.dateOfBirth === 'missing' &&
      (a.dateOfBirth || b.dateOfBirth || features.phone === 'equal') &&
      features.email !== 'equal'
    ) {
      soft.push('conflict:same_source');
    }
    if (soft.length > 0) {
      conflict = 'soft';
      reasons.push(...soft);
    }
  }

  let score = logistic(logit);
  if (conflict === 'hard') score = Math.min(score, HARD_CONFLICT_CAP);
  else if (conflict === 'soft') score = Math.min(score, SOFT_CONFLICT_CAP);
  return { score: Math.round(score * 10000) / 10000, conflict, features, reasons };
}

export interface ScoreOptions {
  /** Country for phones without a country code. Without it only `phoneE164`/`+…` numbers are compared. */
  defaultCountry?: string;
}

/** Pure pairwise score of two identities (any platform), 0..1, with the features and reasons behind it. */
export function scorePair(a: IdentityInput, b: IdentityInput, opts: ScoreOptions = {}): PairScore {
  const country = opts.defaultCountry ?? 'ZZ';
  return scorePrepared(prepareIdentity(a, country), prepareIdentity(b, country));
}

const FIRST_TEXT: Record<FirstNameLevel, string> = {
  exact: 'same first name',
  nickname: 'first names are nickname forms of each other',
  typo: 'first names differ by a typo',
  other_token: 'a middle name matches the other first name',
  initial: 'first name matches an initial only',
  similar: 'first names are similar but not the same',
  different: 'first names are different',
  missing: 'first name missing on one side',
};
const LAST_TEXT: Record<LastNameLevel, string> = {
  exact: 'same surname',
  partial: 'surnames share a part (hyphenated or compound)',
  typo: 'surnames differ by a typo',
  initial: 'surname matches an initial only',
  similar: 'surnames are similar but not the same',
  different: 'surnames are different',
  missing: 'surname missing on one side',
};
const DOB_TEXT: Record<DobLevel, string> = {
  equal: 'same date of birth',
  near: 'dates of birth differ by one digit or a day/month swap',
  different: 'different dates of birth',
  missing: 'date of birth missing on one side',
};

/** Human-readable explanation lines for a score, for review screens and logs. */
export function explainScore(s: PairScore): string[] {
  const f = s.features;
  const lines = [`score ${s.score.toFixed(3)}${s.conflict === 'none' ? '' : ` (${s.conflict} conflict)`}`];
  if (f.crossRef) lines.push('one record cross-references the other');
  if (f.email !== 'missing') lines.push(f.email === 'equal' ? 'same email' : 'different emails');
  if (f.phone !== 'missing') lines.push(f.phone === 'equal' ? 'same phone' : 'different phones');
  lines.push(DOB_TEXT[f.dateOfBirth], FIRST_TEXT[f.firstName], LAST_TEXT[f.lastName]);
  if (f.swappedNames) lines.push('first and last names are swapped on one side');
  if (s.reasons.includes('conflict:same_source'))
    lines.push('two records of the same platform without a common date of birth');
  return lines;
}

/** `scorePair` + `explainScore`. */
export function explain(a: IdentityInput, b: IdentityInput, opts: ScoreOptions = {}): string[] {
  return explainScore(scorePair(a, b, opts));
}
