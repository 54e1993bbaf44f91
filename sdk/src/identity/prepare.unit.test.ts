import { describe, expect, it } from 'vitest';
import type { IdentityInput } from '../hooks.ts';
import { identityNameKey, normalizeIdentityForStorage, prepareIdentity, prepareStoredCandidate } from './prepare.ts';

const base: IdentityInput = {
  source: 'chatwoot',
  externalId: '42',
  displayName: '★ Sarah Jones ★',
  phoneRaw: '0412 345 678',
  email: 'Sarah.Jones@example.com ',
  evidence: [{ kind: 'email', value: 'sj@example.com', origin: 'message' }],
  crossRefs: [{ source: 'cliniko', externalId: '7' }],
};

describe('prepareIdentity content cache', () => {
  it('gives a copy of a prepared identity the same prepared fields, with the copy as its input', () => {
    const first = prepareIdentity(base, 'AU');
    const copy = { ...base };
    const again = prepareIdentity(copy, 'AU');
    expect(again.input).toBe(copy);
    expect({ ...again, input: null }).toEqual({ ...first, input: null });
    expect(again.phoneE164).toBe('+61412345678');
    expect(again.email).toBe('sarah.jones@example.com');
    expect([...again.messageEmails]).toEqual(['sj@example.com']);
    expect([...again.crossRefKeys]).toEqual(['cliniko:7']);
  });

  it('prepares again when any field it reads differs', () => {
    prepareIdentity(base, 'AU');
    expect(prepareIdentity({ ...base, phoneRaw: '0412 999 888' }, 'AU').phoneE164).toBe('+61412999888');
    expect(prepareIdentity({ ...base, displayName: 'Tom Brown' }, 'AU').nameKey).toBe('thomas brown');
    expect(prepareIdentity({ ...base, evidence: [] }, 'AU').messageEmails.size).toBe(0);
    expect(
      prepareIdentity({ ...base, crossRefs: [{ source: 'cliniko', externalId: '8' }] }, 'AU').crossRefKeys,
    ).toEqual(new Set(['cliniko:8']));
    // Same digits, another default country: read as a New Zealand number.
    expect(prepareIdentity({ ...base, phoneRaw: '021 234 5678' }, 'NZ').phoneE164).toBe('+64212345678');
  });

  it('compares the content it was prepared from, not the objects that held it (an array changed in place)', () => {
    const evidence = [...(base.evidence ?? [])];
    expect(prepareIdentity({ ...base, evidence }, 'AU').messagePhones.size).toBe(0);
    evidence.push({ kind: 'phone', value: '0412 000 111', origin: 'message' });
    expect([...prepareIdentity({ ...base, evidence }, 'AU').messagePhones]).toEqual(['+61412000111']);
    const { crossRefs: _, ...noCrossRefs } = base;
    expect(prepareIdentity(noCrossRefs, 'AU').crossRefKeys.size).toBe(0);
    expect(prepareIdentity({ ...base, crossRefs: [] }, 'AU').crossRefKeys.size).toBe(0);
  });

  it("takes a stored candidate's E.164 phone and message phones as stored, and prepares it like the input", () => {
    const stored = { ...normalizeIdentityForStorage(base, 'AU'), patientId: 'p1' };
    const asCandidate = prepareStoredCandidate({ ...stored }, 'AU');
    expect({ ...asCandidate, input: null }).toEqual({ ...prepareIdentity({ ...base }, 'AU'), input: null });
    // Not parsed again: a stored phone in E.164 form is the one storage wrote (normalizeIdentityForStorage).
    const odd = prepareStoredCandidate(
      { ...stored, externalId: '43', phoneRaw: 'call me', phoneE164: '+61412345679' },
      'AU',
    );
    expect(odd.phoneE164).toBe('+61412345679');
    // Anything else is read as an input would be.
    expect(prepareStoredCandidate({ ...stored, externalId: '44', phoneE164: null }, 'AU').phoneE164).toBe(
      '+61412345678',
    );
  });

  it('keeps a missing phone field apart from an empty one (`phoneRaw ?? phoneE164`)', () => {
    const withE164 = { source: 'cliniko', externalId: '1', firstName: 'Ann', phoneE164: '0412 345 678' };
    expect(prepareIdentity({ ...withE164, phoneRaw: null }, 'AU').phoneDigits).toBe('12345678');
    expect(prepareIdentity({ ...withE164, phoneRaw: '' }, 'AU').phoneDigits).toBeNull();
  });

  it('names the same full name whatever object carries it', () => {
    expect(identityNameKey({ source: 'chatwoot', externalId: '1', displayName: 'Bob Smith 🌸' })).toBe('robert smith');
    expect(identityNameKey({ source: 'cliniko', externalId: '2', firstName: 'Bob', lastName: 'Smith' })).toBe(
      'robert smith',
    );
    expect(identityNameKey({ source: 'cliniko', externalId: '3', firstName: 'Bob', lastName: null })).toBeNull();
  });
});
