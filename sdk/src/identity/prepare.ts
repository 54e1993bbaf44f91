import { BoundedMemo } from '../bounded-memo.ts';
import type { CandidateQuery, IdentityEvidence, IdentityInput } from '../hooks.ts';
import { isE164, normalizePhone } from '../phone/normalize.ts';
import { nameKeyOf, normalizeDob, type PreparedName, prepareName } from './names.ts';

/** An identity with every field reduced to the form the matcher compares. */
export interface PreparedIdentity {
  readonly input: IdentityInput;
  /** `source:externalId` */
  readonly key: string;
  readonly source: string;
  readonly name: PreparedName;
  readonly email: string | null;
  readonly phoneE164: string | null;
  /** The last 8 digits of a phone field that has at least 8 (junk such as `12345` has none), for `phoneLevel`. */
  readonly phoneDigits: string | null;
  readonly dateOfBirth: string | null;
  /** `source:externalId` keys this identity says belong to the same person. */
  readonly crossRefKeys: ReadonlySet<string>;
  /** Same full name whatever the decoration, accents or nickname (`nameKeyOf`); null without a full name. */
  readonly nameKey: string | null;
  /** Phones (E.164) and emails the contact wrote in conversations: candidates only, never a link by themselves. */
  readonly messagePhones: ReadonlySet<string>;
  readonly messageEmails: ReadonlySet<string>;
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
  return r.e164 ?? inboxPhoneE164(identity, defaultCountry);
}

/**
 * The number of the contact's own channel (a WhatsApp contact inbox's `source_id`, digits without `+`), used
 * when the record's phone field is empty or junk: it is the contact's own number, as good as the field.
 */
export function inboxPhoneE164(identity: IdentityInput, defaultCountry: string): string | null {
  for (const e of identity.evidence ?? []) {
    if (e.kind !== 'phone' || e.origin !== 'inbox') continue;
    const digits = e.value.trim();
    const r = normalizePhone(/^\d{8,15}$/.test(digits) ? `+${digits}` : digits, { defaultCountry });
    if (r.e164) return r.e164;
  }
  return null;
}

/** Phones and emails written in conversations, normalised (invalid ones dropped). */
export function messageEvidence(
  identity: IdentityInput,
  defaultCountry: string,
): { phones: Set<string>; emails: Set<string> } {
  const phones = new Set<string>();
  const emails = new Set<string>();
  for (const e of identity.evidence ?? []) {
    if (e.origin !== 'message') continue;
    if (e.kind === 'email') {
      const m = normalizeEmail(e.value);
      if (m) emails.add(m);
    } else {
      const r = normalizePhone(e.value, { defaultCountry });
      if (r.e164) phones.add(r.e164);
    }
  }
  return { phones, emails };
}

function phoneDigits(value: string | null | undefined): string | null {
  const digits = (value ?? '').replace(/\D/g, '');
  // A run of one digit (0000000000) is a placeholder, not a number.
  return digits.length >= 8 && !/^(\d)\1+$/.test(digits) ? digits.slice(-8) : null;
}

const cache = new WeakMap<IdentityInput, { defaultCountry: string; prepared: PreparedIdentity }>();

/**
 * Prepared forms by content (`contentKey`), without `input`. The per-object cache above misses on every read of a
 * stored identity: the page store and SQL hand out fresh copies, so the same few candidates (the contact of each
 * conversation in a webhook batch, a clinic record that shares a phone with a page) were prepared again for every
 * identity matched against them. Bounded (BoundedMemo), like the phone and name memos.
 */
const byContent = new BoundedMemo<string, Omit<PreparedIdentity, 'input'>>(10_000);

/** Every field `prepareIdentity` reads, and the country: equal keys give equal prepared forms. */
function contentKey(i: IdentityInput, defaultCountry: string): string {
  // JSON keeps null apart from "" (`phoneRaw ?? phoneE164` tells them apart) and cannot run two fields together.
  return JSON.stringify([
    defaultCountry,
    i.source,
    i.externalId,
    i.firstName ?? null,
    i.lastName ?? null,
    i.displayName ?? null,
    i.email ?? null,
    i.phoneRaw ?? null,
    i.phoneE164 ?? null,
    i.dateOfBirth ?? null,
    i.countryHint ?? null,
    i.crossRefs?.map((r) => [r.source, r.externalId]) ?? null,
    i.evidence?.map((e) => [e.kind, e.origin, e.value]) ?? null,
  ]);
}

/**
 * Prepare an identity for comparison. Cached per object, so scoring many pairs normalises each identity once, and
 * by content, so a copy of an identity prepared before (a candidate read again) is not normalised again.
 */
export function prepareIdentity(identity: IdentityInput, defaultCountry: string): PreparedIdentity {
  const hit = cache.get(identity);
  if (hit && hit.defaultCountry === defaultCountry) return hit.prepared;
  const key = contentKey(identity, defaultCountry);
  let parts = byContent.get(key);
  if (!parts) {
    parts = prepareParts(identity, defaultCountry);
    byContent.set(key, parts);
  }
  const prepared = withInput(parts, identity);
  cache.set(identity, { defaultCountry, prepared });
  return prepared;
}

/** A literal, not a spread: a spread copy of the prepared fields cost more than the content-key lookup. */
function withInput(p: Omit<PreparedIdentity, 'input'>, input: IdentityInput): PreparedIdentity {
  return {
    input,
    key: p.key,
    source: p.source,
    name: p.name,
    nameKey: p.nameKey,
    messagePhones: p.messagePhones,
    messageEmails: p.messageEmails,
    email: p.email,
    phoneE164: p.phoneE164,
    phoneDigits: p.phoneDigits,
    dateOfBirth: p.dateOfBirth,
    crossRefKeys: p.crossRefKeys,
  };
}

function prepareParts(identity: IdentityInput, defaultCountry: string): Omit<PreparedIdentity, 'input'> {
  const name = prepareName(identity.firstName, identity.lastName, identity.displayName);
  const message = messageEvidence(identity, defaultCountry);
  return {
    key: identityKey(identity.source, identity.externalId),
    source: identity.source,
    name,
    nameKey: nameKeyOf(name),
    messagePhones: message.phones,
    messageEmails: message.emails,
    email: normalizeEmail(identity.email),
    phoneE164: identityPhoneE164(identity, defaultCountry),
    phoneDigits: phoneDigits(identity.phoneRaw ?? identity.phoneE164),
    dateOfBirth: normalizeDob(identity.dateOfBirth),
    crossRefKeys: new Set((identity.crossRefs ?? []).map((r) => identityKey(r.source, r.externalId))),
  };
}

/**
 * What the engine should store for an identity so that `findCandidates` can find it: `phoneE164` filled in
 * from `phoneRaw` (null when invalid) while `phoneRaw` keeps the value as received.
 */
export function normalizeIdentityForStorage<T extends IdentityInput>(identity: T, defaultCountry: string): T {
  const out: T = { ...identity, phoneE164: identityPhoneE164(identity, defaultCountry) };
  const evidence = evidenceForStorage(identity, defaultCountry);
  if (evidence) out.evidence = evidence;
  else delete out.evidence;
  return out;
}

/**
 * What the engine stores for an identity's evidence: message phones in E.164 and emails lower-cased (so that a
 * later identity's phone or email finds it through an index), inbox numbers as given. Null when there is none.
 */
export function evidenceForStorage(identity: IdentityInput, defaultCountry: string): IdentityEvidence[] | null {
  const out: IdentityEvidence[] = [];
  for (const e of identity.evidence ?? []) {
    if (e.origin === 'inbox') out.push({ kind: e.kind, value: e.value, origin: 'inbox' });
  }
  const m = messageEvidence(identity, defaultCountry);
  for (const v of m.phones) out.push({ kind: 'phone', value: v, origin: 'message' });
  for (const v of m.emails) out.push({ kind: 'email', value: v, origin: 'message' });
  return out.length > 0 ? out : null;
}

/** identityNameKey's answers by first, last and display name. */
const nameKeys = new BoundedMemo<string, string | null>(20_000);

/** The name key stored with an identity (`patient_identities.name_key`), as `nameKeyOf` computes it. */
export function identityNameKey(identity: IdentityInput): string | null {
  // Asked for every identity the writer derives and every one a page store indexes (candidate rows included).
  const key = JSON.stringify([identity.firstName ?? null, identity.lastName ?? null, identity.displayName ?? null]);
  let nameKey = nameKeys.get(key);
  if (nameKey === undefined) {
    nameKey = nameKeyOf(prepareName(identity.firstName, identity.lastName, identity.displayName));
    nameKeys.set(key, nameKey);
  }
  return nameKey;
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
    phonesE164: [...new Set([...(p.phoneE164 ? [p.phoneE164] : []), ...p.messagePhones])],
    emails: [...new Set([...(p.email ? [p.email] : []), ...p.messageEmails])],
    crossRefs: [
      ...(identity.crossRefs ?? []).map((r) => ({ source: r.source, externalId: r.externalId })),
      { source: identity.source, externalId: identity.externalId },
    ],
  };
  if (lastName && p.dateOfBirth) query.lastNameDob = { lastName, dateOfBirth: p.dateOfBirth };
  if (p.nameKey) query.nameKeys = [p.nameKey];
  return query;
}
