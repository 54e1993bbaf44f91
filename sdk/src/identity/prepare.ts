import { BoundedMemo } from '../bounded-memo.ts';
import type { CandidateQuery, IdentityEvidence, IdentityInput, StoredIdentity } from '../hooks.ts';
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
  /**
   * The email's local part names this identity's person (first name, or initial + surname): `sarah.jones@`,
   * `sjones@`. A household's shared address names someone else (`noah71@` on Elizabeth's record, a partner's
   * `akowalski@` on Lauren's), so two such emails differing is no evidence of two people.
   */
  readonly emailNamesOwner: boolean;
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

/**
 * Phones and emails written in conversations, normalised (invalid ones dropped). `stored`: the evidence was stored
 * normalised (`evidenceForStorage`), so a phone already in E.164 form is taken as it is.
 */
export function messageEvidence(
  identity: IdentityInput,
  defaultCountry: string,
  stored = false,
): { phones: Set<string>; emails: Set<string> } {
  const phones = new Set<string>();
  const emails = new Set<string>();
  for (const e of identity.evidence ?? []) {
    if (e.origin !== 'message') continue;
    if (e.kind === 'email') {
      const m = normalizeEmail(e.value);
      if (m) emails.add(m);
    } else if (stored && isE164(e.value)) {
      phones.add(e.value);
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

const cache = new WeakMap<IdentityInput, { defaultCountry: string; stored: boolean; prepared: PreparedIdentity }>();

/**
 * Prepared forms by identity (`source:externalId`), with the content they were prepared from, without `input`.
 * The per-object cache above misses on every read of a stored identity: the page store and SQL hand out fresh
 * copies, so the same candidates (the contact of each conversation in a webhook batch, a clinic record that shares
 * a phone with a page, the namesakes of a common name) were prepared again for every identity matched against
 * them. A hit needs every field `prepareIdentity` reads to be equal (compared field by field: a JSON key of the
 * content cost as much as the rest of a candidate's matching). Bounded (BoundedMemo), like the phone and name memos.
 */
interface Prepared {
  readonly defaultCountry: string;
  readonly stored: boolean;
  readonly from: IdentityInput;
  readonly parts: Omit<PreparedIdentity, 'input'>;
}
const byIdentity = new BoundedMemo<string, Prepared>(10_000);

const same = (a: string | null | undefined, b: string | null | undefined) => (a ?? null) === (b ?? null);

/** Every field `prepareIdentity` reads is equal. */
function sameContent(a: IdentityInput, b: IdentityInput): boolean {
  if (
    !same(a.firstName, b.firstName) ||
    !same(a.lastName, b.lastName) ||
    !same(a.displayName, b.displayName) ||
    !same(a.email, b.email) ||
    !same(a.phoneRaw, b.phoneRaw) ||
    !same(a.phoneE164, b.phoneE164) ||
    !same(a.dateOfBirth, b.dateOfBirth) ||
    !same(a.countryHint, b.countryHint)
  )
    return false;
  const xa = a.crossRefs;
  const xb = b.crossRefs;
  if ((xa === undefined) !== (xb === undefined) || (xa && xb && xa.length !== xb.length)) return false;
  if (xa && xb)
    for (let k = 0; k < xa.length; k++)
      if (xa[k]!.source !== xb[k]!.source || xa[k]!.externalId !== xb[k]!.externalId) return false;
  const ea = a.evidence;
  const eb = b.evidence;
  if ((ea === undefined) !== (eb === undefined) || (ea && eb && ea.length !== eb.length)) return false;
  if (ea && eb)
    for (let k = 0; k < ea.length; k++)
      if (ea[k]!.kind !== eb[k]!.kind || ea[k]!.origin !== eb[k]!.origin || ea[k]!.value !== eb[k]!.value) return false;
  return true;
}

/** What `sameContent` compares later, copied: the caller may change its object after preparing it. */
function contentOf(i: IdentityInput): IdentityInput {
  const c: IdentityInput = {
    source: i.source,
    externalId: i.externalId,
    firstName: i.firstName ?? null,
    lastName: i.lastName ?? null,
    displayName: i.displayName ?? null,
    email: i.email ?? null,
    phoneRaw: i.phoneRaw ?? null,
    phoneE164: i.phoneE164 ?? null,
    dateOfBirth: i.dateOfBirth ?? null,
    countryHint: i.countryHint ?? null,
  };
  if (i.crossRefs) c.crossRefs = i.crossRefs.map((r) => ({ source: r.source, externalId: r.externalId }));
  if (i.evidence) c.evidence = i.evidence.map((e) => ({ ...e }));
  return c;
}

/** The prepared parts of an identity, from the memo when it was prepared before with the same content. */
function partsOf(identity: IdentityInput, defaultCountry: string, stored: boolean): Omit<PreparedIdentity, 'input'> {
  const key = identityKey(identity.source, identity.externalId);
  const hit = byIdentity.get(key);
  if (hit && hit.defaultCountry === defaultCountry && hit.stored === stored && sameContent(hit.from, identity))
    return hit.parts;
  const parts = prepareParts(identity, defaultCountry, stored);
  byIdentity.set(key, { defaultCountry, stored, from: contentOf(identity), parts });
  return parts;
}

export interface PrepareOptions {
  /**
   * The identity was read from the store, where `phoneE164` and message evidence were written normalised
   * (`normalizeIdentityForStorage`): a value already in E.164 form is taken as it is instead of being parsed
   * again. Matching prepares every candidate; in a large practice (tens of namesakes per identity, more phones
   * than the phone memo holds) parsing stored numbers again was a tenth of a sync's CPU.
   */
  stored?: boolean;
}

/**
 * Prepare an identity for comparison. Cached per object, so scoring many pairs normalises each identity once, and
 * by content, so a copy of an identity prepared before (a candidate read again) is not normalised again.
 */
export function prepareIdentity(
  identity: IdentityInput,
  defaultCountry: string,
  opts: PrepareOptions = {},
): PreparedIdentity {
  return prepare(identity, defaultCountry, opts.stored === true, true);
}

/**
 * A stored identity prepared by content only (`stored`, no per-object cache): for candidates, which are fresh
 * copies (rows read again, a page store's copies) prepared once by the match that asked for them, so remembering
 * the object would only cost a WeakMap entry that nobody looks up again.
 */
export function prepareStoredCandidate(identity: StoredIdentity, defaultCountry: string): PreparedIdentity {
  return prepare(identity, defaultCountry, true, false);
}

/** The object's cached form when it has one; else by content, remembered for the object when `remember`. */
function prepare(identity: IdentityInput, defaultCountry: string, stored: boolean, remember: boolean) {
  const hit = cache.get(identity);
  if (hit && hit.defaultCountry === defaultCountry && hit.stored === stored) return hit.prepared;
  const prepared = withInput(partsOf(identity, defaultCountry, stored), identity);
  if (remember) cache.set(identity, { defaultCountry, stored, prepared });
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
    emailNamesOwner: p.emailNamesOwner,
    phoneE164: p.phoneE164,
    phoneDigits: p.phoneDigits,
    dateOfBirth: p.dateOfBirth,
    crossRefKeys: p.crossRefKeys,
  };
}

/** See `PreparedIdentity.emailNamesOwner`. */
function emailNamesOwner(email: string | null, name: PreparedName): boolean {
  if (!email || !name.first) return false;
  const local = email.split('@')[0]!.replace(/[^a-z]/g, '');
  const first = name.first.replace(/ /g, '');
  const last = name.last?.replace(/ /g, '') ?? '';
  if (first.length >= 3 && local.includes(first)) return true;
  return last.length >= 2 && local.startsWith(`${first[0]}${last}`);
}

function prepareParts(
  identity: IdentityInput,
  defaultCountry: string,
  stored: boolean,
): Omit<PreparedIdentity, 'input'> {
  const name = prepareName(identity.firstName, identity.lastName, identity.displayName);
  const message = messageEvidence(identity, defaultCountry, stored);
  const email = normalizeEmail(identity.email);
  return {
    key: identityKey(identity.source, identity.externalId),
    source: identity.source,
    name,
    nameKey: nameKeyOf(name),
    messagePhones: message.phones,
    messageEmails: message.emails,
    email,
    emailNamesOwner: emailNamesOwner(email, name),
    phoneE164: stored && isE164(identity.phoneE164) ? identity.phoneE164 : identityPhoneE164(identity, defaultCountry),
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
export function candidateQueryFor(
  identity: IdentityInput,
  defaultCountry: string,
  opts: PrepareOptions = {},
): CandidateQuery {
  const p = prepareIdentity(identity, defaultCountry, opts);
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
