import { describe, expect, it } from 'vitest';
import type { StoredIdentity } from '../hooks.ts';
import { findLikelyDuplicates, findLikelyDuplicatesWithStats } from './duplicates.ts';
import { planPatientMerges } from './reconcile.ts';

const AU = { defaultCountry: 'AU' };

describe('findLikelyDuplicates', () => {
  const whatsapp: StoredIdentity = {
    patientId: 'pA',
    source: 'chatwoot',
    externalId: '1',
    displayName: 'Mark Patel',
    phoneE164: '+61413845011',
  };
  const cliniko: StoredIdentity = {
    patientId: 'pB',
    source: 'cliniko',
    externalId: '9',
    firstName: 'Mark',
    lastName: 'Patel',
    phoneRaw: '0413-845-011',
    dateOfBirth: '2002-02-25',
  };
  const dobTypo: StoredIdentity = {
    patientId: 'pC',
    source: 'cliniko',
    externalId: '10',
    firstName: 'Mark',
    lastName: 'Patel',
    phoneRaw: '0413 845 011',
    dateOfBirth: '2002-02-26',
  };

  it('reports unlinked pairs with score, band and reasons', () => {
    const out = findLikelyDuplicates([whatsapp, cliniko, dobTypo], AU);
    expect(out.map((d) => [d.patientIds, d.band])).toEqual([
      [['pA', 'pB'], 'above_merge'],
      [['pA', 'pC'], 'above_merge'],
      [['pB', 'pC'], 'review'],
    ]);
    const review = out.find((d) => d.band === 'review')!;
    expect(review.score).toBeGreaterThanOrEqual(0.75);
    expect(review.score).toBeLessThan(0.9);
    expect(review.reasons).toContain('conflict:date_of_birth_near');
    expect(review.explanation.join(' ')).toMatch(/one digit/);
  });

  it('keeps to the review band when asked', () => {
    const out = findLikelyDuplicates([whatsapp, cliniko, dobTypo], { ...AU, includeAboveMerge: false });
    expect(out.map((d) => d.patientIds)).toEqual([['pB', 'pC']]);
  });

  it('ignores identities of the same patient and clearly different people', () => {
    const sameLink = { ...dobTypo, patientId: 'pB' };
    const kid: StoredIdentity = {
      ...cliniko,
      patientId: 'pK',
      externalId: '11',
      firstName: 'Emma',
      dateOfBirth: '2016-01-01',
    };
    const twin: StoredIdentity = { ...cliniko, patientId: 'pT', externalId: '12', firstName: 'Luke' };
    expect(findLikelyDuplicates([cliniko, sameLink, kid, twin], AU)).toEqual([]);
  });

  it('finds sound-alike names without a shared key', () => {
    const a: StoredIdentity = {
      patientId: 'p1',
      source: 'cliniko',
      externalId: '1',
      firstName: 'Robert',
      lastName: 'Smith',
      email: 'rs@x.com',
      dateOfBirth: '1970-01-01',
    };
    const b: StoredIdentity = {
      patientId: 'p2',
      source: 'cliniko',
      externalId: '2',
      firstName: 'Bob',
      lastName: 'Smyth',
      dateOfBirth: '1970-01-01',
    };
    const out = findLikelyDuplicates([a, b], AU);
    expect(out).toHaveLength(1);
    expect(out[0]!.reasons).toEqual(
      expect.arrayContaining(['first_name:nickname', 'last_name:typo', 'date_of_birth:equal']),
    );
  });

  it('compares within blocks only, and skips oversized blocks', () => {
    const many: StoredIdentity[] = Array.from({ length: 400 }, (_, i) => ({
      patientId: `p${i}`,
      source: 'cliniko',
      externalId: String(i),
      firstName: `Name${i}`,
      lastName: `Family${i}`,
      phoneRaw: '(02) 9876 5432', // a clinic landline typed on every record
      dateOfBirth: `19${50 + (i % 40)}-01-01`,
    }));
    const { stats } = findLikelyDuplicatesWithStats(many, AU);
    expect(stats.skippedBlocks).toBeGreaterThan(0);
    expect(stats.comparisons).toBeLessThan(5000); // all pairs of 400 identities would be 79,800
  });
});

describe('planPatientMerges', () => {
  it('re-runs the rules and merges a person split by arrival order', () => {
    const whatsapp: StoredIdentity = {
      patientId: 'pA',
      source: 'chatwoot',
      externalId: '1',
      displayName: 'Mark Patel',
      phoneE164: '+61413845011',
    };
    const emailContact: StoredIdentity = {
      patientId: 'pB',
      source: 'chatwoot',
      externalId: '2',
      displayName: 'Mark Patel',
      email: 'markpatel@bigpond.com',
    };
    const cliniko: StoredIdentity = {
      patientId: 'pB',
      source: 'cliniko',
      externalId: '9',
      firstName: 'Mark',
      lastName: 'Patel',
      phoneRaw: '0413-845-011',
      email: 'markpatel@bigpond.com',
      dateOfBirth: '2002-02-25',
    };
    expect(planPatientMerges([whatsapp, emailContact, cliniko], AU)).toEqual([
      { from: 'pB', into: 'pA', via: expect.any(String) },
    ]);
  });

  it('never merges a family sharing a phone, nor a first name ambiguous between two people', () => {
    const phone = '0419 230 636';
    const meiSingh: StoredIdentity = {
      patientId: 'p1',
      source: 'cliniko',
      externalId: '1',
      firstName: 'Mei',
      lastName: 'Singh',
      phoneRaw: phone,
      dateOfBirth: '1963-03-27',
    };
    const meiBrown: StoredIdentity = {
      patientId: 'p2',
      source: 'cliniko',
      externalId: '2',
      firstName: 'Mei',
      lastName: 'Brown',
      phoneRaw: phone,
      dateOfBirth: '1994-12-11',
    };
    const mei: StoredIdentity = {
      patientId: 'p3',
      source: 'manychat',
      externalId: '3',
      firstName: 'Mei',
      phoneRaw: '+61419230636',
    };
    const kid: StoredIdentity = {
      patientId: 'p4',
      source: 'cliniko',
      externalId: '4',
      firstName: 'Ava',
      lastName: 'Brown',
      phoneRaw: phone,
      dateOfBirth: '2016-05-05',
    };
    expect(planPatientMerges([meiSingh, meiBrown, mei, kid], AU)).toEqual([]);
  });
});
