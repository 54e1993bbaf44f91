import type { CandidateQuery, IdentityInput } from '../hooks.ts';
import { isE164, normalizePhone } from '../phone/normalize.ts';
import { normalizeDob, type PreparedName, prepareName } from './names.ts';

/** An identity with every field reduced to the form the matcher compares. */
export interface PreparedIdentity {
  readonly input: IdentityInput;
  /** `source:externalId` */
  readonly key: string;
  readonly source: string;
  readonly name: PreparedName;
  readonly email: string | null;
  readonly phoneE164: string | null;
  readonly dateOfBirth: string | null;
  /** `source:externalId` keys this identity says belong to the same person. */
  readonly crossRefKeys: ReadonlySet<string>;
}

export function identityKey(source: string, externalId: string): string {
  return `${source}:${externalId}`;
}

/** Trimmed and lower-cased, as the candidate query compares emails (`lower(email)`); null when not an email. */
export function normalizeEmail(value: string | null | undefined): string | null {
  if (!value) return null;
  const e = value.trim().toLowerCase();
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e) ? e : null;
}

/**
 * The identity's phone in E.164: a valid `phoneE164` is kept, otherwise `phoneRaw` is normalised with the
 * record's country hint and the organization's default country. Null when neither is a valid number.
 */
export function identityPhoneE164(identity: IdentityInput, defaultCountry: string): string | null {
  if (isE164(identity.phoneE164)) {
    const r = normalizePhone(identity.phoneE164, { defaultCountry });
    if (r.e164) return r.e164;
  }
  const r = normalizePhone(identity.phoneRaw ?? identity.phoneE164, {
    defaultCountry,
    countryHint: identity.countryHint ?? null,
  });
  return r.e164;
}

const cache = new WeakMap<IdentityInput, { defaultCountry: string; prepared: PreparedIdentity }>();

/** Prepare an identity for comparison. Cached per object, so scoring many pairs normalises each identity once. */
export function prepareIdentity(identity: IdentityInput, defaultCountry: string): PreparedIdentity {
  const hit = cache.get(identity);
  if (hit && hit.defaultCountry === defaultCountry) return hit.prepared;
  const prepared: PreparedIdentity = {
    input: identity,
    key: identityKey(identity.source, identity.externalId),
    source: identity.source,
    name: prepareName(identity.firstName, identity.lastName, identity.displayName),
    email: normalizeEmail(identity.email),
    phoneE164: identityPhoneE164(identity, defaultCountry),
    dateOfBirth: normalizeDob(identity.dateOfBirth),
    crossRefKeys: new Set((identity.crossRefs ?? []).map((r) => identityKey(r.source, r.externalId))),
  };
  cache.set(identity, { defaultCountry, prepared });
  return prepared;
}

/**
 * What the engine should store for an identity so that `findCandidates` can find it: `phoneE164` filled in
 * from `phoneRaw` (null when invalid) while `phoneRaw` keeps the value as received.
 */
export function normalizeIdentityForStorage<T extends IdentityInput>(identity: T, defaultCountry: string): T {
  return { ...identity, phoneE164: identityPhoneE164(identity, defaultCountry) };
}

/**
 * The candidate query for an identity. `crossRefs` carries both the identity's own cross-references and its own
 * `(source, externalId)`, so a store that matches "stored key ∈ crossRefs OR stored crossRefs ∩ crossRefs ≠ ∅"
 * also finds the reverse direction (a stored Chatwoot contact that points at this Cliniko patient).
 */
export function candidateQueryFor(identity: IdentityInput, defaultCountry: string): CandidateQuery {
  const p = prepareIdentity(identity, defaultCountry);
  const lastName = identity.lastName?.trim().toLowerCase();
  const query: CandidateQuery = {
    phonesE164: p.phoneE164 ? [p.phoneE164] : [],
    emails: p.email ? [p.email] : [],
    crossRefs: [
      ...(identity.crossRefs ?? []).map((r) => ({ source: r.source, externalId: r.externalId })),
      { source: identity.source, externalId: identity.externalId },
    ],
  };
  if (lastName && p.dateOfBirth) query.lastNameDob = { lastName, dateOfBirth: p.dateOfBirth };
  return query;
}
