import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, parseKeyRing, seal } from './crypto.ts';

const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');

describe('credential encryption (AES-256-GCM envelope)', () => {
  it('seals with the first key and opens with any listed key; the key id travels with the value', () => {
    const old = parseKeyRing(`k1:${K1}`);
    const both = parseKeyRing(`k2:${K2}, k1:${K1}`);
    const s = seal(old, 'tok_live_abc123', 'org_a\0cliniko\0api_key');
    expect(s.keyId).toBe('k1');
    expect(s.ciphertext.toString('utf8')).not.toContain('tok_live');
    expect(open(both, s, 'org_a\0cliniko\0api_key', 'x')).toBe('tok_live_abc123');
    expect(seal(both, 'v', 'a').keyId).toBe('k2');
    // Same plaintext twice: different IVs, different ciphertexts.
    expect(seal(old, 'same', 'a').ciphertext.equals(seal(old, 'same', 'a').ciphertext)).toBe(false);
  });

  it("refuses a value moved to another row (another organization's), a tampered value, an unlisted key", () => {
    const ring = parseKeyRing(`k1:${K1}`);
    const s = seal(ring, 'secret-value', 'org_a\0cliniko\0api_key');
    expect(() => open(ring, s, 'org_b\0cliniko\0api_key', 'org_b/cliniko/api_key')).toThrow(/does not open/);
    const bad = { ...s, ciphertext: Buffer.from(s.ciphertext) };
    bad.ciphertext[0] = (bad.ciphertext[0] as number) ^ 1;
    expect(() => open(ring, bad, 'org_a\0cliniko\0api_key', 'r')).toThrow(/tampered/);
    expect(() => open(parseKeyRing(`k2:${K2}`), s, 'org_a\0cliniko\0api_key', 'r')).toThrow(
      /sealed with key "k1", which ROUTIQ_ENCRYPTION_KEYS does not list/,
    );
  });

  it('rejects malformed key lists without ever repeating key material', () => {
    const short = randomBytes(16).toString('base64');
    for (const [value, msg] of [
      ['', /is empty/],
      [K1, /entry 1 does not start with a key id/],
      [`k1:${short}`, /key "k1" is not 32 bytes/],
      [`k1:${K1},k1:${K2}`, /lists key id "k1" twice/],
    ] as const) {
      let message = '';
      try {
        parseKeyRing(value);
      } catch (e) {
        message = (e as Error).message;
        expect((e as { code?: string }).code).toBe('RQ1020');
      }
      expect(message).toMatch(msg);
      for (const k of [K1, K2, short]) expect(message).not.toContain(k);
    }
  });
});
