/**
 * `identity.match`: decide which unified patient an incoming identity belongs to.
 *
 * The engine has already handled an existing link for the same (source, externalId). From there the rules
 * run in a fixed order and the first that picks exactly one patient wins:
 *  1. cross_ref: a candidate's (source, externalId) is in the incoming crossRefs, the candidate's crossRefs
 *     contain the incoming (source, externalId), or both point at the same third identity. Vetoed by a hard
 *     conflict (different date of birth or clearly different first name): a parent's Chatwoot contact that
 *     carries the child's Cliniko id is the parent, not the child.
 *  2. email: same email (trimmed, case-insensitive) and compatible names.
 *  3. phone: same E.164 and compatible names. Compatible means the first names agree (exact, nickname, typo
 *     or middle name), the surnames do not contradict, and no identity of that patient has a different date
 *     of birth or a clearly different first name. A family sharing one phone therefore never merges: same
 *     phone + different first name or different DOB is a different person. The only name-less link is between
 *     two "owner" sources (Chatwoot, ManyChat: the account holder's own WhatsApp/Messenger number).
 *     A first name alone (no surname) is enough only when the identity holding the phone/email does not
 *     carry a different email (a recycled number now used by another "Nick").
 *  4. scored: best pairwise score ≥ settings.identity.merge_threshold, some name agreement, no conflict at all
 *     (mostly duplicate Cliniko registrations found through surname + date of birth).
 *  5. new: no unique patient. A best score in [review, merge) is left for duplicate detection.
 * When two or more patients qualify at a step: if they are mutually compatible (one person split by arrival
 * order) the best-scoring one is taken and the others are reported as `bridges`; otherwise one is taken only
 * if it scores ≥ merge and every other one scores below review, else the identity is ambiguous and gets a new
 * patient (never a coin toss).
 */
import type { MatchIdentityHook, MatchMethod, MatchResult, StoredIdentity } from '../hooks.ts';
import { candidateQueryFor, type PreparedIdentity, prepareIdentity, prepareStoredCandidate } from './prepare.ts';
import { firstNameAgrees, lastNameAllows, type PairScore, scorePrepared } from './score.ts';
import { type IdentitySettings, readIdentitySettings } from './settings.ts';

export { explain, explainScore, scorePair } from './score.ts';

interface PatientView {
  patientId: string;
  pairs: Array<{ other: PreparedIdentity; s: PairScore }>;
  best: PairScore;
  /** Different DOB, or a clearly different first name that no identity of the patient outweighs. */
  hard: boolean;
  /** DOB one digit off; same-source record without equal DOB; only similar/contradicting names. */
  soft: boolean;
  nameEvidence: boolean;
  /** Name evidence that includes the surname (not just a first name or an initial). */
  fullNameEvidence: boolean;
  crossRefDirect: boolean;
  crossRefShared: boolean;
  /** Some identity of the patient has a different phone, email or date of birth: no merge on names alone. */
  idConflict: boolean;
  /**
   * Some identity of the patient has the same full name and a different email: two namesakes on one family
   * phone (a shared phone does not make them one person).
   */
  emailConflict: boolean;
}

export interface MatchDecision {
  result: MatchResult;
  /** Why, without personal data: rule outcome and patient ids considered. For logs and tests. */
  detail: string;
  /**
   * Other patients this identity links just as firmly (by cross-reference, or email/phone with agreeing
   * names) and that conflict with nothing in the chosen patient: the identity "bridges" two patients that
   * were created separately because their identities arrived before it. `MatchResult` cannot express this,
   * so the engine currently keeps them apart; see the proposed `hooks.ts` change.
   */
  bridges: string[];
}

function view(me: PreparedIdentity, patientId: string, others: PreparedIdentity[]): PatientView {
  const pairs = others.map((other) => ({ other, s: scorePrepared(me, other) }));
  let best = pairs[0]!.s;
  for (const p of pairs) if (p.s.score > best.score) best = p.s;
  const nameEvidence = pairs.some((p) => firstNameAgrees(p.s.features) && lastNameAllows(p.s.features));
  const dobDifferent = pairs.some((p) => p.s.features.dateOfBirth === 'different');
  const dobNear = pairs.some((p) => p.s.features.dateOfBirth === 'near');
  const firstClash = pairs.some((p) => p.s.features.firstName === 'different' && !p.s.features.swappedNames);
  const nameSoft = pairs.some(
    (p) =>
      p.s.features.firstName === 'similar' || (p.s.features.lastName === 'different' && !p.s.features.swappedNames),
  );
  const sameSource = pairs.some((p) => p.s.reasons.includes('conflict:same_source'));
  return {
    patientId,
    pairs,
    best,
    hard: dobDifferent || (firstClash && !nameEvidence),
    soft: dobNear || sameSource || (nameSoft && !nameEvidence),
    nameEvidence,
    fullNameEvidence: pairs.some(
      (p) =>
        firstNameAgrees(p.s.features) &&
        (p.s.features.swappedNames || ['exact', 'typo', 'partial'].includes(p.s.features.lastName)),
    ),
    crossRefDirect: pairs.some((p) => me.crossRefKeys.has(p.other.key) || p.other.crossRefKeys.has(me.key)),
    crossRefShared: pairs.some((p) => p.s.features.crossRef),
    idConflict: pairs.some(
      (p) =>
        p.s.features.phone === 'different' ||
        p.s.features.email === 'different' ||
        p.s.features.dateOfBirth === 'different' ||
        p.s.features.dateOfBirth === 'near',
    ),
    emailConflict: pairs.some(
      (p) =>
        p.s.features.email === 'different' &&
        p.s.features.lastName === 'exact' &&
        firstNameAgrees(p.s.features) &&
        me.emailNamesOwner &&
        p.other.emailNamesOwner,
    ),
  };
}

function keyCompatible(
  me: PreparedIdentity,
  v: PatientView,
  key: 'email' | 'phone',
  owners: ReadonlySet<string>,
): 'names' | 'owner' | null {
  if (v.hard || v.soft) return null;
  if (key === 'phone' && v.emailConflict) return null;
  const keyPairs = v.pairs.filter((p) => p.s.features[key] === 'equal');
  if (keyPairs.length === 0) return null;
  if (v.fullNameEvidence) return 'names';
  // A first name alone ("Nick", "Mia S") is weak evidence: it must come with an identity that holds the key and
  // whose email does not contradict the incoming one (a recycled number now used by another Nick).
  if (
    v.nameEvidence &&
    keyPairs.some(
      (p) => firstNameAgrees(p.s.features) && lastNameAllows(p.s.features) && p.s.features.email !== 'different',
    )
  ) {
    return 'names';
  }
  if (!owners.has(me.source)) return null;
  const ownerPair = keyPairs.some(
    (p) => owners.has(p.other.source) && (p.s.features.firstName === 'missing' || firstNameAgrees(p.s.features)),
  );
  return ownerPair ? 'owner' : null;
}

/** No identity of one patient conflicts (hard or soft) with an identity of the other. */
function compatiblePatients(a: PatientView, b: PatientView): boolean {
  return a.pairs.every((x) => b.pairs.every((y) => scorePrepared(x.other, y.other).conflict === 'none'));
}

/**
 * One patient among those that qualify at a rule, or 'ambiguous'. Several qualify either because one person
 * was split earlier (their identities arrived with no key in common) or because two people fit (a father and
 * son with the same name on a shared landline). The first case is told apart by the patients being mutually
 * compatible: then the best-scoring one is taken (the others are reported as bridges). Otherwise a patient is
 * taken only if it scores ≥ merge and every other one scores below review.
 */
function pickOne(views: PatientView[], settings: IdentitySettings): PatientView | null | 'ambiguous' {
  if (views.length === 0) return null;
  if (views.length === 1) return views[0]!;
  const sorted = [...views].sort((a, b) => b.best.score - a.best.score || a.patientId.localeCompare(b.patientId));
  const [top, second] = sorted;
  if (!top || !second) return 'ambiguous';
  if (top.best.score >= settings.mergeThreshold && second.best.score < settings.reviewThreshold) return top;
  if (sorted.every((v, i) => sorted.slice(i + 1).every((w) => compatiblePatients(v, w)))) return top;
  return 'ambiguous';
}

/**
 * The patient holding this identity's full name (`nameKey`, folded, nickname-canonical) when no other
 * patient among the candidates holds it (or the others are the same person split, see below) — the candidate query returns every identity with the key, so that is
 * the organization — with the same first name (or a nickname) and surname, and no conflict: no different phone,
 * email or date of birth, no clashing name. A web-chat contact "Sarah Jones 🌸" with a junk phone finds the
 * clinic's only Sarah Jones; two Sarah Joneses, or one with another phone, are left for review.
 */
function uniqueName(me: PreparedIdentity, views: PatientView[]): PatientView[] {
  if (!me.nameKey) return [];
  const holders = views.filter((v) => v.pairs.some((p) => p.other.nameKey === me.nameKey));
  if (holders.length === 0) return [];
  // Several holders may be one person split by arrival order (a WhatsApp contact, an email-channel contact):
  // they count as one only when no two of their identities conflict or carry different phones, emails or dates
  // of birth. Otherwise the name is not unique.
  if (holders.length > 1 && !holders.every((v, i) => holders.slice(i + 1).every((w) => cleanlyCompatible(v, w))))
    return [];
  const ok = holders.filter(
    (v) =>
      !v.hard &&
      !v.soft &&
      !v.idConflict &&
      v.pairs.some(
        (p) =>
          p.other.nameKey === me.nameKey &&
          !p.s.features.swappedNames &&
          (p.s.features.firstName === 'exact' || p.s.features.firstName === 'nickname') &&
          p.s.features.lastName === 'exact' &&
          p.s.conflict === 'none',
      ),
  );
  if (ok.length !== holders.length) return [];
  return ok.sort((a, b) => b.best.score - a.best.score || a.patientId.localeCompare(b.patientId));
}

/** No conflict and no different phone, email or date of birth between any identity of one and of the other. */
function cleanlyCompatible(a: PatientView, b: PatientView): boolean {
  return a.pairs.every((x) =>
    b.pairs.every((y) => {
      const s = scorePrepared(x.other, y.other);
      return (
        s.conflict === 'none' &&
        s.features.phone !== 'different' &&
        s.features.email !== 'different' &&
        s.features.dateOfBirth !== 'different'
      );
    }),
  );
}

/**
 * Another candidate patient, not one person with `v`, holds this identity's full name: a phone or email written
 * in a message cannot tell the namesakes apart (a son writing his father's number).
 */
function namesakeElsewhere(me: PreparedIdentity, v: PatientView, views: readonly PatientView[]): boolean {
  if (!me.nameKey) return false;
  return views.some((w) => w !== v && w.pairs.some((p) => p.other.nameKey === me.nameKey) && !compatiblePatients(w, v));
}

function result(patientId: string | null, method: MatchMethod, confidence: number): MatchResult {
  return { patientId, method, confidence: Math.round(Math.min(1, Math.max(0, confidence)) * 1000) / 1000 };
}

/**
 * The pure decision behind `matchIdentity`: the incoming identity against the candidates `findCandidates`
 * returned. Exposed for tests and for offline evaluation.
 */
export interface DecideOptions {
  /**
   * Apply rules 3b (a phone or email written in a message) and 4b (a full name unique in the organization). Off
   * when an identity arrives: the namesake who makes the name non-unique (a son on the family landline) may
   * simply not have arrived yet, and an arrival merge cannot be taken back automatically. On in the reconcile
   * pass, which sees every stored identity.
   */
  uniqueNames?: boolean;
  /** The patient the identity is linked to now (reconcile): its own identities do not make a name non-unique. */
  ownPatientId?: string;
}

export function decideMatch(
  identity: PreparedIdentity,
  candidates: readonly StoredIdentity[],
  settings: IdentitySettings,
  defaultCountry: string,
  opts: DecideOptions = {},
): MatchDecision {
  const byPatient = new Map<string, PreparedIdentity[]>();
  for (const c of candidates) {
    if (c.source === identity.input.source && c.externalId === identity.input.externalId) continue;
    const list = byPatient.get(c.patientId) ?? [];
    list.push(prepareStoredCandidate(c, defaultCountry));
    byPatient.set(c.patientId, list);
  }
  const views = [...byPatient].map(([patientId, others]) => view(identity, patientId, others));
  const owners = new Set(settings.ownerSources);
  const ambiguous: string[] = [];
  const scoredOk = (v: PatientView): boolean =>
    !v.hard &&
    !v.soft &&
    !v.idConflict &&
    v.nameEvidence &&
    v.best.conflict === 'none' &&
    v.best.score >= settings.mergeThreshold;
  const named = opts.uniqueNames
    ? uniqueName(
        identity,
        views.filter((v) => v.patientId !== opts.ownPatientId),
      )
    : [];
  const n = named[0] ?? null;
  const byMessageOk = (v: PatientView): boolean =>
    opts.uniqueNames === true &&
    !v.hard &&
    !v.soft &&
    !v.idConflict &&
    v.pairs.some((p) => p.s.features.messageKey && firstNameAgrees(p.s.features) && lastNameAllows(p.s.features)) &&
    !namesakeElsewhere(identity, v, views);
  const firmlyLinked = (v: PatientView): boolean =>
    named.includes(v) ||
    byMessageOk(v) ||
    ((v.crossRefDirect || v.crossRefShared) && !v.hard) ||
    scoredOk(v) ||
    keyCompatible(identity, v, 'email', owners) !== null ||
    keyCompatible(identity, v, 'phone', owners) !== null;
  const decided = (chosen: PatientView, method: MatchMethod, confidence: number, detail: string): MatchDecision => {
    const bridges = views
      .filter((v) => v !== chosen && firmlyLinked(v))
      .filter((v) => compatiblePatients(v, chosen))
      .map((v) => v.patientId);
    return {
      result: result(chosen.patientId, method, confidence),
      detail: bridges.length > 0 ? `${detail} (bridges ${bridges.join(' ')})` : detail,
      bridges,
    };
  };

  // 1. cross-reference
  const crossRefs = views.filter((v) => (v.crossRefDirect || v.crossRefShared) && !v.hard);
  const direct = crossRefs.filter((v) => v.crossRefDirect);
  const xr = pickOne(direct.length > 0 ? direct : crossRefs, settings);
  if (xr && xr !== 'ambiguous') {
    return decided(xr, 'cross_ref', Math.max(0.99, xr.best.score), `cross_ref → ${xr.patientId}`);
  }
  if (xr === 'ambiguous') ambiguous.push('cross_ref');
  const vetoed = views.filter((v) => (v.crossRefDirect || v.crossRefShared) && v.hard).length;

  // 2. email, 3. phone
  for (const [key, method] of [
    ['email', 'email'],
    ['phone', 'phone'],
  ] as const) {
    const qualified = views.filter((v) => keyCompatible(identity, v, key, owners) !== null);
    const picked = pickOne(qualified, settings);
    if (picked && picked !== 'ambiguous') {
      const how = keyCompatible(identity, picked, key, owners);
      const confidence = how === 'owner' ? Math.max(0.8, picked.best.score) : Math.max(0.9, picked.best.score);
      return decided(picked, method, confidence, `${method} (${how}) → ${picked.patientId}`);
    }
    if (picked === 'ambiguous') ambiguous.push(method);
  }

  // 3b. a phone or email the contact wrote in a conversation, with agreeing names (reconcile only, like 4b: it may
  // be a household member's number — "call my dad on …" — and a namesake son may not have arrived yet)
  const byMessage = views.filter(byMessageOk);
  const m = pickOne(byMessage, settings);
  if (m && m !== 'ambiguous') {
    return decided(m, 'evidence', Math.max(0.85, m.best.score), `message evidence → ${m.patientId}`);
  }
  if (m === 'ambiguous') ambiguous.push('evidence');

  // 4. scored fallback
  const scored = views.filter(scoredOk);
  const s = pickOne(scored, settings);
  if (s && s !== 'ambiguous') {
    return decided(s, 'scored', s.best.score, `scored ${s.best.score} → ${s.patientId}`);
  }
  if (s === 'ambiguous') ambiguous.push('scored');

  // 4b. a full name that is unique in the organization, and nothing that contradicts it
  if (n) return decided(n, 'name', 0.9, `unique name → ${n.patientId}`);

  // 5. new patient
  const open = views.filter((v) => !v.hard);
  const bestOpen = open.reduce((m, v) => Math.max(m, v.best.score), 0);
  const review = open.filter((v) => v.best.score >= settings.reviewThreshold).map((v) => v.patientId);
  const notes = [
    `new (${views.length} candidate patients`,
    vetoed > 0 ? `, ${vetoed} cross_ref vetoed` : '',
    ambiguous.length > 0 ? `, ambiguous at ${ambiguous.join('/')}` : '',
    review.length > 0 ? `, review: ${review.join(' ')}` : '',
    ')',
  ];
  return { result: result(null, 'new', 1 - bestOpen), detail: notes.join(''), bridges: [] };
}

/** The `match_identity` hook (registered as `identity.match`). Reads only through `ctx.findCandidates`. */
export const matchIdentity: MatchIdentityHook = async (identity, ctx) => {
  const settings = readIdentitySettings(ctx.settings, ctx.logger);
  const me = prepareIdentity(identity, ctx.defaultCountry);
  const query = candidateQueryFor(identity, ctx.defaultCountry);
  const candidates = await ctx.findCandidates(query);
  const decision = decideMatch(me, candidates, settings, ctx.defaultCountry);
  ctx.logger.debug(
    {
      source: identity.source,
      externalId: identity.externalId,
      method: decision.result.method,
      detail: decision.detail,
    },
    'identity matched',
  );
  return decision.result;
};
