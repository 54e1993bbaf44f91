/**
 * The matcher on what chat platforms send (issue #21.4): decorated display names, junk phones, a phone only in the
 * contact inbox, contact details written in messages, namesakes whose other identifiers conflict.
 */
import { describe, expect, it } from 'vitest';
import type { IdentityInput, StoredIdentity } from '../hooks.ts';
import { decideMatch } from './match.ts';
import { cleanDisplayName, nameKeyOf, prepareName } from './names.ts';
import { candidateQueryFor, prepareIdentity } from './prepare.ts';
import { planPatientMerges } from './reconcile.ts';
import { readIdentitySettings } from './settings.ts';

const settings = readIdentitySettings({});
const decide = (i: IdentityInput, stored: StoredIdentity[], uniqueNames = false) =>
  decideMatch(prepareIdentity(i, 'AU'), stored, settings, 'AU', { uniqueNames });
/** A Chatwoot contact as its connector maps it: first word and rest of the display name. */
const chat = (id: string, name: string, extra: Partial<IdentityInput> = {}): IdentityInput => {
  const i = name.indexOf(' ');
  return {
    source: 'chatwoot',
    externalId: id,
    displayName: name,
    firstName: i >= 0 ? name.slice(0, i) : name,
    lastName: i >= 0 ? name.slice(i + 1) : null,
    ...extra,
  };
};
const clinic = (id: string, first: string, last: string, extra: Partial<IdentityInput> = {}): IdentityInput => ({
  source: 'cliniko',
  externalId: id,
  firstName: first,
  lastName: last,
  ...extra,
});

describe('display names as people decorate them', () => {
  it.each([
    ['🌸 Sarah Jones', 'Sarah Jones'],
    ['Sarah Jones | Mum of 3', 'Sarah Jones'],
    ['★ Sarah Jones ★', 'Sarah Jones'],
    ['Sarah 🌸 Jones', 'Sarah Jones'],
    ['Sarah Jones 🏠 Bondi', 'Sarah Jones'],
    ['Sarah Jones xx', 'Sarah Jones'],
    ['Sarah Jones - Pilates', 'Sarah Jones'],
    ['【Sarah Jones】', 'Sarah Jones'],
    ['Mia (work)', 'Mia'],
  ])('%s → %s', (raw, clean) => {
    expect(cleanDisplayName(raw)).toBe(clean);
  });

  it('reads the display name when the connector cut first/last out of it; keys fold accents and nicknames', () => {
    const p = prepareIdentity(chat('1', '🌸 José García | Physio'), 'AU');
    expect([p.name.first, p.name.last]).toEqual(['jose', 'garcia']);
    expect(p.nameKey).toBe(nameKeyOf(prepareName('Jose', 'Garcia')));
    expect(nameKeyOf(prepareName('Bob', 'Smith'))).toBe(nameKeyOf(prepareName('Robert', 'Smith')));
  });

  it('a decorated WhatsApp name still links on the shared phone', () => {
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { phoneRaw: '0412 345 678', dateOfBirth: '1980-01-01' }), patientId: 'p1' },
    ];
    const d = decide(chat('1', '✨Sarah Jones✨ | Mum of 3', { phoneRaw: '+61412345678' }), stored);
    expect(d.result).toMatchObject({ patientId: 'p1', method: 'phone' });
  });
});

describe('evidence outside the contact', () => {
  it("a phone only in the WhatsApp contact inbox's source_id is the contact's phone", () => {
    const i = chat('1', 'Sarah', { evidence: [{ kind: 'phone', value: '61412345678', origin: 'inbox' }] });
    expect(candidateQueryFor(i, 'AU').phonesE164).toEqual(['+61412345678']);
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { phoneRaw: '0412345678' }), patientId: 'p1' },
    ];
    expect(decide(i, stored).result.patientId).toBe('p1');
  });

  it('an email written in a message links with agreeing names, never with a clashing one', () => {
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { email: 'sarah.j@example.com' }), patientId: 'p1' },
      { ...clinic('11', 'Tom', 'Jones', { email: 'tom.j@example.com' }), patientId: 'p2' },
    ];
    const sarah = chat('1', 'Sarah Jones', {
      evidence: [{ kind: 'email', value: 'Sarah.J@example.com', origin: 'message' }],
    });
    expect(decide(sarah, stored).result.patientId).toBeNull(); // at arrival: left for reconcile
    expect(decide(sarah, stored, true).result).toMatchObject({ patientId: 'p1', method: 'evidence' });
    // Sarah writes her husband's address: no link to Tom.
    const wrote = chat('2', 'Sarah Jones', {
      evidence: [{ kind: 'email', value: 'tom.j@example.com', origin: 'message' }],
    });
    expect(decide(wrote, stored.slice(1), true).result.patientId).toBeNull();
  });

  it("a number written in a message does not pick between namesakes (a son writing his father's mobile)", () => {
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Maris', 'Jones', { phoneRaw: '(03) 8772 6477', email: 'maris75@x.com' }), patientId: 'dad' },
      { ...chat('3', 'Maris', { phoneRaw: '+61402113729' }), patientId: 'dad' },
      { ...clinic('11', 'Maris', 'Jones', { phoneRaw: '(03) 8772 6477' }), patientId: 'son' },
    ];
    const son = chat('4', 'Maris Jones', { evidence: [{ kind: 'phone', value: '0402 113 729', origin: 'message' }] });
    expect(decide(son, stored, true).result.patientId).toBeNull();
    // Without the namesake the same message links.
    expect(decide(son, stored.slice(0, 2), true).result).toMatchObject({ patientId: 'dad', method: 'evidence' });
  });
});

describe('a unique full name (reconcile only) and conflicting identifiers', () => {
  const webchat = chat('1', 'Sarah Jones 🌸', { phoneRaw: 'n/a' });

  it('links a junk-phone web-chat contact to the only Sarah Jones of the organization', () => {
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { phoneRaw: '0412345678', dateOfBirth: '1980-01-01' }), patientId: 'p1' },
    ];
    expect(decide(webchat, stored, false).result.patientId).toBeNull(); // at arrival: left for reconcile
    expect(decide(webchat, stored, true).result).toMatchObject({ patientId: 'p1', method: 'name' });
  });

  it('not when two patients hold the name, nor when a phone conflicts', () => {
    const two: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { dateOfBirth: '1980-01-01' }), patientId: 'p1' },
      { ...clinic('11', 'Sarah', 'Jones', { dateOfBirth: '2004-05-06' }), patientId: 'p2' },
    ];
    expect(decide(webchat, two, true).result.patientId).toBeNull();
    const other: StoredIdentity[] = [
      { ...clinic('10', 'Sarah', 'Jones', { phoneRaw: '0412345678' }), patientId: 'p1' },
    ];
    expect(decide(chat('2', 'Sarah Jones', { phoneRaw: '0498765432' }), other, true).result.patientId).toBeNull();
  });

  it('same name + same date of birth + different phones and emails: two people', () => {
    const stored: StoredIdentity[] = [
      {
        ...clinic('10', 'James', 'Smith', {
          dateOfBirth: '1980-01-01',
          phoneRaw: '0412345678',
          email: 'james.smith@a.com',
        }),
        patientId: 'p1',
      },
    ];
    const stranger = clinic('11', 'James', 'Smith', {
      dateOfBirth: '1980-01-01',
      phoneRaw: '0498765432',
      email: 'jsmith@b.com',
    });
    expect(decide(stranger, stored).result.patientId).toBeNull();
  });

  it('same name on a shared family phone with their own different emails: two people', () => {
    const stored: StoredIdentity[] = [
      {
        ...clinic('10', 'Sarah', 'Jones', { phoneRaw: '(02) 9876 5432', email: 'sarah.jones@a.com' }),
        patientId: 'p1',
      },
    ];
    const daughter = chat('2', 'Sarah Jones', { phoneRaw: '+61298765432', email: 'sjones@b.com' });
    expect(decide(daughter, stored).result.patientId).toBeNull();
  });

  it('reconcile merges the junk-phone record into the only patient with its name, both ways', () => {
    const merges = planPatientMerges(
      [
        { ...chat('1', 'Hamish Park 💪', { phoneRaw: '+61429659921' }), patientId: 'a' },
        {
          source: 'manychat',
          externalId: '5',
          firstName: 'Hamish',
          lastName: 'Park',
          phoneRaw: '61429659921',
          patientId: 'a',
        },
        { ...clinic('10', 'Hamish', 'Park', { phoneRaw: '0000000000', dateOfBirth: '1966-10-18' }), patientId: 'b' },
      ],
      { defaultCountry: 'AU' },
    );
    expect(merges).toEqual([{ from: 'b', into: 'a', via: expect.any(String) }]);
  });
});

describe('shared-phone families at 20,000 patients', () => {
  it('twins Kenji and Benjamin on one phone and birthday are two people (a typo never changes the first letter)', () => {
    const stored: StoredIdentity[] = [
      { ...clinic('10', 'Kenji', 'McDonald', { phoneRaw: '0404771707', dateOfBirth: '2021-08-12' }), patientId: 'p1' },
    ];
    const twin = clinic('11', 'Benjamin', 'McDonald', { phoneRaw: '0404 771 707', dateOfBirth: '2021-08-12' });
    expect(decide(twin, stored).result.patientId).toBeNull();
    // A real slip after the first letter still counts as the nickname's formal name.
    const ben = clinic('12', 'Bnejamin', 'McDonald', { phoneRaw: '0404 771 707', dateOfBirth: '2021-08-12' });
    const withBen: StoredIdentity[] = [{ ...chat('3', 'Ben McDonald', { phoneRaw: '+61404771707' }), patientId: 'p2' }];
    expect(decide(ben, withBen).result.patientId).toBe('p2');
  });

  it('a father and son of one name on the home landline, neither with a birth date, go to review', () => {
    const stored: StoredIdentity[] = [
      {
        ...clinic('10', 'Berrian', 'Holt', { phoneRaw: '+61 8 9928 3667', email: 'berrian.holt@gmail.com' }),
        patientId: 'dad',
      },
    ];
    const d = decide(clinic('11', 'Berrian', 'Holt', { phoneRaw: '(08) 9928 3667' }), stored, true);
    expect(d.result.patientId).toBeNull();
    expect(d.detail).toContain('review: dad');
  });
});

describe('names and numbers at 20,000 patients', () => {
  it('"William" alone is not "Georgia Williams" read surname-first, even on her phone', () => {
    const stored: StoredIdentity[] = [
      {
        ...clinic('10', 'Georgia', 'Williams', { phoneRaw: '0439225321', dateOfBirth: '2002-04-02' }),
        patientId: 'p1',
      },
    ];
    const william = { source: 'manychat', externalId: '5', firstName: 'William', phoneRaw: '61439225321' };
    expect(decide(william, stored).result.patientId).toBeNull();
  });

  it('a number the clinic typed in a foreign national format still differs from another number', () => {
    const stored: StoredIdentity[] = [
      {
        ...clinic('10', 'Kasius', 'Radford', { phoneRaw: '447401932507', dateOfBirth: '1996-07-16' }),
        patientId: 'p1',
      },
    ];
    // A stranger: same name and birthday, a UK mobile in national format (unreadable with the AU default).
    const stranger = clinic('11', 'Kasius', 'Radford', { phoneRaw: '07760 949295', dateOfBirth: '1996-07-16' });
    expect(decide(stranger, stored).result.patientId).toBeNull();
    // The same number in that format is no conflict: the duplicate registration still merges.
    const duplicate = clinic('12', 'Kasius', 'Radford', { phoneRaw: '07401 932507', dateOfBirth: '1996-07-16' });
    expect(decide(duplicate, stored).result.patientId).toBe('p1');
  });

  it('a unique name held by one person split over two patients (WhatsApp and email contacts) still links', () => {
    const stored: StoredIdentity[] = [
      { ...chat('1', 'Hamoelle Carter', { phoneRaw: '+14162449324' }), patientId: 'a' },
      { ...chat('2', 'Hamoelle Carter', { email: 'hamoelle.carter91@live.com.au' }), patientId: 'b' },
    ];
    const clinikoRecord = clinic('10', 'Hamoelle', 'Carter', { phoneRaw: '0', dateOfBirth: '1986-04-14' });
    const d = decide(clinikoRecord, stored, true);
    expect(d.result.method).toBe('name');
    expect([d.result.patientId, ...d.bridges].sort()).toEqual(['a', 'b']);
    // Two holders with different phones are two people: no link.
    const two: StoredIdentity[] = [
      { ...chat('1', 'Hamoelle Carter', { phoneRaw: '+14162449324' }), patientId: 'a' },
      { ...chat('3', 'Hamoelle Carter', { phoneRaw: '+61412000111' }), patientId: 'c' },
    ];
    expect(decide(clinikoRecord, two, true).result.patientId).toBeNull();
  });

  it('reconcile: no name-only merge when a namesake shares a phone with one side (a son on the landline)', () => {
    const landline = '(02) 9689 0338';
    const merges = planPatientMerges(
      [
        // The father: his WhatsApp contact and his clinic record on the home landline.
        { ...chat('8399', 'Jalaan Walencombe', { phoneRaw: '+61421585241' }), patientId: 'dad' },
        {
          ...clinic('128417', 'Jalaan', 'Walencombe', { phoneRaw: landline, dateOfBirth: '1959-10-14' }),
          patientId: 'dad',
        },
        // The son: a clinic record with a slip in the surname on the same landline, and a junk-phone web chat.
        {
          ...clinic('128418', 'Jalaan', 'Walencomeb', { phoneRaw: landline, dateOfBirth: '2004-02-01' }),
          patientId: 'son',
        },
        { ...chat('14301', 'JALAAN WALENCOMBE 😎', { phoneRaw: 'N/A' }), patientId: 'webchat' },
      ],
      { defaultCountry: 'AU' },
    );
    expect(merges).toEqual([]);
  });
});
