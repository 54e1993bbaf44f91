import { describe, expect, it } from 'vitest';
import { isE164, normalizePhone } from './normalize.ts';

const AU = { defaultCountry: 'AU' } as const;

function e164(raw: string | null | undefined, defaultCountry = 'AU', countryHint: string | null = null): string | null {
  return normalizePhone(raw, { defaultCountry, countryHint }).e164;
}

describe('normalizePhone: empty and invalid input', () => {
  it.each([
    [null, null],
    [undefined, null],
    ['', ''],
    ['   ', '   '],
    ['N/A', 'N/A'],
    ['-', '-'],
  ])('%j is empty and keeps raw', (raw, keptRaw) => {
    expect(normalizePhone(raw, AU)).toEqual({ raw: keptRaw, e164: null, valid: false, country: null, reason: 'empty' });
  });

  it.each(['123', '+61 4123', '04'])('%j is too short', (raw) => {
    const r = normalizePhone(raw, AU);
    expect(r).toMatchObject({ raw, e164: null, valid: false, reason: 'too_short' });
  });

  it.each(['0412 345 67', '0512 345 678', '+0412345678', '99999999999999999', '+61 1234 5678 9999'])(
    '%j is invalid and never guessed',
    (raw) => {
      expect(normalizePhone(raw, AU)).toMatchObject({
        raw,
        e164: null,
        valid: false,
        country: null,
        reason: 'invalid',
      });
    },
  );

  it('keeps the raw value untouched on success', () => {
    expect(normalizePhone(' 0412 345 678 ', AU)).toEqual({
      raw: ' 0412 345 678 ',
      e164: '+61412345678',
      valid: true,
      country: 'AU',
    });
  });
});

describe('normalizePhone: Australia (default AU)', () => {
  it.each([
    // Cliniko free text, as reception types it
    ['0412 345 678', '+61412345678'],
    ['0412345678', '+61412345678'],
    ['0412-345-678', '+61412345678'],
    ['0412.345.678', '+61412345678'],
    ['(04) 1234 5678', '+61412345678'],
    ['61412345678', '+61412345678'], // Cliniko API sample form: country code, no plus
    ['61 412 345 678', '+61412345678'],
    ['412 345 678', '+61412345678'], // trunk 0 lost (Excel import)
    ['+61 412 345 678', '+61412345678'],
    ['+61 (0) 412 345 678', '+61412345678'],
    ['+61 (0)412-345-678', '+61412345678'],
    ['61 (0) 412 345 678', '+61412345678'],
    ['0061 412 345 678', '+61412345678'],
    ['０４１２ ３４５ ６７８', '+61412345678'], // full-width digits
    ['\u202a+61 412 345 678\u202c', '+61412345678'], // bidi marks from WhatsApp copy-paste
    ['tel:+61412345678', '+61412345678'],
    // landlines
    ['(02) 9876 5432', '+61298765432'],
    ['02 9876 5432', '+61298765432'],
    ['03-9123-4567', '+61391234567'],
    ['(03) 9123 4567', '+61391234567'],
    ['61398765432', '+61398765432'],
    // ManyChat / Chatwoot
    ['+61412345678', '+61412345678'],
  ])('%j → %s', (raw, expected) => {
    const r = normalizePhone(raw, AU);
    expect(r.e164).toBe(expected);
    expect(r.valid).toBe(true);
    expect(r.country).toBe('AU');
  });

  it('drops extensions from the E.164 form and reports them', () => {
    expect(normalizePhone('0412 345 678 ext. 12', AU)).toMatchObject({ e164: '+61412345678', extension: '12' });
    expect(normalizePhone('0412345678 x12', AU)).toMatchObject({ e164: '+61412345678', extension: '12' });
    expect(normalizePhone('(02) 9876 5432 ext 301', AU)).toMatchObject({ e164: '+61298765432', extension: '301' });
    expect(normalizePhone('+61 412 345 678 x 5', AU)).toMatchObject({ e164: '+61412345678', extension: '5' });
    expect(normalizePhone('0412 345 678', AU)).not.toHaveProperty('extension');
  });

  it('takes the first valid number of a field holding several', () => {
    expect(e164('0412 345 678 / 02 9876 5432')).toBe('+61412345678');
    expect(e164('mob 0412 345 678, home (02) 9876 5432')).toBe('+61412345678');
    expect(e164('0000 / 02 9876 5432')).toBe('+61298765432');
  });
});

describe('normalizePhone: New Zealand, UK, US, Canada', () => {
  it.each([
    // NZ
    ['021 123 4567', 'NZ', null, '+64211234567', 'NZ'],
    ['027 123 4567', 'NZ', null, '+64271234567', 'NZ'],
    ['(09) 379 4567', 'NZ', null, '+6493794567', 'NZ'],
    ['+64 21 123 4567', 'AU', null, '+64211234567', 'NZ'],
    ['64211234567', 'AU', null, '+64211234567', 'NZ'],
    ['021 123 4567', 'AU', 'NZ', '+64211234567', 'NZ'], // Cliniko patient with country_code NZ at an AU clinic
    // UK
    ['07400 123456', 'GB', null, '+447400123456', 'GB'],
    ['07400 123456', 'AU', 'GB', '+447400123456', 'GB'],
    ['020 7946 0958', 'GB', null, '+442079460958', 'GB'],
    ['(0)20 7946 0958', 'GB', null, '+442079460958', 'GB'],
    ['+44 (0)20 7946 0958', 'AU', null, '+442079460958', 'GB'],
    ['447400123456', 'AU', null, '+447400123456', 'GB'],
    ['0044 7400 123456', 'AU', null, '+447400123456', 'GB'],
    ['0011 44 20 7946 0958', 'AU', null, '+442079460958', 'GB'], // Australian international prefix
    // US
    ['(415) 555-2671', 'US', null, '+14155552671', 'US'],
    ['415-555-2671', 'US', null, '+14155552671', 'US'],
    ['1 (415) 555-2671', 'US', null, '+14155552671', 'US'],
    ['+1 415 555 2671', 'AU', null, '+14155552671', 'US'],
    ['14155552671', 'AU', null, '+14155552671', 'US'],
    ['18607168079', 'AU', null, '+18607168079', 'US'], // the raw Cliniko value from the legacy profile API docs
    ['(415) 555-2671', 'AU', 'US', '+14155552671', 'US'],
    ['011 61 412 345 678', 'US', null, '+61412345678', 'AU'], // NANP international prefix
    // Canada
    ['604-555-1234', 'CA', null, '+16045551234', 'CA'],
    ['(604) 555 1234', 'AU', 'CA', '+16045551234', 'CA'],
    ['+1 (604) 555-1234', 'AU', null, '+16045551234', 'CA'],
    ['1-604-555-1234', 'AU', null, '+16045551234', 'CA'],
    ['(416) 555-0199 ext. 4', 'CA', null, '+14165550199', 'CA'],
  ])('%j (default %s, hint %s) → %s', (raw, defaultCountry, hint, expected, country) => {
    const r = normalizePhone(raw, { defaultCountry, countryHint: hint });
    expect(r.e164).toBe(expected);
    expect(r.country).toBe(country);
    expect(r.valid).toBe(true);
  });

  it('does not read a foreign national format as the default country without a hint', () => {
    // A NZ landline written nationally at an AU clinic, with no hint: not a valid AU number, so not guessed.
    expect(normalizePhone('(09) 379 4567', AU)).toMatchObject({ e164: null, valid: false, reason: 'invalid' });
  });
});

describe('normalizePhone: the legacy +61 trap', () => {
  it.each([
    ['6281234567890', '+6281234567890', 'ID'],
    ['62 812-3456-7890', '+6281234567890', 'ID'],
    ['+62 812-3456-7890', '+6281234567890', 'ID'],
    ['0062 812 3456 7890', '+6281234567890', 'ID'],
    ['34662191692', '+34662191692', 'ES'],
    ['+34662191692', '+34662191692', 'ES'],
    ['+34 662 19 16 92', '+34662191692', 'ES'],
    ['0034 662191692', '+34662191692', 'ES'],
  ])('%j with default AU stays %s (%s)', (raw, expected, country) => {
    const r = normalizePhone(raw, AU);
    expect(r.e164).toBe(expected);
    expect(r.country).toBe(country);
    expect(r.e164?.startsWith('+616')).toBe(false);
  });

  it('an explicit +CC wins over the hint and the default country', () => {
    expect(normalizePhone('+61412345678', { defaultCountry: 'ID', countryHint: 'ES' })).toMatchObject({
      e164: '+61412345678',
      country: 'AU',
    });
    expect(normalizePhone('+6281234567890', { defaultCountry: 'AU', countryHint: 'AU' })).toMatchObject({
      e164: '+6281234567890',
      country: 'ID',
    });
  });

  it('national numbers use the hint first (Bali clinic patients with Cliniko country_code)', () => {
    expect(e164('0812-3456-7890', 'AU', 'ID')).toBe('+6281234567890');
    expect(e164('662 19 16 92', 'AU', 'ES')).toBe('+34662191692');
    expect(e164('0812-3456-7890', 'ID')).toBe('+6281234567890');
    // Same digits at an AU clinic without a hint are not an AU number: invalid, not +61-prefixed.
    expect(normalizePhone('0812-3456-7890', AU)).toMatchObject({ e164: null, reason: 'invalid' });
  });

  it('a legacy-mangled +6162… value is rejected, not repaired', () => {
    expect(normalizePhone('+6162812345678', AU)).toMatchObject({ e164: null, valid: false, reason: 'invalid' });
  });

  it('accepts calling-code hints (ManyChat phone_country_code) and ignores unknown hints', () => {
    expect(e164('0812 3456 7890', 'AU', '+62')).toBe('+6281234567890');
    expect(e164('0412 345 678', 'AU', '61')).toBe('+61412345678');
    expect(e164('0412 345 678', 'AU', 'XX')).toBe('+61412345678');
    expect(e164('0412 345 678', 'AU', 'not a country')).toBe('+61412345678');
  });
});

describe('normalizePhone: ambiguity rule', () => {
  // "430 590 341" is an AU mobile without its trunk 0 and also Austrian +43 0590341.
  it('national wins when there is no hint', () => {
    expect(normalizePhone('430590341', AU)).toMatchObject({ e164: '+61430590341', country: 'AU' });
    // US national 10-digit numbers are also NZ numbers when read with a plus (+64 6…)
    expect(normalizePhone('6462307896', { defaultCountry: 'US' })).toMatchObject({ e164: '+16462307896' });
  });

  it('the record hint picks the international reading when it names that country', () => {
    expect(normalizePhone('430590341', { defaultCountry: 'AU', countryHint: 'AT' })).toMatchObject({ country: 'AT' });
    expect(normalizePhone('646 230 7896', { defaultCountry: 'AU', countryHint: 'US' })).toMatchObject({
      e164: '+16462307896',
    });
  });

  it('is ambiguous when the hint names a third country', () => {
    expect(normalizePhone('430590341', { defaultCountry: 'AU', countryHint: 'ES' })).toEqual({
      raw: '430590341',
      e164: null,
      valid: false,
      country: null,
      reason: 'ambiguous',
    });
  });

  it('country-code digits are never valid national numbers of the default country', () => {
    for (const defaultCountry of ['AU', 'NZ', 'GB', 'US', 'CA']) {
      expect(e164('61412345678', defaultCountry)).toBe('+61412345678');
      expect(e164('64211234567', defaultCountry)).toBe('+64211234567');
      expect(e164('447400123456', defaultCountry)).toBe('+447400123456');
      expect(e164('14155552671', defaultCountry)).toBe('+14155552671');
      expect(e164('6281234567890', defaultCountry)).toBe('+6281234567890');
    }
  });
});

describe('normalizePhone: repeated calls (memoised)', () => {
  it('answers a repeated number the same, keyed on the hint and default country too, and hands out copies', () => {
    const first = normalizePhone('0412 345 678 ext. 12', AU);
    expect(first).toEqual({
      raw: '0412 345 678 ext. 12',
      e164: '+61412345678',
      valid: true,
      country: 'AU',
      extension: '12',
    });
    // A caller altering its answer does not alter the next caller's.
    first.e164 = null;
    first.valid = false;
    expect(normalizePhone('0412 345 678 ext. 12', AU)).toMatchObject({ e164: '+61412345678', valid: true });
    // Same digits, other readings: the cached AU answer is not reused for another country or hint.
    expect(e164('021 123 4567', 'AU')).toBe('+61211234567');
    expect(e164('021 123 4567', 'NZ')).toBe('+64211234567');
    expect(e164('0412 345 678', 'NZ')).toBeNull();
    expect(e164('0412 345 678', 'NZ', 'AU')).toBe('+61412345678');
    expect(e164('0412 345 678', 'NZ')).toBeNull();
  });
});

describe('isE164', () => {
  it('accepts Chatwoot-valid numbers only', () => {
    expect(isE164('+61412345678')).toBe(true);
    expect(isE164('61412345678')).toBe(false);
    expect(isE164('+0412345678')).toBe(false);
    expect(isE164(null)).toBe(false);
  });
});
