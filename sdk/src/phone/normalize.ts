/**
 * Phone normalisation for identity matching.
 *
 * Why the `max` metadata: with the default (`min`) metadata `isValid()` only checks a number's length, so
 * "+41 2345678" or "+61 62 8123 4567" look valid as long as the digit count fits. The ambiguity rule below
 * ("digits that start with a country code are only read as international when they are NOT a valid national
 * number") is only as good as the validity check, and the legacy bug (every 7+ digit number got `+61`) is
 * exactly the kind of mistake a length-only check cannot catch. `max` validates against the full per-type
 * digit patterns. It costs ~145 kB of metadata, which does not matter on the server.
 * Caveat: validity follows the numbering plans shipped with the installed libphonenumber-js, so a number in a
 * range allocated after that release is reported invalid until the dependency is updated.
 */
import {
  type CountryCode,
  isSupportedCountry,
  type PhoneNumber,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max';
import { BoundedMemo } from '../bounded-memo.ts';

export type PhoneFailureReason = 'empty' | 'invalid' | 'too_short' | 'ambiguous';

export interface NormalizePhoneOptions {
  /** ISO 3166-1 alpha-2 country of the organization, used for national formats. */
  defaultCountry: string;
  /**
   * Country hint from the record itself: ISO alpha-2 (Cliniko `country_code`) or a calling code such as
   * `"61"`/`"+61"` (ManyChat `phone_country_code`). Tried before `defaultCountry` for national formats.
   */
  countryHint?: string | null;
}

export interface NormalizedPhone {
  /** The value as received, untouched (null only when none was given). */
  raw: string | null;
  /** E.164 (`+61412345678`), or null when the number is missing, invalid or ambiguous. Never guessed. */
  e164: string | null;
  valid: boolean;
  /** ISO alpha-2 of the number (not of the person); null when unknown or not valid. */
  country: string | null;
  reason?: PhoneFailureReason;
  /** Extension found in the raw value (`ext. 12`, `x12`), which is not part of the E.164 form. */
  extension?: string;
}

type ParseTarget = { defaultCountry: CountryCode } | { defaultCallingCode: string };

interface Interpretation {
  phone: PhoneNumber;
  /** Where the reading came from: the explicit/derived international form, the hint or the default country. */
  via: 'international' | 'hint' | 'default';
}

/** Characters that copy-paste from WhatsApp/Excel leaves in numbers: bidi marks, zero-width spaces, BOM. */
const INVISIBLE = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]/g;
/** International call prefixes written without `+`: AU `0011`, NANP `011`, most of the world `00`. */
const IDD = /^[\s(]*(0011|011|00)(?=[\s\-.)]*[1-9])/;
/** Separators between several numbers typed into one free-text field ("0412 345 678 / 02 9876 5432"). */
const MULTI_SEPARATOR = /\s*(?:[/,;|]|\bor\b)\s*/i;
const MIN_DIGITS = 5;

function resolveHint(hint: string | null | undefined): ParseTarget | null {
  if (!hint) return null;
  const h = hint.trim();
  if (/^[A-Za-z]{2}$/.test(h)) {
    const cc = h.toUpperCase();
    return isSupportedCountry(cc) ? { defaultCountry: cc } : null;
  }
  const m = /^\+?(\d{1,3})$/.exec(h);
  return m?.[1] ? { defaultCallingCode: m[1] } : null;
}

function parse(text: string, target?: ParseTarget): PhoneNumber | undefined {
  try {
    return target ? parsePhoneNumberFromString(text, target) : parsePhoneNumberFromString(text);
  } catch {
    return undefined;
  }
}

function lengthVerdict(text: string, target?: ParseTarget): string | undefined {
  try {
    return target ? validatePhoneNumberLength(text, target) : validatePhoneNumberLength(text);
  } catch {
    return undefined;
  }
}

function ok(raw: string, phone: PhoneNumber): NormalizedPhone {
  const out: NormalizedPhone = { raw, e164: phone.number, valid: true, country: phone.country ?? null };
  if (phone.ext) out.extension = phone.ext;
  return out;
}

function fail(raw: string | null, reason: PhoneFailureReason): NormalizedPhone {
  return { raw, e164: null, valid: false, country: null, reason };
}

function clean(raw: string): string {
  return raw
    .normalize('NFKC') // full-width digits and `＋`
    .replace(INVISIBLE, '')
    .replace(/^\s*tel:/i, '')
    .trim();
}

/**
 * Normalise one phone number to E.164.
 *
 * Rules, in order:
 * 1. An explicit `+CC` wins: only the international reading is tried (`+61 (0) 412 345 678` is fine, the
 *    `(0)` trunk is dropped). The hint and the default country are ignored, so `+62…` stays Indonesian.
 * 2. Otherwise two readings are built:
 *    - national (N): the number in the hint country, else in the default country (trunk `0` dropped);
 *    - international (I): after an international prefix (`0011`, `011`, `00`), or, when the number does not
 *      start with `0`, the digits read as if they had a `+` (Cliniko `61412345678`, WhatsApp ids).
 * 3. Only one reading valid → that one. Both valid and equal → that one.
 *    Both valid and different is the ambiguity rule. It happens when a national number was written without
 *    its trunk `0` (Excel drops it: AU `430 590 341` is also Austrian `+43 0590341`; US `646 230 7896` is also
 *    NZ `+64 6 230 7896`). Digits that carry a country code are never also valid national numbers of AU, NZ,
 *    GB, US or CA in practice (they are too long), so the national reading is the safe default:
 *    - the international reading when its country is the record's own hint (Cliniko `country_code`);
 *    - else the national reading when it was made in the hint country, or when there is no hint;
 *    - else (a hint names a third country) `reason: 'ambiguous'` and no E.164.
 * 4. Nothing valid → `e164: null`, `valid: false`, `reason` `too_short` or `invalid`. Never guessed.
 * A free-text field holding several numbers (`/`, `,`, `;`, `|`, "or") yields the first valid one.
 */
export function normalizePhone(raw: string | null | undefined, opts: NormalizePhoneOptions): NormalizedPhone {
  if (raw === null || raw === undefined) return fail(null, 'empty');
  // A sync normalises each identity's phone ~6 times (the writer, then every preparation of the identity for the
  // page query, matching and merge planning), and libphonenumber's parse was ~10% of the runner's CPU per Cliniko
  // record. The answer depends on these three strings only; callers get a copy, so none can alter the cached one.
  const key = `${opts.defaultCountry}\u0000${opts.countryHint ?? ''}\u0000${raw}`;
  const hit = memo.get(key);
  if (hit) return { ...hit };
  const r = normalizeUncached(raw, opts);
  memo.set(key, r);
  return { ...r };
}

const memo = new BoundedMemo<string, NormalizedPhone>(20_000);

function normalizeUncached(raw: string, opts: NormalizePhoneOptions): NormalizedPhone {
  const text = clean(raw);
  if (!/\d/.test(text)) return fail(raw, 'empty');

  const parts = text.split(MULTI_SEPARATOR).filter((p) => /\d/.test(p));
  if (parts.length > 1) {
    let first: NormalizedPhone | null = null;
    for (const part of parts) {
      const r = normalizeOne(raw, part, opts);
      if (r.valid) return r;
      first ??= r;
    }
    return first ?? fail(raw, 'invalid');
  }
  return normalizeOne(raw, text, opts);
}

function normalizeOne(raw: string, text: string, opts: NormalizePhoneOptions): NormalizedPhone {
  const digits = text.replace(/\D/g, '');
  if (digits.length === 0) return fail(raw, 'empty');

  if (text.startsWith('+')) {
    const p = parse(text);
    if (p?.isValid()) return ok(raw, p);
    return fail(raw, digits.length < MIN_DIGITS || lengthVerdict(text) === 'TOO_SHORT' ? 'too_short' : 'invalid');
  }

  const hint = resolveHint(opts.countryHint);
  const defaultTarget: ParseTarget | null = isSupportedCountry(opts.defaultCountry.toUpperCase())
    ? { defaultCountry: opts.defaultCountry.toUpperCase() as CountryCode }
    : null;

  let national: Interpretation | null = null;
  if (hint) {
    const p = parse(text, hint);
    if (p?.isValid()) national = { phone: p, via: 'hint' };
  }
  if (!national && defaultTarget) {
    const p = parse(text, defaultTarget);
    if (p?.isValid()) national = { phone: p, via: 'default' };
  }

  let international: Interpretation | null = null;
  const idd = IDD.exec(text);
  const intlText = idd
    ? `+${text.slice(idd[0].length).replace(/^[^\d]+/, '')}`
    : digits.startsWith('0')
      ? null
      : `+${text.replace(/^[^\d]+/, '')}`;
  if (intlText) {
    const p = parse(intlText);
    if (p?.isValid()) international = { phone: p, via: 'international' };
  }

  if (national && international && national.phone.number !== international.phone.number) {
    const hintCountry = hint && 'defaultCountry' in hint ? hint.defaultCountry : null;
    const hintCalling = hint && 'defaultCallingCode' in hint ? hint.defaultCallingCode : null;
    const intlIsHint =
      (hintCountry !== null && international.phone.country === hintCountry) ||
      (hintCalling !== null && international.phone.countryCallingCode === hintCalling);
    if (intlIsHint) return ok(raw, international.phone);
    if (national.via === 'hint' || !hint) return ok(raw, national.phone);
    return fail(raw, 'ambiguous');
  }
  const chosen = national ?? international;
  if (chosen) return ok(raw, chosen.phone);

  if (digits.length < MIN_DIGITS) return fail(raw, 'too_short');
  const target = hint ?? defaultTarget ?? undefined;
  return fail(raw, lengthVerdict(text, target) === 'TOO_SHORT' ? 'too_short' : 'invalid');
}

/** True for a syntactically E.164 string (`+` then 7–15 digits, no leading zero), the Chatwoot rule. */
export function isE164(value: string | null | undefined): value is string {
  return typeof value === 'string' && /^\+[1-9]\d{6,14}$/.test(value);
}
