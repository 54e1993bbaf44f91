import { describe, expect, it } from 'vitest';
import type { IdentityInput } from '../hooks.ts';
import { identityNameKey, prepareIdentity } from './prepare.ts';

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
