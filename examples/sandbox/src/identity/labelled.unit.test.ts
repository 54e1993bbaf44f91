import { normalizePhone } from '@routiq/sdk/phone';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LABELLED_SEED, generateLabelledSet, toIdentityInput } from './labelled.ts';
import { realisticPools, type ZipfPool } from './name-pool.ts';

const set = generateLabelledSet();

describe('generateLabelledSet', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const again = generateLabelledSet({ seed: DEFAULT_LABELLED_SEED });
    expect(again.identities).toEqual(set.identities);
    const other = generateLabelledSet({ seed: 7 });
    expect(other.identities.slice(0, 20)).not.toEqual(set.identities.slice(0, 20));
  });

  it('has ≥ 2,000 identities for ~1,000 people on the three platforms', () => {
    expect(set.identities.length).toBeGreaterThanOrEqual(2000);
    expect(set.people.length).toBeGreaterThanOrEqual(800);
    expect(set.people.length).toBeLessThanOrEqual(1010);
    const sources = new Set(set.identities.map((i) => i.source));
    expect([...sources].sort()).toEqual(['chatwoot', 'cliniko', 'manychat']);
    const keys = new Set(set.identities.map((i) => `${i.source}:${i.externalId}`));
    expect(keys.size).toBe(set.identities.length);
    const people = new Set(set.people.map((p) => p.id));
    for (const i of set.identities) expect(people.has(i.personId)).toBe(true);
  });

  it('contains the noise the matcher must survive', () => {
    const tags = new Map<string, number>();
    for (const i of set.identities) for (const t of i.tags) tags.set(t, (tags.get(t) ?? 0) + 1);
    for (const t of [
      'typo',
      'nickname',
      'first_only',
      'initial',
      'lower',
      'emoji',
      'swapped',
      'nameless',
      'shared_phone',
      'twin',
      'namesake',
      'recycled_number',
      'changed_number',
      'cliniko_duplicate',
      'cross_ref',
      'guardian_ref',
      'email_channel',
    ]) {
      expect(tags.get(t) ?? 0, t).toBeGreaterThan(0);
    }
    const byPerson = new Map<string, Set<string>>();
    for (const i of set.identities) byPerson.set(i.personId, (byPerson.get(i.personId) ?? new Set()).add(i.source));
    expect([...byPerson.values()].filter((s) => s.size === 1).length).toBeGreaterThan(100); // single-platform people
    expect(set.identities.some((i) => i.email && i.email !== i.email.trim().toLowerCase())).toBe(true);
    expect(set.identities.some((i) => /[áéíóúëøłđ]/i.test(`${i.firstName}${i.lastName}${i.displayName}`))).toBe(true);
  });

  it('renders phones in formats that normalise back to the truth', () => {
    const cliniko = set.identities.filter((i) => i.source === 'cliniko' && i.phoneRaw);
    expect(new Set(cliniko.map((i) => i.phoneRaw!.replace(/\d/g, '9'))).size).toBeGreaterThan(15);
    expect(cliniko.some((i) => /^61\d{9}$/.test(i.phoneRaw!))).toBe(true); // country code without plus
    expect(cliniko.some((i) => /^62\d+$/.test(i.phoneRaw!.replace(/\D/g, '')))).toBe(true); // Indonesian
    let wrong = 0;
    for (const i of set.identities) {
      if (!i.phoneRaw) continue;
      const r = normalizePhone(i.phoneRaw, { defaultCountry: 'AU', countryHint: i.countryHint ?? null });
      if (r.e164 !== i.truePhoneE164) wrong++;
    }
    expect(wrong).toBe(0);
  });

  it('shares phones inside households: different first names, or different dates of birth', () => {
    const owners = new Map<string, Set<string>>();
    for (const i of set.identities) {
      if (!i.truePhoneE164) continue;
      owners.set(i.truePhoneE164, (owners.get(i.truePhoneE164) ?? new Set()).add(i.personId));
    }
    const shared = [...owners.values()].filter((s) => s.size > 1);
    expect(shared.length).toBeGreaterThan(100);
    const people = new Map(set.people.map((p) => [p.id, p]));
    const twins = set.people.filter((p) =>
      set.people.some((q) => q !== p && q.householdId === p.householdId && q.dateOfBirth === p.dateOfBirth),
    );
    expect(twins.length).toBeGreaterThan(0);
    const namesakes = set.people.filter((p) => p.householdKind === 'namesake');
    expect(namesakes.length).toBeGreaterThan(0);
    expect(people.size).toBe(set.people.length);
  });

  it('strips the labels for the matcher', () => {
    const input = toIdentityInput(set.identities[0]!);
    expect(input).not.toHaveProperty('personId');
    expect(input).not.toHaveProperty('tags');
    expect(input).not.toHaveProperty('truePhoneE164');
  });
});

describe('field set names', () => {
  it('follow a realistic frequency law: a heavy head (Smith, James) and a long tail', () => {
    const pools = realisticPools(['James', 'John'], ['Sarah', 'Emma'], ['Smith', 'Jones']);
    expect(pools.last.names.length).toBeGreaterThan(8000);
    expect(pools.male.names.length).toBeGreaterThan(2000);
    const last = pools.last as ZipfPool;
    // The commonest surname about 1% (Smith in Australia), the commonest given name about 2% of its sex.
    expect(last.share(0)).toBeGreaterThan(0.005);
    expect(last.share(0)).toBeLessThan(0.015);
    expect((pools.male as ZipfPool).share(0)).toBeLessThan(0.03);
  });

  it('some strangers still share a full name (and some a birthday too), but most names are unique', () => {
    const field = generateLabelledSet({ noise: 'field', seed: 3, people: 3000 });
    const count = new Map<string, number>();
    for (const p of field.people)
      count.set(`${p.firstName} ${p.lastName}`, (count.get(`${p.firstName} ${p.lastName}`) ?? 0) + 1);
    const sharing =
      field.people.filter((p) => count.get(`${p.firstName} ${p.lastName}`)! > 1).length / field.people.length;
    expect(sharing).toBeGreaterThan(0.005);
    expect(sharing).toBeLessThan(0.15);
    const tags = new Set(field.identities.flatMap((i) => i.tags));
    for (const t of ['same_name_same_dob', 'same_name_shared_phone', 'shared_phone', 'namesake'])
      expect(tags).toContain(t);
  });
});
