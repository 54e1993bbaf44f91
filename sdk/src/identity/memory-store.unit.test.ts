import { describe, expect, it } from 'vitest';
import { MemoryIdentityStore } from './memory-store.ts';
import { identityNameKey } from './prepare.ts';

const ann = { source: 'cliniko', externalId: '1', patientId: 'p1', firstName: 'Ann', lastName: 'Lee' };

describe('MemoryIdentityStore.add', () => {
  it('indexes the name key as computed, or as given (the stored column)', () => {
    const store = new MemoryIdentityStore();
    store.add(ann);
    const computed = identityNameKey(ann)!;
    expect(store.findCandidates({ phonesE164: [], emails: [], crossRefs: [], nameKeys: [computed] })).toHaveLength(1);
    // A name key written by the database: what its SQL index finds, the store finds.
    store.add({ ...ann, externalId: '2' }, { nameKey: 'stored key' });
    const byStored = store.findCandidates({ phonesE164: [], emails: [], crossRefs: [], nameKeys: ['stored key'] });
    expect(byStored.map((i) => i.externalId)).toEqual(['2']);
    // Replaced without one: computed again.
    store.add({ ...ann, externalId: '2' });
    expect(store.findCandidates({ phonesE164: [], emails: [], crossRefs: [], nameKeys: ['stored key'] })).toEqual([]);
  });

  it('copies what it is given unless the caller hands the object over; hands out copies either way', () => {
    const store = new MemoryIdentityStore();
    const mine = { ...ann, crossRefs: [{ source: 'chatwoot', externalId: '9' }] };
    store.add(mine);
    mine.firstName = 'Changed';
    expect(store.get('cliniko', '1')?.firstName).toBe('Ann');
    const handed = { ...ann, externalId: '3' };
    store.add(handed, { owned: true });
    expect(store.get('cliniko', '3')).toBe(handed);
    const found = store.findCandidates({
      phonesE164: [],
      emails: [],
      crossRefs: [{ source: 'cliniko', externalId: '3' }],
    });
    expect(found[0]).toEqual(handed);
    expect(found[0]).not.toBe(handed);
  });
});
