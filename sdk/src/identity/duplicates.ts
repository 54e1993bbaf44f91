/**
 * Likely-duplicate patients for human review.
 *
 * Identities are compared only inside blocks that share a key, never all against all:
 *   phone E.164 · email · cross-reference target · folded surname + date of birth ·
 *   Soundex(surname) + nickname-canonical first name (sound-alike names: Smith/Smyth, Bob/Robert).
 * Blocks larger than `maxBlockSize` (a clinic landline on hundreds of records, "Nguyen" + "minh") are skipped
 * and counted, so one hot key cannot make the pass quadratic. For every pair of different patients the best
 * identity pair is kept.
 */
import type { StoredIdentity } from '../hooks.ts';
import { canonicalFirstName, soundex } from './names.ts';
import { type PreparedIdentity, prepareIdentity } from './prepare.ts';
import { explainScore, type PairScore, scorePrepared } from './score.ts';
import { DEFAULT_IDENTITY_SETTINGS } from './settings.ts';

export interface DuplicateOptions {
  /** Organization default country, to normalise phones stored without E.164. */
  defaultCountry: string;
  /** Lower bound of the review band (default 0.75, as `settings.identity.review_threshold`). */
  reviewThreshold?: number;
  /** Upper bound of the review band (default 0.9, as `settings.identity.merge_threshold`). */
  mergeThreshold?: number;
  /**
   * Also report unlinked pairs scoring at or above the merge threshold. They exist when an identity arrived
   * after two patients were created separately (it could only join one), or when a rule refused an
   * ambiguous merge. Default true: those are the likeliest duplicates of all.
   */
  includeAboveMerge?: boolean;
  /** Blocks with more identities than this are skipped (default 50). */
  maxBlockSize?: number;
}

export interface LikelyDuplicate {
  /** Sorted, so a pair is reported once. */
  patientIds: [string, string];
  score: number;
  band: 'review' | 'above_merge';
  /** Machine-readable reasons from `scorePair`. */
  reasons: string[];
  /** Human-readable explanation. */
  explanation: string[];
  /** The identity pair that scored best, one per patient in `patientIds` order. */
  identities: [{ source: string; externalId: string }, { source: string; externalId: string }];
}

export interface DuplicateStats {
  identities: number;
  blocks: number;
  skippedBlocks: number;
  comparisons: number;
}

function blockKeys(p: PreparedIdentity): string[] {
  const keys: string[] = [];
  if (p.phoneE164) keys.push(`p:${p.phoneE164}`);
  if (p.email) keys.push(`e:${p.email}`);
  keys.push(`x:${p.key}`);
  for (const k of p.crossRefKeys) keys.push(`x:${k}`);
  const last = p.name.lastTokens.join('');
  if (last && p.dateOfBirth) keys.push(`ld:${last}|${p.dateOfBirth}`);
  if (last && p.name.first) keys.push(`sx:${soundex(last)}|${canonicalFirstName(p.name.first)}`);
  return keys;
}

/** Pairs of patients whose identities score in the review band (and above, see `includeAboveMerge`). */
export function findLikelyDuplicates(identities: readonly StoredIdentity[], opts: DuplicateOptions): LikelyDuplicate[] {
  return findLikelyDuplicatesWithStats(identities, opts).duplicates;
}

export function findLikelyDuplicatesWithStats(
  identities: readonly StoredIdentity[],
  opts: DuplicateOptions,
): { duplicates: LikelyDuplicate[]; stats: DuplicateStats } {
  const review = opts.reviewThreshold ?? DEFAULT_IDENTITY_SETTINGS.reviewThreshold;
  const merge = opts.mergeThreshold ?? DEFAULT_IDENTITY_SETTINGS.mergeThreshold;
  const includeAboveMerge = opts.includeAboveMerge ?? true;
  const maxBlockSize = opts.maxBlockSize ?? 50;

  const prepared = identities.map((i) => prepareIdentity(i, opts.defaultCountry));
  const blocks = new Map<string, number[]>();
  prepared.forEach((p, i) => {
    for (const k of blockKeys(p)) {
      const list = blocks.get(k);
      if (list) list.push(i);
      else blocks.set(k, [i]);
    }
  });

  const seen = new Set<string>();
  const best = new Map<string, { score: PairScore; a: number; b: number }>();
  const stats: DuplicateStats = { identities: identities.length, blocks: 0, skippedBlocks: 0, comparisons: 0 };
  for (const list of blocks.values()) {
    if (list.length < 2) continue;
    if (list.length > maxBlockSize) {
      stats.skippedBlocks++;
      continue;
    }
    stats.blocks++;
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        const i = list[x]!;
        const j = list[y]!;
        const pi = identities[i]!.patientId;
        const pj = identities[j]!.patientId;
        if (pi === pj) continue;
        const pairKey = i < j ? `${i}|${j}` : `${j}|${i}`;
        if (seen.has(pairKey)) continue;
        seen.add(pairKey);
        stats.comparisons++;
        const s = scorePrepared(prepared[i]!, prepared[j]!);
        if (s.score < review) continue;
        const [a, b] = pi < pj ? [i, j] : [j, i];
        const patientKey = `${identities[a]!.patientId}\u0000${identities[b]!.patientId}`;
        const current = best.get(patientKey);
        if (!current || s.score > current.score.score) best.set(patientKey, { score: s, a, b });
      }
    }
  }

  const duplicates: LikelyDuplicate[] = [];
  for (const { score, a, b } of best.values()) {
    const above = score.score >= merge;
    if (above && !includeAboveMerge) continue;
    const ia = identities[a]!;
    const ib = identities[b]!;
    duplicates.push({
      patientIds: [ia.patientId, ib.patientId],
      score: score.score,
      band: above ? 'above_merge' : 'review',
      reasons: score.reasons,
      explanation: explainScore(score),
      identities: [
        { source: ia.source, externalId: ia.externalId },
        { source: ib.source, externalId: ib.externalId },
      ],
    });
  }
  duplicates.sort(
    (x, y) =>
      y.score - x.score ||
      x.patientIds[0].localeCompare(y.patientIds[0]) ||
      x.patientIds[1].localeCompare(y.patientIds[1]),
  );
  return { duplicates, stats };
}
