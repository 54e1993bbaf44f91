import { describe, expect, it } from 'vitest';
import { clinikoPhoneText, generatePeople, nationalFormat, randomPhone } from './people.ts';
import { hash32, Rng, rngFor } from './prng.ts';

describe('prng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('derives independent streams from hashed parts', () => {
    expect(hash32(1, 'msg', 2)).toBe(hash32(1, 'msg', 2));
    expect(hash32(1, 'msg', 2)).not.toBe(hash32(1, 'msg', 3));
    expect(hash32(1, 'msg', 2)).not.toBe(hash32(2, 'msg', 2));
    expect(rngFor(7, 'x').int(0, 1_000_000)).toBe(rngFor(7, 'x').int(0, 1_000_000));
  });
});

describe('people pool', () => {
  const now = Date.parse('2025-11-24T00:00:00Z');
  const people = generatePeople(1, 0, 400, now);

  it('is deterministic', () => {
    expect(generatePeople(1, 0, 400, now)).toEqual(people);
    expect(generatePeople(2, 0, 400, now)).not.toEqual(people);
  });

  it('gives Cliniko ids as 18-digit strings above 2^53, and family ids that collide as JS numbers', () => {
    for (const p of people) {
      expect(p.clinikoId).toMatch(/^\d{18}$/);
      expect(BigInt(p.clinikoId) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    }
    expect(new Set(people.map((p) => p.clinikoId)).size).toBe(people.length);
    const collisions = people.filter((p, i) =>
      people.some((q, j) => j !== i && Number(q.clinikoId) === Number(p.clinikoId)),
    );
    expect(collisions.length).toBeGreaterThan(0);
  });

  it('has accents, shared family phones and several countries', () => {
    expect(people.some((p) => /[^\u0020-\u007e]/.test(`${p.firstName}${p.lastName}`))).toBe(true);
    expect(people.some((p) => p.sharesMobileWith !== null)).toBe(true);
    expect(new Set(people.map((p) => p.country)).size).toBeGreaterThanOrEqual(4);
    expect(people.some((p) => p.onChatwoot && p.onCliniko && p.chatwootLinksCliniko)).toBe(true);
  });

  it('formats phones per country and as clinics type them', () => {
    const rng = new Rng(3);
    const au = randomPhone(rng, 'AU', 'mobile');
    expect(au.e164).toMatch(/^\+614\d{8}$/);
    expect(nationalFormat(au)).toMatch(/^04\d{2} \d{3} \d{3}$/);
    const nz = randomPhone(rng, 'NZ', 'mobile');
    expect(nationalFormat(nz)).toMatch(/^02\d \d{3} \d{4}$/);
    const us = randomPhone(rng, 'US', 'mobile');
    expect(nationalFormat(us)).toMatch(/^\(\d{3}\) \d{3}-\d{4}$/);
    const texts = new Set(Array.from({ length: 60 }, () => clinikoPhoneText(au, 'AU', rng)));
    expect([...texts].some((t) => /^04\d{2} \d{3} \d{3}$/.test(t))).toBe(true);
    expect([...texts].some((t) => /^614\d{8}$/.test(t))).toBe(true);
  });
});
