/**
 * Offline reconcile job: find patients that should be one.
 *
 * Matching is incremental, so arrival order can split a person: their WhatsApp contact (phone) and their
 * email-channel contact (email) arrive first and become two patients; the Cliniko record that carries both
 * keys arrives later and can only join one of them (`MatchResult` holds a single patient id). Re-running the
 * same rules on every stored identity, now that all identities are known, finds those splits.
 *
 * For each identity, `decideMatch` runs against the stored identities sharing a key with it (itself excluded);
 * the patients it links firmly — its decision plus `bridges` — are links from its own patient. Two patients
 * are merged only when the link goes both ways (an identity of A links B and an identity of B links A): a
 * first-name-only "Mei" that is ambiguous between two clinic records named Mei links neither, even if one of
 * those records, seen from its side, links "Mei". A merge also needs every identity of one patient to be
 * conflict-free (hard or soft) against every identity of the other; groups grow transitively under the same
 * check, so A~B and B~C never pull two different people together through B. Two patients that share no key
 * (phone, email, cross-reference, date of birth: only a name or a number written in a message) are not merged
 * when a third patient with an agreeing full name shares a phone with either (`namesakeAtHome`). The patient
 * with the smallest id of a group keeps the identities.
 *
 * Applying the result needs an engine operation that moves identity links from one patient to another.
 */
import type { CandidateQuery, StoredIdentity } from '../hooks.ts';
import { decideMatch } from './match.ts';
import { MemoryIdentityStore } from './memory-store.ts';
import {
  candidateQueryFor,
  identityKey,
  normalizeIdentityForStorage,
  type PreparedIdentity,
  prepareIdentity,
} from './prepare.ts';
import { firstNameAgrees, type PairFeatures, scorePrepared } from './score.ts';
import { readIdentitySettings } from './settings.ts';

export interface ReconcileOptions {
  defaultCountry: string;
  /** Organization settings (`settings.identity` thresholds), as for `matchIdentity`. */
  settings?: Readonly<Record<string, unknown>>;
  /**
   * Re-match only these identities (`source:externalId`); the others are candidates and patient members only. For a
   * plan over part of an organization: the identities given must then hold every candidate of the ones re-matched
   * and every identity of their patients (the engine's reconcile loads such a neighbourhood of what changed).
   */
  rematch?: ReadonlySet<string>;
  /**
   * The links `planPatientLinks` returned for the same identities and options: the identities are not matched again.
   */
  links?: ReadonlyArray<PatientLink>;
}

/** An identity's patient links another patient firmly (its decision or a bridge); `via` is the identity. */
export interface PatientLink {
  from: string;
  to: string;
  via: string;
}

export interface PatientMerge {
  /** Patient whose identities move. */
  from: string;
  /** Patient that keeps them. */
  into: string;
  /** The identity whose re-match linked the two, as `source:externalId`. */
  via: string;
}

/** Every identity here is stored (or normalised for storage just below). */
const STORED = { stored: true } as const;

/** First name agrees and the surname is the same or one slip away. */
function fullNameAgrees(f: PairFeatures): boolean {
  return firstNameAgrees(f) && (f.swappedNames || f.lastName === 'exact' || f.lastName === 'typo');
}

/** Every identity re-matched (or those in `rematch`): the patients each one links firmly, as "from\u0000to" → via. */
function matchAll(identities: readonly StoredIdentity[], opts: ReconcileOptions) {
  const settings = readIdentitySettings(opts.settings ?? {});
  const store = new MemoryIdentityStore();
  const byPatient = new Map<string, PreparedIdentity[]>();
  // Candidates are looked up by key, not copied out of the store: matching gets the identities themselves, each
  // prepared once (as its patient's member below) rather than again at every appearance as a candidate: in a
  // 100,000-patient practice, with tens of namesakes per identity, re-preparing was most of this plan's time.
  const originals = new Map<string, StoredIdentity>();
  const find = (q: CandidateQuery): StoredIdentity[] => [...store.findKeys(q)].map((k) => originals.get(k)!);
  for (const i of identities) {
    const stored = i.phoneE164 ? i : normalizeIdentityForStorage(i, opts.defaultCountry);
    store.add(stored);
    originals.set(identityKey(stored.source, stored.externalId), stored);
    const list = byPatient.get(i.patientId) ?? [];
    list.push(prepareIdentity(stored, opts.defaultCountry, STORED));
    byPatient.set(i.patientId, list);
  }
  const links = new Map<string, string>(); // "from\u0000to" → via
  if (opts.links) {
    for (const l of opts.links) links.set(`${l.from}\u0000${l.to}`, l.via);
    return { byPatient, find, links };
  }
  for (const [key, identity] of originals) {
    if (opts.rematch && !opts.rematch.has(key)) continue;
    const candidates = find(candidateQueryFor(identity, opts.defaultCountry, STORED)).filter(
      (c) => !(c.source === identity.source && c.externalId === identity.externalId),
    );
    if (candidates.length === 0) continue;
    const d = decideMatch(
      prepareIdentity(identity, opts.defaultCountry, STORED),
      candidates,
      settings,
      opts.defaultCountry,
      {
        uniqueNames: true,
        ownPatientId: identity.patientId,
      },
    );
    const linked = [d.result.patientId, ...d.bridges].filter(
      (p): p is string => p !== null && p !== identity.patientId,
    );
    for (const other of linked) {
      const key = `${identity.patientId}\u0000${other}`;
      if (!links.has(key)) links.set(key, `${identity.source}:${identity.externalId}`);
    }
  }
  return { byPatient, find, links };
}

/**
 * The links the plan starts from: each re-matched identity's own patient → each other patient it links firmly (its
 * decision and bridges), with the identity as `via`. A merge needs a link both ways; the engine uses this to find
 * whose decisions it must also read when it plans around what changed.
 */
export function planPatientLinks(identities: readonly StoredIdentity[], opts: ReconcileOptions): PatientLink[] {
  return [...matchAll(identities, opts).links].map(([k, via]) => {
    const [from, to] = k.split('\u0000') as [string, string];
    return { from, to, via };
  });
}

export function planPatientMerges(identities: readonly StoredIdentity[], opts: ReconcileOptions): PatientMerge[] {
  const { byPatient, find, links } = matchAll(identities, opts);
  const rootOf = new Map<string, string>();
  const members = new Map<string, string[]>();
  const root = (p: string): string => rootOf.get(p) ?? p;
  const compatible = (a: string[], b: string[]): boolean => {
    const ia = a.flatMap((p) => byPatient.get(p) ?? []);
    const ib = b.flatMap((p) => byPatient.get(p) ?? []);
    return ia.every((x) => ib.every((y) => scorePrepared(x, y).conflict === 'none'));
  };
  const merges: PatientMerge[] = [];

  /**
   * A namesake at home: some identity of either patient shares its phone with a third patient whose full name
   * agrees with a name of the two (a son "Jalaan Walencomeb" — a typo keeps him off the name index — on his
   * father's landline). A name alone cannot tell which of them a junk-phone web-chat contact is.
   */
  /** Two patients share a key (phone, email, cross-reference, or a date of birth), not only a name or a message. */
  const shareKey = (a: string[], b: string[]): boolean => {
    const ia = a.flatMap((p) => byPatient.get(p) ?? []);
    const ib = b.flatMap((p) => byPatient.get(p) ?? []);
    return ia.some((x) =>
      ib.some((y) => {
        const f = scorePrepared(x, y).features;
        return f.phone === 'equal' || f.email === 'equal' || f.crossRef || f.dateOfBirth === 'equal';
      }),
    );
  };
  const namesakeAtHome = (a: string[], b: string[]): boolean => {
    const group = new Set([...a, ...b]);
    const mine = [...group].flatMap((p) => byPatient.get(p) ?? []);
    for (const x of mine) {
      if (!x.phoneE164) continue;
      for (const c of find({ phonesE164: [x.phoneE164], emails: [], crossRefs: [] })) {
        if (group.has(c.patientId)) continue;
        const y = prepareIdentity(c, opts.defaultCountry, STORED);
        if (mine.some((m) => fullNameAgrees(scorePrepared(m, y).features))) return true;
      }
    }
    return false;
  };

  const pairs = [...links.keys()]
    .map((k) => k.split('\u0000') as [string, string])
    .filter(([a, b]) => a < b && links.has(`${b}\u0000${a}`))
    .sort(([a1, b1], [a2, b2]) => a1.localeCompare(a2) || b1.localeCompare(b2));
  for (const [a, b] of pairs) {
    const via = links.get(`${a}\u0000${b}`)!;
    const ra = root(a);
    const rb = root(b);
    if (ra === rb) continue;
    const ma = members.get(ra) ?? [ra];
    const mb = members.get(rb) ?? [rb];
    if (!compatible(ma, mb)) continue;
    if (!shareKey(ma, mb) && namesakeAtHome(ma, mb)) continue;
    const [into, from] = ra < rb ? [ra, rb] : [rb, ra];
    const all = [...ma, ...mb];
    for (const p of all) rootOf.set(p, into);
    members.set(into, all);
    members.delete(from);
    for (const p of from === ra ? ma : mb) merges.push({ from: p, into, via });
  }
  return merges.map((m) => ({ ...m, into: root(m.into) }));
}
