import { describe, expect, it, vi } from 'vitest';
import type { CandidateQuery, HookLogger, IdentityInput, MatchContext, StoredIdentity } from '../hooks.ts';
import { decideMatch, explain, matchIdentity, scorePair } from './match.ts';
import { MemoryIdentityStore } from './memory-store.ts';
import { candidateQueryFor, normalizeIdentityForStorage, prepareIdentity } from './prepare.ts';
import { DEFAULT_IDENTITY_SETTINGS, readIdentitySettings } from './settings.ts';

const silent: HookLogger = { debug() {}, info() {}, warn() {}, error() {} };

function setup(stored: StoredIdentity[], settings: Record<string, unknown> = {}) {
  const store = new MemoryIdentityStore();
  for (const s of stored) store.add(normalizeIdentityForStorage(s, 'AU'));
  const queries: CandidateQuery[] = [];
  const dbQuery = vi.fn(() => Promise.reject(new Error('matchIdentity must not query the database')));
  const ctx: MatchContext = {
    organizationId: 'org_1',
    connector: 'test',
    logger: silent,
    db: { query: dbQuery },
    settings,
    defaultCountry: 'AU',
    findCandidates: async (q) => {
      queries.push(q);
      return store.findCandidates(q);
    },
  };
  return { ctx, queries, dbQuery };
}

async function match(identity: IdentityInput, stored: StoredIdentity[], settings: Record<string, unknown> = {}) {
  const { ctx, dbQuery } = setup(stored, settings);
  const r = await matchIdentity(identity, ctx);
  expect(dbQuery).not.toHaveBeenCalled();
  return r;
}

// A family of four on one mobile, and the mother's email on the children's records.
const FAMILY_PHONE = '0412 345 678';
const mum: StoredIdentity = {
  patientId: 'p_mum',
  source: 'cliniko',
  externalId: '100',
  firstName: 'Sarah',
  lastName: 'Smith',
  email: 'sarah.smith@gmail.com',
  phoneRaw: FAMILY_PHONE,
  dateOfBirth: '1984-05-01',
};
const dad: StoredIdentity = {
  patientId: 'p_dad',
  source: 'cliniko',
  externalId: '101',
  firstName: 'Robert',
  lastName: 'Smith',
  phoneRaw: FAMILY_PHONE,
  dateOfBirth: '1982-02-11',
};
const emma: StoredIdentity = {
  patientId: 'p_emma',
  source: 'cliniko',
  externalId: '102',
  firstName: 'Emma',
  lastName: 'Smith',
  email: 'sarah.smith@gmail.com',
  phoneRaw: FAMILY_PHONE,
  dateOfBirth: '2015-09-30',
};
const family = [mum, dad, emma];

describe('matchIdentity: cross-references', () => {
  const clinikoPatient: StoredIdentity = {
    patientId: 'p1',
    source: 'cliniko',
    externalId: '555',
    firstName: 'Hannah',
    lastName: 'Nowak',
    phoneRaw: '0425 392 370',
    dateOfBirth: '1981-05-19',
  };

  it('links a Chatwoot contact whose attribute holds the Cliniko id', async () => {
    const r = await match(
      {
        source: 'chatwoot',
        externalId: '86',
        displayName: 'Hannah N',
        phoneE164: '+61499999999',
        crossRefs: [{ source: 'cliniko', externalId: '555' }],
      },
      [clinikoPatient],
    );
    expect(r).toEqual({ patientId: 'p1', method: 'cross_ref', confidence: expect.any(Number) });
    expect(r.confidence).toBeGreaterThanOrEqual(0.99);
  });

  it('links the reverse direction: a Cliniko patient named by a stored Chatwoot contact', async () => {
    const contact: StoredIdentity = {
      patientId: 'p2',
      source: 'chatwoot',
      externalId: '86',
      displayName: 'Hannah Nowak',
      crossRefs: [{ source: 'cliniko', externalId: '555' }],
    };
    const { patientId: _, ...incoming } = clinikoPatient;
    const r = await match({ ...incoming, phoneRaw: null }, [contact]);
    expect(r).toMatchObject({ patientId: 'p2', method: 'cross_ref' });
  });

  it('links two contacts that point at the same Cliniko id', async () => {
    const other: StoredIdentity = {
      patientId: 'p3',
      source: 'chatwoot',
      externalId: '90',
      displayName: 'Hannah',
      crossRefs: [{ source: 'cliniko', externalId: '555' }],
    };
    const r = await match(
      {
        source: 'chatwoot',
        externalId: '91',
        displayName: 'Hannah Nowak',
        crossRefs: [{ source: 'cliniko', externalId: '555' }],
      },
      [other],
    );
    expect(r).toMatchObject({ patientId: 'p3', method: 'cross_ref' });
  });

  it("vetoes a parent's contact that carries the child's Cliniko id", async () => {
    const r = await match(
      {
        source: 'chatwoot',
        externalId: '7',
        displayName: 'Sarah Smith',
        phoneE164: '+61499000111',
        crossRefs: [{ source: 'cliniko', externalId: '102' }],
      },
      [emma],
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });
});

describe('matchIdentity: email', () => {
  it('matches case- and whitespace-insensitively with compatible names', async () => {
    const r = await match(
      {
        source: 'manychat',
        externalId: 'm1',
        firstName: 'Sarah',
        lastName: 'Smith',
        email: '  Sarah.Smith@GMAIL.com ',
      },
      [mum],
    );
    expect(r).toMatchObject({ patientId: 'p_mum', method: 'email' });
  });

  it('a shared family email does not merge different people', async () => {
    const r = await match(
      {
        source: 'cliniko',
        externalId: '103',
        firstName: 'Liam',
        lastName: 'Smith',
        email: 'sarah.smith@gmail.com',
        dateOfBirth: '2018-01-20',
      },
      family,
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });
});

describe('matchIdentity: phone', () => {
  it('matches the E.164 form of a national Cliniko number with a nickname', async () => {
    const r = await match(
      { source: 'chatwoot', externalId: 'c1', displayName: 'Bob Smith', phoneE164: '+61412345678' },
      family,
    );
    expect(r).toMatchObject({ patientId: 'p_dad', method: 'phone' });
  });

  it('matches a WhatsApp first-name-only profile to the right family member', async () => {
    const r = await match(
      { source: 'manychat', externalId: 'm2', firstName: 'Sarah', phoneRaw: '61412345678' },
      family,
    );
    expect(r).toMatchObject({ patientId: 'p_mum', method: 'phone' });
  });

  it('shared family phone + different first name → no merge', async () => {
    const r = await match(
      {
        source: 'cliniko',
        externalId: '104',
        firstName: 'Liam',
        lastName: 'Smith',
        phoneRaw: FAMILY_PHONE,
        dateOfBirth: '2018-01-20',
      },
      family,
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('shared family phone + same name + different date of birth (father and son) → no merge', async () => {
    const r = await match(
      {
        source: 'cliniko',
        externalId: '105',
        firstName: 'Robert',
        lastName: 'Smith',
        phoneRaw: FAMILY_PHONE,
        dateOfBirth: '2010-06-01',
      },
      family,
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('twins: same surname, same DOB, same phone and email, different first names → no merge', async () => {
    const twin: StoredIdentity = { ...emma, patientId: 'p_twin', externalId: '106', firstName: 'Ava' };
    const r = await match(
      {
        source: 'cliniko',
        externalId: '107',
        firstName: 'Mia',
        lastName: 'Smith',
        email: emma.email ?? null,
        phoneRaw: FAMILY_PHONE,
        dateOfBirth: emma.dateOfBirth ?? null,
      },
      [twin],
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('a namesake record without a date of birth is not merged into the one with it', async () => {
    const sr: StoredIdentity = {
      patientId: 'p_sr',
      source: 'cliniko',
      externalId: '200',
      firstName: 'John',
      lastName: 'Carter',
      phoneRaw: '(03) 9561 5011',
      email: 'jcarter@outlook.com',
      dateOfBirth: '1965-03-02',
    };
    const r = await match(
      { source: 'cliniko', externalId: '201', firstName: 'John', lastName: 'Carter', phoneRaw: '03 9561 5011' },
      [sr],
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('ambiguous between two people who fit equally → new patient, never a coin toss', async () => {
    const sr: StoredIdentity = {
      patientId: 'p_sr',
      source: 'cliniko',
      externalId: '200',
      firstName: 'John',
      lastName: 'Carter',
      phoneRaw: '(03) 9561 5011',
      dateOfBirth: '1965-03-02',
    };
    const jr: StoredIdentity = { ...sr, patientId: 'p_jr', externalId: '201', dateOfBirth: '2001-08-14' };
    const r = await match(
      { source: 'chatwoot', externalId: 'c9', displayName: 'John Carter', phoneE164: '+61395615011' },
      [sr, jr],
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('a recycled number now used by someone with a compatible first name but another email → no merge', async () => {
    const oldOwner: StoredIdentity = {
      patientId: 'p_old',
      source: 'cliniko',
      externalId: '300',
      firstName: 'Nicholas',
      lastName: 'Haddad',
      email: 'nicholashaddad@live.com.au',
      phoneRaw: '0425 794 603',
      dateOfBirth: '1979-06-24',
    };
    const r = await match(
      {
        source: 'manychat',
        externalId: 'm3',
        firstName: 'Nick',
        email: 'nicholassmith@bigpond.com',
        phoneRaw: '61425794603',
      },
      [oldOwner],
    );
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('reads a surname-first profile name', async () => {
    const r = await match(
      { source: 'manychat', externalId: 'm4', firstName: 'Smith', lastName: 'Sarah', phoneRaw: '+61412345678' },
      family,
    );
    expect(r).toMatchObject({ patientId: 'p_mum', method: 'phone' });
  });

  it("links a nameless WhatsApp subscriber to the same number's Chatwoot contact (owner sources)", async () => {
    const contact: StoredIdentity = {
      patientId: 'p_c',
      source: 'chatwoot',
      externalId: 'c2',
      displayName: 'Zoë K',
      phoneE164: '+61433111222',
    };
    const r = await match({ source: 'manychat', externalId: 'm5', phoneRaw: '61433111222' }, [contact]);
    expect(r).toMatchObject({ patientId: 'p_c', method: 'phone' });
    expect(r.confidence).toBeGreaterThanOrEqual(0.8);
  });

  it('does not link a nameless subscriber to a clinic record (the phone may be a parent’s)', async () => {
    const r = await match({ source: 'manychat', externalId: 'm6', phoneRaw: '+61412345678' }, [emma]);
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('the legacy trap: an Indonesian number at an AU clinic is queried as +62, not +6162', async () => {
    const { ctx, queries } = setup([]);
    await matchIdentity(
      { source: 'cliniko', externalId: '9', firstName: 'Made', lastName: 'Wijaya', phoneRaw: '6281234567890' },
      ctx,
    );
    expect(queries[0]?.phonesE164).toEqual(['+6281234567890']);
  });
});

describe('matchIdentity: scored fallback and settings', () => {
  const original: StoredIdentity = {
    patientId: 'p_c',
    source: 'cliniko',
    externalId: '400',
    firstName: 'Callum',
    lastName: 'Liu',
    phoneRaw: '0421 000 111',
    dateOfBirth: '1981-02-10',
  };
  const duplicate: IdentityInput = {
    source: 'cliniko',
    externalId: '401',
    firstName: 'Callmu',
    lastName: 'Liu',
    dateOfBirth: '1981-02-10',
  };

  it('merges a duplicate registration found through surname + date of birth', async () => {
    const r = await match(duplicate, [original]);
    expect(r.method).toBe('scored');
    expect(r.patientId).toBe('p_c');
    expect(r.confidence).toBeGreaterThanOrEqual(DEFAULT_IDENTITY_SETTINGS.mergeThreshold);
  });

  it('uses settings.identity.merge_threshold', async () => {
    const r = await match(duplicate, [original], { identity: { merge_threshold: 0.99, review_threshold: 0.8 } });
    expect(r).toMatchObject({ patientId: null, method: 'new' });
    expect(r.confidence).toBeLessThan(0.1); // 1 - best score: a likely duplicate, left for review
  });

  it('a date of birth one digit off is a review case, not a merge', async () => {
    const r = await match({ ...duplicate, firstName: 'Callum', dateOfBirth: '1981-02-11' }, [original]);
    expect(r).toMatchObject({ patientId: null, method: 'new' });
  });

  it('new patient with full confidence when nothing shares a key', async () => {
    const r = await match(
      { source: 'chatwoot', externalId: 'x', displayName: 'Nobody', phoneE164: '+61400000001' },
      family,
    );
    expect(r).toEqual({ patientId: null, method: 'new', confidence: 1 });
  });

  it('reads and validates settings', () => {
    const warn = vi.fn();
    const logger = { ...silent, warn };
    expect(readIdentitySettings({})).toEqual(DEFAULT_IDENTITY_SETTINGS);
    expect(readIdentitySettings({ identity: { merge_threshold: 0.95, review_threshold: 0.7 } })).toMatchObject({
      mergeThreshold: 0.95,
      reviewThreshold: 0.7,
    });
    expect(readIdentitySettings({ identity: { merge_threshold: 7 } }, logger).mergeThreshold).toBe(0.9);
    expect(
      readIdentitySettings({ identity: { merge_threshold: 0.7, review_threshold: 0.8 } }, logger).reviewThreshold,
    ).toBe(0.7);
    expect(readIdentitySettings({ identity: 'high' }, logger)).toEqual(DEFAULT_IDENTITY_SETTINGS);
    expect(warn).toHaveBeenCalledTimes(3);
  });
});

describe('candidate query', () => {
  it('asks for normalised keys only, with the own key for reverse cross-references', () => {
    const q = candidateQueryFor(
      {
        source: 'cliniko',
        externalId: '42',
        firstName: 'Zoë',
        lastName: ' García ',
        email: ' Zoe@Example.COM ',
        phoneRaw: '0412 345 678',
        dateOfBirth: '1990-01-02',
        crossRefs: [{ source: 'chatwoot', externalId: '7' }],
      },
      'AU',
    );
    expect(q).toEqual({
      phonesE164: ['+61412345678'],
      emails: ['zoe@example.com'],
      crossRefs: [
        { source: 'chatwoot', externalId: '7' },
        { source: 'cliniko', externalId: '42' },
      ],
      lastNameDob: { lastName: 'garcía', dateOfBirth: '1990-01-02' },
      nameKeys: ['zoe garcia'],
    });
  });

  it('omits invalid phones and emails', () => {
    const q = candidateQueryFor({ source: 'manychat', externalId: '1', phoneRaw: '12', email: 'not-an-email' }, 'AU');
    expect(q.phonesE164).toEqual([]);
    expect(q.emails).toEqual([]);
    expect(q.lastNameDob).toBeUndefined();
  });
});

describe('decideMatch bridges', () => {
  it('reports a second patient the identity links just as firmly', () => {
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
    const incoming: IdentityInput = {
      source: 'cliniko',
      externalId: '9',
      firstName: 'Mark',
      lastName: 'Patel',
      phoneRaw: '0413-845-011',
      email: 'markpatel@bigpond.com',
      dateOfBirth: '2002-02-25',
    };
    const stored = [whatsapp, emailContact].map((s) => normalizeIdentityForStorage(s, 'AU'));
    const d = decideMatch(prepareIdentity(incoming, 'AU'), stored, readIdentitySettings({}), 'AU');
    expect(d.result).toMatchObject({ patientId: 'pB', method: 'email' });
    expect(d.bridges).toEqual(['pA']);
  });
});

describe('scorePair and explain', () => {
  const cliniko: IdentityInput = {
    source: 'cliniko',
    externalId: '1',
    firstName: 'Robert',
    lastName: 'Smith',
    phoneRaw: '0412 345 678',
  };
  const chatwoot: IdentityInput = {
    source: 'chatwoot',
    externalId: '2',
    displayName: 'bob smith',
    phoneE164: '+61412345678',
  };

  it('is pure and symmetric', () => {
    const a = scorePair(cliniko, chatwoot, { defaultCountry: 'AU' });
    const b = scorePair(chatwoot, cliniko, { defaultCountry: 'AU' });
    expect(a.score).toBe(b.score);
    expect(a.score).toBeGreaterThan(0.9);
    expect(a.features).toMatchObject({ firstName: 'nickname', lastName: 'exact', phone: 'equal' });
    expect(a.conflict).toBe('none');
  });

  it('needs a default country to compare national numbers', () => {
    expect(scorePair(cliniko, chatwoot).features.phone).toBe('missing');
  });

  it('caps hard conflicts', () => {
    const kid: IdentityInput = { ...cliniko, externalId: '3', firstName: 'Emma', dateOfBirth: '2015-01-01' };
    const s = scorePair(cliniko, kid, { defaultCountry: 'AU' });
    expect(s.conflict).toBe('hard');
    expect(s.score).toBeLessThanOrEqual(0.5);
    expect(s.reasons).toContain('conflict:first_name');
  });

  it('explains in words', () => {
    const lines = explain(cliniko, chatwoot, { defaultCountry: 'AU' });
    expect(lines[0]).toMatch(/^score 0\.\d{3}$/);
    expect(lines).toContain('same phone');
    expect(lines).toContain('first names are nickname forms of each other');
  });
});
