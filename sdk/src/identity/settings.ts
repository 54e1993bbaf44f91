import type { HookLogger } from '../hooks.ts';

export interface IdentitySettings {
  /** Scored matches at or above this link to the existing patient. */
  mergeThreshold: number;
  /** Scored matches in [review, merge) create a new patient and are reported by duplicate detection. */
  reviewThreshold: number;
  /**
   * Sources whose phone and email belong to the person holding the account (a WhatsApp number, a Messenger
   * login), unlike a clinic record where a parent's phone is entered for a child. Two identities from these
   * sources that share a phone or email are linked even when one has no name.
   */
  ownerSources: readonly string[];
}

export const DEFAULT_IDENTITY_SETTINGS: Readonly<IdentitySettings> = Object.freeze({
  mergeThreshold: 0.9,
  reviewThreshold: 0.75,
  ownerSources: Object.freeze(['chatwoot', 'manychat']),
});

function unit(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 1 ? value : undefined;
}

/**
 * Read `organizations.settings.identity`:
 * `{ merge_threshold?: number, review_threshold?: number, owner_sources?: string[] }`.
 * Out-of-range values fall back to the defaults with a warning; review is clamped to at most merge.
 */
export function readIdentitySettings(
  settings: Readonly<Record<string, unknown>>,
  logger?: HookLogger,
): IdentitySettings {
  const raw = settings.identity;
  if (raw === undefined || raw === null) return { ...DEFAULT_IDENTITY_SETTINGS };
  if (typeof raw !== 'object') {
    logger?.warn({ identity: raw }, 'settings.identity is not an object; using defaults');
    return { ...DEFAULT_IDENTITY_SETTINGS };
  }
  const s = raw as Record<string, unknown>;
  const merge = unit(s.merge_threshold);
  const review = unit(s.review_threshold);
  if (s.merge_threshold !== undefined && merge === undefined) {
    logger?.warn({ merge_threshold: s.merge_threshold }, 'settings.identity.merge_threshold must be in (0, 1]');
  }
  if (s.review_threshold !== undefined && review === undefined) {
    logger?.warn({ review_threshold: s.review_threshold }, 'settings.identity.review_threshold must be in (0, 1]');
  }
  const mergeThreshold = merge ?? DEFAULT_IDENTITY_SETTINGS.mergeThreshold;
  let reviewThreshold = review ?? DEFAULT_IDENTITY_SETTINGS.reviewThreshold;
  if (reviewThreshold > mergeThreshold) {
    logger?.warn(
      { reviewThreshold, mergeThreshold },
      'settings.identity.review_threshold above merge_threshold; clamped',
    );
    reviewThreshold = mergeThreshold;
  }
  const owner = s.owner_sources;
  const ownerSources =
    Array.isArray(owner) && owner.every((x) => typeof x === 'string')
      ? (owner as string[])
      : DEFAULT_IDENTITY_SETTINGS.ownerSources;
  return { mergeThreshold, reviewThreshold, ownerSources };
}
