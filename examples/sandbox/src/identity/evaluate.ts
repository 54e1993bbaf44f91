/**
 * Offline quality evaluation of `matchIdentity` on the labelled set from `labelled.ts`.
 *
 * Identities arrive one at a time (order: see `EvaluationOrder`) and go through the same steps as in the
 * engine: an existing (source, externalId) link is reused; otherwise `matchIdentity` runs against an in-memory
 * store whose `findCandidates` mirrors the SQL query, the returned patient id (or a fresh one) is assigned,
 * and the identity is stored with its normalised phone. Quality is then measured on pairs of identities:
 * a pair is predicted "same patient" when both got the same patient id and is truly the same when both
 * have the same ground-truth person.
 */
import type { HookLogger, MatchContext, MatchMethod, ReadOnlyDb } from '@routiq/sdk';
import {
  candidateQueryFor,
  decideMatch,
  identityKey,
  MemoryIdentityStore,
  matchIdentity,
  normalizeEmail,
  normalizeIdentityForStorage,
  planPatientMerges,
  prepareIdentity,
  readIdentitySettings,
} from '@routiq/sdk/identity';
import { Rng } from '../common/prng.ts';
import {
  generateLabelledSet,
  type LabelledIdentity,
  type LabelledNoise,
  type LabelledSet,
  NOISE_KINDS,
  toIdentityInput,
} from './labelled.ts';

/**
 * - `shuffled`: every platform interleaved at random, the hardest case;
 * - `backfill`: Cliniko and Chatwoot backfills interleaved, then ManyChat (which cannot be enumerated, so its
 *   subscribers only arrive later through webhooks);
 * - `cliniko_first`: the system of record is synced first, in id order, then the messaging platforms.
 */
export type EvaluationOrder = 'shuffled' | 'backfill' | 'cliniko_first';

export interface EvaluateOptions {
  seed?: number;
  /** Number of true people to generate (default 1000, which yields ≈ 2,100 identities). */
  size?: number;
  /** Organization settings as stored in `organizations.settings`, e.g. `{ identity: { merge_threshold: 0.9 } }`. */
  settings?: Readonly<Record<string, unknown>>;
  /** Arrival order (default `shuffled`). */
  order?: EvaluationOrder;
  /** Which labelled set (default `classic`; `field` adds the noise of issue #21.4). */
  noise?: LabelledNoise;
  /**
   * Simulate the proposed engine extension: when an identity bridges two patients (`MatchDecision.bridges`),
   * merge them. Uses `decideMatch` directly, since `MatchResult` cannot carry the bridges. Default false.
   */
  mergeBridges?: boolean;
  /**
   * After all identities are in, run the reconcile job (`planPatientMerges`: the same rules re-run on every
   * stored identity) and merge what it proposes. Needs no hook-contract change, only an engine operation that
   * moves identity links between patients. Default false.
   */
  reconcile?: boolean;
}

export interface PairCounts {
  truePairs: number;
  predictedPairs: number;
  truePositives: number;
}

/** Quality on the pairs that involve at least one identity carrying a noise kind's tag. */
export interface KindQuality {
  kind: string;
  /** Identities carrying the tag. */
  identities: number;
  truePairs: number;
  predictedPairs: number;
  truePositives: number;
  precision: number;
  recall: number;
  f1: number;
  /** Predicted pairs of two different people. */
  wrongPairs: number;
}

export interface ErrorExample {
  patientId: string;
  identities: string[];
}

export interface EvaluationResult {
  seed: number;
  order: EvaluationOrder;
  noise: LabelledNoise;
  mergeBridges: boolean;
  /** Patient merges performed because an identity bridged two patients (only with `mergeBridges`). */
  bridgeMerges: number;
  reconcile: boolean;
  /** Patient merges applied by the reconcile pass (only with `reconcile`). */
  reconcileMerges: number;
  people: number;
  identities: number;
  identitiesBySource: Record<string, number>;
  patients: number;
  pairs: PairCounts;
  precision: number;
  recall: number;
  f1: number;
  /**
   * Pairs of identities of two different people who share a phone number (household, twins, namesakes,
   * recycled numbers) that were linked to the same patient. Target: 0.
   */
  sharedPhoneWrongMerges: number;
  /** Same, for any two different people of one household (shared phone or shared email). */
  householdWrongMerges: number;
  /**
   * True pairs connected through shared keys (phone, email, cross-ref, surname+DOB) in the ground truth: a
   * rough ceiling for recall (approximate: the matcher also folds accents, which this count does not).
   */
  linkablePairs: number;
  methods: Record<MatchMethod, number>;
  /** Per noise kind (only kinds present in the set). */
  byKind: KindQuality[];
  falseMerges: ErrorExample[];
  missedLinks: Array<{ personId: string; patients: string[]; identities: string[] }>;
  durationMs: number;
  report: string;
}

const silentLogger: HookLogger = { debug() {}, info() {}, warn() {}, error() {} };
const noDb: ReadOnlyDb = {
  query() {
    return Promise.reject(new Error('matchIdentity must only read through findCandidates'));
  },
};

const choose2 = (n: number): number => (n * (n - 1)) / 2;

function describe(l: LabelledIdentity): string {
  const name = l.displayName ?? [l.firstName, l.lastName].filter(Boolean).join(' ');
  const bits = [`${l.source}:${l.externalId}`, l.personId, JSON.stringify(name)];
  if (l.phoneRaw) bits.push(`phone=${JSON.stringify(l.phoneRaw)}`);
  if (l.email) bits.push(`email=${JSON.stringify(l.email)}`);
  if (l.dateOfBirth) bits.push(`dob=${l.dateOfBirth}`);
  if (l.crossRefs?.length) bits.push(`refs=${l.crossRefs.map((r) => `${r.source}:${r.externalId}`).join(',')}`);
  if (l.tags.length) bits.push(`[${l.tags.join(',')}]`);
  return bits.join(' ');
}

/** Union-find over identity indexes. */
class Dsu {
  private readonly parent: number[];
  constructor(n: number) {
    this.parent = Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    let r = i;
    while (this.parent[r] !== r) r = this.parent[r]!;
    while (this.parent[i] !== r) {
      const next = this.parent[i]!;
      this.parent[i] = r;
      i = next;
    }
    return r;
  }
  union(a: number, b: number): void {
    this.parent[this.find(a)] = this.find(b);
  }
}

function linkablePairs(set: LabelledSet): number {
  const ids = set.identities;
  const dsu = new Dsu(ids.length);
  const first = new Map<string, number>();
  const link = (key: string, i: number) => {
    const j = first.get(key);
    if (j === undefined) first.set(key, i);
    else dsu.union(i, j);
  };
  ids.forEach((l, i) => {
    const p = l.personId;
    if (l.truePhoneE164) link(`${p}|p:${l.truePhoneE164}`, i);
    const email = normalizeEmail(l.email);
    if (email) link(`${p}|e:${email}`, i);
    link(`${p}|k:${identityKey(l.source, l.externalId)}`, i);
    for (const r of l.crossRefs ?? []) link(`${p}|k:${identityKey(r.source, r.externalId)}`, i);
    if (l.lastName && l.dateOfBirth) link(`${p}|ld:${l.lastName.trim().toLowerCase()}|${l.dateOfBirth}`, i);
  });
  const sizes = new Map<number, number>();
  ids.forEach((_, i) => {
    const r = dsu.find(i);
    sizes.set(r, (sizes.get(r) ?? 0) + 1);
  });
  let pairs = 0;
  for (const n of sizes.values()) pairs += choose2(n);
  return pairs;
}

export async function evaluateMatching(opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const started = performance.now();
  const noise = opts.noise ?? 'classic';
  const set = generateLabelledSet({
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.size !== undefined ? { people: opts.size } : {}),
    noise,
  });
  const store = new MemoryIdentityStore();
  const ctx: MatchContext = {
    organizationId: 'org_eval',
    connector: 'evaluate',
    logger: silentLogger,
    db: noDb,
    settings: opts.settings ?? {},
    defaultCountry: set.defaultCountry,
    findCandidates: async (q) => store.findCandidates(q),
  };
  const methods: Record<MatchMethod, number> = {
    existing: 0,
    cross_ref: 0,
    phone: 0,
    email: 0,
    evidence: 0,
    scored: 0,
    name: 0,
    new: 0,
  };
  const order = opts.order ?? 'shuffled';
  const mergeBridges = opts.mergeBridges ?? false;
  const ids = arrivalOrder(set, order);
  const knownPatients = new Set<string>();
  const identitySettings = readIdentitySettings(ctx.settings);
  let patientSeq = 0;
  let bridgeMerges = 0;

  for (const labelled of ids) {
    const input = toIdentityInput(labelled);
    const existing = store.get(input.source, input.externalId);
    let patientId: string;
    let bridges: string[] = [];
    if (existing) {
      methods.existing++;
      patientId = existing.patientId;
    } else {
      let r: Awaited<ReturnType<typeof matchIdentity>>;
      if (mergeBridges) {
        const candidates = store.findCandidates(candidateQueryFor(input, set.defaultCountry));
        const d = decideMatch(
          prepareIdentity(input, set.defaultCountry),
          candidates,
          identitySettings,
          set.defaultCountry,
        );
        r = d.result;
        bridges = d.bridges;
      } else {
        r = await matchIdentity(input, ctx);
      }
      methods[r.method]++;
      if (r.patientId !== null && !knownPatients.has(r.patientId)) {
        throw new Error(`matchIdentity returned unknown patient ${r.patientId}`);
      }
      patientId = r.patientId ?? `patient_${++patientSeq}`;
    }
    knownPatients.add(patientId);
    store.add({ ...normalizeIdentityForStorage(input, set.defaultCountry), patientId });
    for (const b of bridges) {
      if (b === patientId || !knownPatients.has(b)) continue;
      store.relink(b, patientId);
      knownPatients.delete(b);
      bridgeMerges++;
    }
  }
  const reconcile = opts.reconcile ?? false;
  let reconcileMerges = 0;
  if (reconcile) {
    for (const m of planPatientMerges(store.all(), { defaultCountry: set.defaultCountry, settings: ctx.settings })) {
      store.relink(m.from, m.into);
      reconcileMerges++;
    }
  }
  const patientOf = ids.map((l) => store.get(l.source, l.externalId)!.patientId);

  // Pairwise counts via the patient × person contingency table.
  const cell = new Map<string, number>();
  const byPatient = new Map<string, number[]>();
  const byPerson = new Map<string, number[]>();
  ids.forEach((l, i) => {
    const patient = patientOf[i]!;
    const k = `${patient}\u0000${l.personId}`;
    cell.set(k, (cell.get(k) ?? 0) + 1);
    byPatient.set(patient, [...(byPatient.get(patient) ?? []), i]);
    byPerson.set(l.personId, [...(byPerson.get(l.personId) ?? []), i]);
  });
  let truePositives = 0;
  for (const n of cell.values()) truePositives += choose2(n);
  let predictedPairs = 0;
  for (const list of byPatient.values()) predictedPairs += choose2(list.length);
  let truePairs = 0;
  for (const list of byPerson.values()) truePairs += choose2(list.length);
  const precision = predictedPairs === 0 ? 1 : truePositives / predictedPairs;
  const recall = truePairs === 0 ? 1 : truePositives / truePairs;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);

  // People who share a phone number, from the ground truth.
  const phoneOwners = new Map<string, Set<string>>();
  for (const l of ids) {
    if (!l.truePhoneE164) continue;
    const s = phoneOwners.get(l.truePhoneE164) ?? new Set<string>();
    s.add(l.personId);
    phoneOwners.set(l.truePhoneE164, s);
  }
  const sharesPhone = new Set<string>();
  for (const owners of phoneOwners.values()) {
    for (const a of owners) for (const b of owners) if (a !== b) sharesPhone.add(`${a}|${b}`);
  }
  let sharedPhoneWrongMerges = 0;
  let householdWrongMerges = 0;
  const falseMerges: ErrorExample[] = [];
  for (const [patientId, list] of byPatient) {
    const persons = new Set(list.map((i) => ids[i]!.personId));
    if (persons.size < 2) continue;
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        const a = ids[list[x]!]!;
        const b = ids[list[y]!]!;
        if (a.personId === b.personId) continue;
        if (sharesPhone.has(`${a.personId}|${b.personId}`)) sharedPhoneWrongMerges++;
        if (a.householdId === b.householdId) householdWrongMerges++;
      }
    }
    falseMerges.push({ patientId, identities: list.map((i) => describe(ids[i]!)) });
  }
  const missedLinks: EvaluationResult['missedLinks'] = [];
  for (const [personId, list] of byPerson) {
    const patients = [...new Set(list.map((i) => patientOf[i]!))];
    if (patients.length > 1) missedLinks.push({ personId, patients, identities: list.map((i) => describe(ids[i]!)) });
  }

  const identitiesBySource: Record<string, number> = {};
  for (const l of ids) identitiesBySource[l.source] = (identitiesBySource[l.source] ?? 0) + 1;
  const linkable = linkablePairs(set);
  const result: Omit<EvaluationResult, 'report'> = {
    seed: set.seed,
    order,
    noise,
    mergeBridges,
    bridgeMerges,
    reconcile,
    reconcileMerges,
    people: set.people.length,
    identities: ids.length,
    identitiesBySource,
    patients: byPatient.size,
    pairs: { truePairs, predictedPairs, truePositives },
    precision,
    recall,
    f1,
    sharedPhoneWrongMerges,
    householdWrongMerges,
    linkablePairs: linkable,
    methods,
    byKind: kindQuality(ids, patientOf),
    falseMerges,
    missedLinks,
    durationMs: Math.round(performance.now() - started),
  };
  return { ...result, report: formatReport(result) };
}

/**
 * Pairwise quality restricted to pairs with at least one tagged identity, for each noise kind: in every group
 * (patient, person, patient × person) the pairs with a tagged member are C(n) − C(n − tagged).
 */
function kindQuality(ids: readonly LabelledIdentity[], patientOf: readonly string[]): KindQuality[] {
  const out: KindQuality[] = [];
  for (const kind of NOISE_KINDS) {
    const groups = {
      patient: new Map<string, [number, number]>(),
      person: new Map<string, [number, number]>(),
      cell: new Map<string, [number, number]>(),
    };
    let tagged = 0;
    ids.forEach((l, i) => {
      const t = l.tags.includes(kind) ? 1 : 0;
      tagged += t;
      const add = (m: Map<string, [number, number]>, k: string) => {
        const g = m.get(k) ?? [0, 0];
        g[0]++;
        g[1] += t;
        m.set(k, g);
      };
      add(groups.patient, patientOf[i]!);
      add(groups.person, l.personId);
      add(groups.cell, `${patientOf[i]}\u0000${l.personId}`);
    });
    if (tagged === 0) continue;
    const pairs = (m: Map<string, [number, number]>) => {
      let n = 0;
      for (const [all, t] of m.values()) n += choose2(all) - choose2(all - t);
      return n;
    };
    const truePairs = pairs(groups.person);
    const predictedPairs = pairs(groups.patient);
    const truePositives = pairs(groups.cell);
    const precision = predictedPairs === 0 ? 1 : truePositives / predictedPairs;
    const recall = truePairs === 0 ? 1 : truePositives / truePairs;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    out.push({
      kind,
      identities: tagged,
      truePairs,
      predictedPairs,
      truePositives,
      precision,
      recall,
      f1,
      wrongPairs: predictedPairs - truePositives,
    });
  }
  return out;
}

function arrivalOrder(set: LabelledSet, order: EvaluationOrder): LabelledIdentity[] {
  if (order === 'shuffled') return set.identities;
  const rng = new Rng(set.seed ^ 0x5f3759df);
  const firstSources = order === 'cliniko_first' ? ['cliniko'] : ['cliniko', 'chatwoot'];
  const first = set.identities.filter((l) => firstSources.includes(l.source));
  const later = set.identities.filter((l) => !firstSources.includes(l.source));
  if (order === 'cliniko_first') {
    // The Cliniko API lists patients by id, so originals come before the duplicates registered later.
    first.sort((a, b) => Number(a.externalId) - Number(b.externalId));
    return [...first, ...rng.shuffle(later)];
  }
  return [...rng.shuffle(first), ...rng.shuffle(later)];
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

export function formatReport(r: Omit<EvaluationResult, 'report'>, examples = 5): string {
  const lines = [
    `identity matching evaluation (seed ${r.seed}, ${r.noise} noise, ${r.order} order${r.mergeBridges ? `, bridge merges ${r.bridgeMerges}` : ''}${r.reconcile ? `, reconcile merges ${r.reconcileMerges}` : ''})`,
    `  people ${r.people}, identities ${r.identities} (${Object.entries(r.identitiesBySource)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}), patients ${r.patients}`,
    `  pairs: true ${r.pairs.truePairs}, predicted ${r.pairs.predictedPairs}, correct ${r.pairs.truePositives}, linkable by keys ${r.linkablePairs}`,
    `  precision ${pct(r.precision)}  recall ${pct(r.recall)}  F1 ${pct(r.f1)}  (true pairs sharing a key: ${pct(r.pairs.truePairs ? r.linkablePairs / r.pairs.truePairs : 1)})`,
    `  wrong merges: shared-phone pairs ${r.sharedPhoneWrongMerges}, same-household pairs ${r.householdWrongMerges}, patients with >1 person ${r.falseMerges.length}`,
    `  methods: ${Object.entries(r.methods)
      .map(([m, n]) => `${m} ${n}`)
      .join(', ')}`,
    `  people split over several patients: ${r.missedLinks.length}`,
    `  ${r.durationMs} ms`,
    '  per noise kind (pairs with at least one identity of the kind):',
    `    ${'kind'.padEnd(24)} ${'identities'.padStart(10)} ${'precision'.padStart(10)} ${'recall'.padStart(9)} ${'F1'.padStart(8)} ${'wrong pairs'.padStart(12)}`,
    ...r.byKind.map(
      (k) =>
        `    ${k.kind.padEnd(24)} ${String(k.identities).padStart(10)} ${pct(k.precision).padStart(10)} ${pct(k.recall).padStart(9)} ${pct(k.f1).padStart(8)} ${String(k.wrongPairs).padStart(12)}`,
    ),
  ];
  if (examples > 0 && r.falseMerges.length > 0) {
    lines.push('  false merges:');
    for (const e of r.falseMerges.slice(0, examples)) {
      lines.push(`    ${e.patientId}`);
      for (const i of e.identities) lines.push(`      ${i}`);
    }
  }
  if (examples > 0 && r.missedLinks.length > 0) {
    lines.push('  missed links:');
    for (const m of r.missedLinks.slice(0, examples)) {
      lines.push(`    ${m.personId} → ${m.patients.join(' ')}`);
      for (const i of m.identities) lines.push(`      ${i}`);
    }
  }
  return lines.join('\n');
}
