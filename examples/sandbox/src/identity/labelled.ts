/**
 * Deterministic generator of a labelled identity set for evaluating `matchIdentity`.
 *
 * It models an Australian clinic (default country AU) with some foreign patients (NZ, GB, US, CA and, as at the
 * Bali clinic that broke the legacy normaliser, ID and ES), seen through three platforms:
 * - Cliniko patients: typed by reception. First/last name (typos, dropped accents), free-text phone in many
 *   national/international formats, email with odd casing, date of birth, `country_code` as hint.
 *   Children carry a parent's phone and often a parent's email; some people are registered twice.
 * - Chatwoot contacts: WhatsApp profile name only (nicknames, lower case, first name only, emoji, initials,
 *   surname first), phone in E.164, email for some, a Cliniko id in a custom attribute for some (crossRefs),
 *   occasionally a parent's contact carrying their child's Cliniko id.
 * - ManyChat subscribers: first/last name from the profile, `+61…` or WhatsApp-style `61…` digits,
 *   `phone_country_code` as hint for some.
 * Households share phones and emails: parents and children, partners on one mobile, elderly couples on one
 * landline, twins (same DOB, same surname), fathers and sons with the same full name, recycled numbers.
 * Every identity carries the ground-truth `personId`. The same seed always yields the same set.
 */
import type { IdentityInput } from '@routiq/sdk';
import { damerauLevenshtein, foldName } from '@routiq/sdk/identity';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { Rng } from '../common/prng.ts';
import { type NamePools, realisticPools, uniformPools } from './name-pool.ts';

export const DEFAULT_LABELLED_SEED = 20250627;
/**
 * The held-out seed: figures on it are reported, never tuned on (matcher changes are tuned on the default seed
 * and seeds 1–11 only).
 */
export const HELD_OUT_SEED = 4_194_301;
export const DEFAULT_LABELLED_PEOPLE = 1000;

/**
 * - `classic`: the set as first built (typos, nicknames, profile names, phone formats, households, …);
 * - `field`: classic plus what data from real chat platforms brings (issue #21.4): decorated display names,
 *   diacritics on one side only, junk or absent phones, a phone only in the WhatsApp contact inbox, contact
 *   details written in messages, and strangers with the same name and date of birth or the same name and a
 *   shared family phone (their number grows with the organization).
 */
export type LabelledNoise = 'classic' | 'field';

/** Noise kinds reported separately by the evaluation (tags on `LabelledIdentity`). */
export const NOISE_KINDS = [
  'decorated_name',
  'first_only',
  'diacritics',
  'junk_phone',
  'inbox_source_id',
  'message_evidence',
  'same_name_same_dob',
  'same_name_shared_phone',
  'shared_phone',
  'nickname',
  'typo',
  'cliniko_duplicate',
] as const;

export type PersonKind = 'adult' | 'teen' | 'child' | 'senior';
export type HouseholdKind = 'single' | 'couple' | 'family' | 'namesake' | 'seniors';

export interface LabelledPerson {
  id: string;
  householdId: string;
  householdKind: HouseholdKind;
  kind: PersonKind;
  firstName: string;
  lastName: string;
  dateOfBirth: string;
  /** The person's own mobile in E.164 (null for young children and some seniors). */
  mobile: string | null;
  email: string | null;
}

export interface LabelledIdentity extends IdentityInput {
  /** Ground truth: the person this identity belongs to. */
  personId: string;
  householdId: string;
  /** Ground truth for the phone field: the E.164 number it was rendered from. */
  truePhoneE164: string | null;
  /** Noise applied, for slicing results: `typo`, `nickname`, `shared_phone`, `guardian_ref`, … */
  tags: string[];
}

export interface LabelledSet {
  seed: number;
  defaultCountry: 'AU';
  people: LabelledPerson[];
  /** In arrival order (shuffled across platforms). */
  identities: LabelledIdentity[];
}

export interface LabelledOptions {
  seed?: number;
  /** Number of true people (default 1000, ≈ 2,100 identities). */
  people?: number;
  /** Default `classic` (the same set as before the field noise existed, for comparisons). */
  noise?: LabelledNoise;
}

// ---------------------------------------------------------------------------------------------------------
// Name pools

const MALE = [
  'James',
  'John',
  'Robert',
  'Michael',
  'William',
  'David',
  'Richard',
  'Thomas',
  'Christopher',
  'Daniel',
  'Matthew',
  'Andrew',
  'Joshua',
  'Benjamin',
  'Samuel',
  'Jack',
  'Oliver',
  'Noah',
  'Lucas',
  'Ethan',
  'Henry',
  'Alexander',
  'Nicholas',
  'Patrick',
  'Peter',
  'Stephen',
  'Timothy',
  'Anthony',
  'Joseph',
  'Edward',
  'Charles',
  'Jacob',
  'Nathan',
  'Ryan',
  'Adam',
  'Mark',
  'Paul',
  'Simon',
  'Jason',
  'Scott',
  'Aaron',
  'Dylan',
  'Hamish',
  'Angus',
  'Callum',
  'Finn',
  'Hugo',
  'José',
  'François',
  'Søren',
  'Björn',
  'Mateo',
  'Arjun',
  'Wei',
  'Minh',
  'Kenji',
  'Mohammed',
  'Gregory',
  'Jonathan',
  'Philip',
  'Zachary',
  'Wayan',
  'Ketut',
  'Ángel',
  'Tomás',
] as const;
const FEMALE = [
  'Elizabeth',
  'Margaret',
  'Katherine',
  'Jennifer',
  'Jessica',
  'Rebecca',
  'Victoria',
  'Sarah',
  'Emma',
  'Olivia',
  'Charlotte',
  'Amelia',
  'Isla',
  'Mia',
  'Grace',
  'Chloe',
  'Sophie',
  'Emily',
  'Hannah',
  'Lucy',
  'Ruby',
  'Ella',
  'Georgia',
  'Matilda',
  'Abigail',
  'Natalie',
  'Samantha',
  'Amanda',
  'Michelle',
  'Nicole',
  'Lauren',
  'Megan',
  'Rachel',
  'Laura',
  'Anna',
  'Claire',
  'Fiona',
  'Siobhán',
  'Zoë',
  'Chloé',
  'Renée',
  'Inés',
  'Mónica',
  'Léa',
  'Priya',
  'Mei',
  'Linh',
  'Aisha',
  'Fatima',
  'Isabella',
  'Eleanor',
  'Susan',
  'Deborah',
  'Patricia',
  'Made',
  'Putu',
  'Niamh',
  'Ingrid',
  'Astrid',
] as const;
const LAST = [
  'Smith',
  'Jones',
  'Williams',
  'Brown',
  'Wilson',
  'Taylor',
  'Johnson',
  'White',
  'Martin',
  'Anderson',
  'Thompson',
  'Nguyen',
  'Thomas',
  'Walker',
  'Harris',
  'Lee',
  'Ryan',
  'Robinson',
  'Kelly',
  'King',
  'Davis',
  'Wright',
  'Evans',
  'Roberts',
  'Green',
  'Hall',
  'Wood',
  'Jackson',
  'Clarke',
  'Patel',
  'Khan',
  'Lewis',
  'Phillips',
  'Mitchell',
  'Campbell',
  'Murphy',
  "O'Brien",
  "O'Connor",
  'McDonald',
  'MacKenzie',
  'Fraser',
  'Stewart',
  'Russell',
  'Scott',
  'Young',
  'Baker',
  'Hughes',
  'Edwards',
  'Turner',
  'Collins',
  'Morris',
  'Cook',
  'Bell',
  'Murray',
  'Ward',
  'Watson',
  'Hill',
  'Chapman',
  'Bennett',
  'Carter',
  'Davies',
  'Parker',
  'Price',
  'García',
  'Martínez',
  'Rodríguez',
  'Fernández',
  'López',
  'Müller',
  'Schröder',
  'Nguyễn',
  'Trần',
  'Phạm',
  'Đặng',
  'Kowalski',
  'Nowak',
  'Łukasiewicz',
  'Dubois',
  'Lefèvre',
  'Jørgensen',
  'van der Berg',
  'De Silva',
  'Smith-Jones',
  'Hamilton-Browne',
  'Wijaya',
  'Santoso',
  'Putra',
  'Sudarsana',
  'Chen',
  'Wang',
  'Zhang',
  'Liu',
  'Singh',
  'Sharma',
  'Kumar',
  'Tanaka',
  'Sato',
  'Kim',
  'Park',
  'Rossi',
  'Russo',
  'Costa',
  'Silva',
  'Papadopoulos',
  'Okafor',
  'Haddad',
  'Novak',
  'Ivanova',
  'Larsen',
  'Andersson',
  'Byrne',
  'Doyle',
  'Quinn',
] as const;

/** Hypocorisms people use on WhatsApp/Messenger. Independent of the matcher's own table on purpose. */
const NICKNAMES: Readonly<Record<string, readonly string[]>> = {
  Robert: ['Bob', 'Rob', 'Robbie'],
  Elizabeth: ['Liz', 'Beth', 'Lizzie'],
  William: ['Will', 'Bill'],
  Katherine: ['Kate', 'Katie'],
  Michael: ['Mike', 'Mick'],
  Thomas: ['Tom', 'Tommy'],
  James: ['Jim', 'Jimmy', 'Jamie'],
  David: ['Dave'],
  Daniel: ['Dan', 'Danny'],
  Matthew: ['Matt'],
  Andrew: ['Andy'],
  Joshua: ['Josh'],
  Benjamin: ['Ben'],
  Samuel: ['Sam'],
  Christopher: ['Chris'],
  Nicholas: ['Nick'],
  Patrick: ['Pat'],
  Stephen: ['Steve'],
  Timothy: ['Tim'],
  Anthony: ['Tony'],
  Joseph: ['Joe'],
  Edward: ['Ed', 'Eddie', 'Ted'],
  Charles: ['Charlie'],
  Jacob: ['Jake'],
  Alexander: ['Alex'],
  Jessica: ['Jess'],
  Jennifer: ['Jen', 'Jenny'],
  Rebecca: ['Bec', 'Becky'],
  Victoria: ['Vicky', 'Tori'],
  Margaret: ['Maggie', 'Meg'],
  Samantha: ['Sam'],
  Amanda: ['Mandy'],
  Abigail: ['Abby'],
  Nathan: ['Nate'],
  Natalie: ['Nat'],
  Isabella: ['Bella', 'Izzy'],
  Eleanor: ['Ellie'],
  Jonathan: ['Jon'],
  Richard: ['Rick', 'Richie'],
  Gregory: ['Greg'],
  Peter: ['Pete'],
  Philip: ['Phil'],
  Susan: ['Sue'],
  Deborah: ['Deb', 'Debbie'],
  Patricia: ['Trish'],
  Zachary: ['Zac'],
};

/**
 * Name frequencies: the classic set keeps its uniform lists (its figures stay comparable); the field set draws
 * from a realistic heavy-headed distribution over a large pool (`name-pool.ts`).
 */
const CLASSIC_POOLS = uniformPools(MALE, FEMALE, LAST);
let realistic: NamePools | undefined;
function poolsFor(noise: LabelledNoise): NamePools {
  if (noise === 'classic') return CLASSIC_POOLS;
  realistic ??= realisticPools(MALE, FEMALE, LAST);
  return realistic;
}

const EMAIL_DOMAINS = [
  'gmail.com',
  'hotmail.com',
  'outlook.com',
  'yahoo.com.au',
  'bigpond.com',
  'icloud.com',
  'live.com.au',
];
const REFERENCE_YEAR = 2025;

// ---------------------------------------------------------------------------------------------------------
// Phones

type PhoneCountry = 'AU' | 'NZ' | 'GB' | 'US' | 'CA' | 'ID' | 'ES';
const CALLING: Record<PhoneCountry, string> = { AU: '61', NZ: '64', GB: '44', US: '1', CA: '1', ID: '62', ES: '34' };

function mobileNsn(rng: Rng, c: PhoneCountry): string {
  switch (c) {
    case 'AU':
      return `4${rng.int(0, 3)}${rng.digits(7)}`;
    case 'NZ':
      return `2${rng.pick(['1', '2', '7'])}${rng.digits(7)}`;
    case 'GB':
      return `7${rng.pick(['4', '5', '7', '8', '9'])}${rng.digits(8)}`;
    case 'US':
      return `${rng.pick(['415', '212', '646', '312', '617', '206', '512', '303'])}${rng.int(2, 9)}${rng.digits(6)}`;
    case 'CA':
      return `${rng.pick(['604', '416', '514', '403', '613', '778', '647'])}${rng.int(2, 9)}${rng.digits(6)}`;
    case 'ID':
      return `8${rng.pick(['11', '12', '13', '21', '22', '52', '53', '57', '77', '78'])}${rng.digits(7)}`;
    case 'ES':
      return `6${rng.digits(8)}`;
  }
}

function landlineNsn(rng: Rng): string {
  return `${rng.pick(['28', '29', '38', '39', '73', '88', '89'])}${rng.digits(7)}`;
}

class PhoneBook {
  constructor(
    private readonly rng: Rng,
    private readonly used = new Set<string>(),
  ) {}
  /** Another book drawing from `rng` that never repeats a number of this one. */
  fork(rng: Rng): PhoneBook {
    return new PhoneBook(rng, this.used);
  }
  private fresh(make: () => string, country: PhoneCountry): string {
    for (let i = 0; i < 200; i++) {
      const e164 = `+${CALLING[country]}${make()}`;
      if (this.used.has(e164)) continue;
      const p = parsePhoneNumberFromString(e164);
      if (p?.isValid() && p.country === country) {
        this.used.add(e164);
        return e164;
      }
    }
    throw new Error(`could not generate a valid ${country} number`);
  }
  mobile(country: PhoneCountry): string {
    return this.fresh(() => mobileNsn(this.rng, country), country);
  }
  landline(): string {
    return this.fresh(() => landlineNsn(this.rng), 'AU');
  }
}

/** How reception types a number into Cliniko's free-text field. `hint` is the record's `country_code`. */
function clinikoPhone(rng: Rng, e164: string, hint: string | null): string {
  const p = parsePhoneNumberFromString(e164)!;
  const national = p.formatNational();
  const intl = p.formatInternational();
  const digits = e164.slice(1);
  if (p.country === 'AU') {
    const nsn = String(p.nationalNumber);
    const mobile = nsn.startsWith('4');
    return rng.weighted<string>([
      [national, 40],
      [national.replace(/[\s()]/g, ''), 18],
      [digits, 12],
      [intl, 8],
      [`+61 (0)${intl.slice(3)}`, 4],
      [national.replace(/^\(?0/, '').replace(')', ''), 5], // trunk 0 lost (Excel)
      [mobile ? national.replace(/ /g, '-') : `${national} ext ${rng.int(1, 40)}`, 5],
      [e164, 8],
    ]);
  }
  if (hint === p.country) {
    return rng.weighted<string>([
      [national, 50],
      [national.replace(/[\s()-]/g, ''), 15],
      [intl, 20],
      [digits, 15],
    ]);
  }
  return rng.weighted<string>([
    [intl, 45],
    [digits, 30],
    [`00${digits.slice(0, CALLING[p.country as PhoneCountry]?.length ?? 2)} ${intl.replace(/^\+\d+ /, '')}`, 10],
    [e164, 15],
  ]);
}

// ---------------------------------------------------------------------------------------------------------
// Names

function stripAccents(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/ø/g, 'o')
    .replace(/Ø/g, 'O')
    .replace(/ł/g, 'l')
    .replace(/Ł/g, 'L')
    .replace(/đ/g, 'd')
    .replace(/Đ/g, 'D');
}

const KEYBOARD_NEIGHBOURS: Record<string, string> = {
  a: 'sq',
  e: 'wr',
  i: 'uo',
  o: 'ip',
  u: 'yi',
  n: 'bm',
  m: 'n',
  r: 'et',
  t: 'ry',
  s: 'ad',
  l: 'k',
  h: 'gj',
  c: 'xv',
  d: 'sf',
  y: 'tu',
  k: 'jl',
  b: 'vn',
  g: 'fh',
  p: 'o',
  v: 'cb',
  w: 'qe',
  j: 'hk',
  f: 'dg',
};

/** One keystroke slip, never on the first letter, only on names of 4+ letters. */
function typo(rng: Rng, name: string): string {
  if (name.length < 4 || /\s/.test(name)) return name;
  const i = rng.int(1, name.length - 2);
  const c = name[i]!;
  switch (rng.int(0, 3)) {
    case 0:
      return name.slice(0, i) + name[i + 1] + c + name.slice(i + 2); // transposition
    case 1:
      return name.slice(0, i) + name.slice(i + 1); // deletion
    case 2:
      return name.slice(0, i) + c + name.slice(i); // doubled letter
    default: {
      const n = KEYBOARD_NEIGHBOURS[c.toLowerCase()];
      return n ? name.slice(0, i) + rng.pick(n.split('')) + name.slice(i + 1) : name.slice(0, i) + name.slice(i + 1);
    }
  }
}

function nicknameOf(rng: Rng, first: string): string | null {
  const n = NICKNAMES[first];
  return n ? rng.pick(n) : null;
}

/** Two given names a household could not tell apart in writing (same, nickname-linked or near-identical). */
function confusable(a: string, b: string): boolean {
  const fa = foldName(a);
  const fb = foldName(b);
  if (fa === fb || damerauLevenshtein(fa, fb) <= 2) return true;
  const na = [a, ...(NICKNAMES[a] ?? [])].map(foldName);
  const nb = [b, ...(NICKNAMES[b] ?? [])].map(foldName);
  return na.some((x) => nb.includes(x));
}

interface RenderedName {
  first: string | null;
  last: string | null;
  display: string | null;
  tags: string[];
}

/** A WhatsApp/Messenger profile name. */
function profileName(rng: Rng, person: LabelledPerson): RenderedName {
  const tags: string[] = [];
  let first = person.firstName;
  let last: string | null = person.lastName;
  const style = rng.weighted<string>([
    ['full', 52],
    ['nickname', 13],
    ['first_only', 12],
    ['lower', 6],
    ['initial', 5],
    ['emoji', 4],
    ['swapped', 2],
    ['typo', 3],
    ['unaccented', 3],
  ]);
  if (style === 'nickname' || (style === 'first_only' && rng.chance(0.3))) {
    const n = nicknameOf(rng, first);
    if (n) {
      first = n;
      tags.push('nickname');
    }
  }
  if (style === 'first_only') {
    last = null;
    tags.push('first_only');
  }
  if (style === 'initial') {
    last = `${person.lastName[0]}`;
    tags.push('initial');
  }
  if (style === 'typo') {
    first = typo(rng, first);
    tags.push('typo');
  }
  if (style === 'unaccented' || rng.chance(0.3)) {
    first = stripAccents(first);
    if (last) last = stripAccents(last);
  }
  let display = last ? `${first} ${last}` : first;
  if (style === 'lower') {
    display = display.toLowerCase();
    tags.push('lower');
  }
  if (style === 'emoji') {
    display = `${display} ${rng.pick(['🌸', '✨', '🏄', '💪', '☀️'])}`;
    tags.push('emoji');
  }
  if (style === 'swapped' && last) {
    display = `${last} ${first}`;
    tags.push('swapped');
  }
  const [f, ...rest] = display.split(' ');
  return { first: f ?? null, last: rest.length > 0 ? rest.join(' ') : null, display, tags };
}

function emailCase(rng: Rng, email: string): string {
  return rng.weighted<string>([
    [email, 70],
    [email.replace(/(^|[.@])([a-z])/g, (_, p: string, c: string) => p + c.toUpperCase()), 18],
    [` ${email.toUpperCase()}`, 5],
    [`${email} `, 7],
  ]);
}

// ---------------------------------------------------------------------------------------------------------
// Generator

interface Presence {
  cliniko: boolean;
  chatwoot: boolean;
  manychat: boolean;
}

interface Draft {
  person: LabelledPerson;
  phoneCountry: PhoneCountry;
  presence: Presence;
  /** Phone on the Cliniko record (may be a parent's, a partner's, a landline or an old number). */
  clinikoPhone: string | null;
  clinikoPhoneTag: string | null;
  clinikoEmail: string | null;
  /** Parent whose Chatwoot contact wrongly carries this child's Cliniko id. */
  guardianRefFrom: Draft | null;
  clinikoDuplicate: boolean;
  extraEmailContact: boolean;
}

export function generateLabelledSet(opts: LabelledOptions = {}): LabelledSet {
  const seed = opts.seed ?? DEFAULT_LABELLED_SEED;
  const target = opts.people ?? DEFAULT_LABELLED_PEOPLE;
  const rng = new Rng(seed);
  const pools = poolsFor(opts.noise ?? 'classic');
  const phones = new PhoneBook(rng);
  const usedEmails = new Set<string>();
  const drafts: Draft[] = [];
  let personSeq = 0;
  let householdSeq = 0;

  const dob = (age: number): string => {
    const year = REFERENCE_YEAR - age - (rng.chance(0.5) ? 1 : 0);
    return `${year}-${String(rng.int(1, 12)).padStart(2, '0')}-${String(rng.int(1, 28)).padStart(2, '0')}`;
  };
  const emailFor = (first: string, last: string, r: Rng = rng): string => {
    const f = foldName(first).replace(/ /g, '');
    const l = foldName(last).replace(/ /g, '');
    for (let i = 0; ; i++) {
      const local = r.weighted<string>([
        [`${f}.${l}`, 40],
        [`${f}${l}`, 20],
        [`${f[0]}${l}`, 15],
        [`${f}.${l}${r.int(1, 99)}`, 15],
        [`${f}${r.int(70, 99)}`, 10],
      ]);
      const email = `${i > 0 ? `${local}${i}` : local}@${r.pick(EMAIL_DOMAINS)}`;
      if (!usedEmails.has(email)) {
        usedEmails.add(email);
        return email;
      }
    }
  };
  const pickFirst = (female: boolean, avoid: readonly string[]): string => {
    for (;;) {
      const name = (female ? pools.female : pools.male).pick(rng);
      if (!avoid.some((a) => confusable(a, name))) return name;
    }
  };
  const phoneCountry = (): PhoneCountry =>
    rng.weighted<PhoneCountry>([
      ['AU', 84],
      ['NZ', 4],
      ['GB', 4],
      ['US', 2],
      ['CA', 1],
      ['ID', 3],
      ['ES', 2],
    ]);
  const newPerson = (
    householdId: string,
    householdKind: HouseholdKind,
    kind: PersonKind,
    first: string,
    last: string,
    age: number,
    country: PhoneCountry,
    ownMobile: boolean,
    hasEmail: boolean,
  ): Draft => {
    const person: LabelledPerson = {
      id: `person_${++personSeq}`,
      householdId,
      householdKind,
      kind,
      firstName: first,
      lastName: last,
      dateOfBirth: dob(age),
      mobile: ownMobile ? phones.mobile(country) : null,
      email: hasEmail ? emailFor(first, last) : null,
    };
    const draft: Draft = {
      person,
      phoneCountry: country,
      presence: { cliniko: false, chatwoot: false, manychat: false },
      clinikoPhone: person.mobile,
      clinikoPhoneTag: null,
      clinikoEmail: person.email && rng.chance(0.85) ? person.email : null,
      guardianRefFrom: null,
      clinikoDuplicate: false,
      extraEmailContact: false,
    };
    drafts.push(draft);
    return draft;
  };
  const adultPresence = (d: Draft): void => {
    const messaging = d.person.mobile !== null;
    d.presence.cliniko = rng.chance(0.9);
    d.presence.chatwoot = messaging && rng.chance(0.88);
    d.presence.manychat = messaging && rng.chance(0.8);
    if (!d.presence.cliniko && !d.presence.chatwoot && !d.presence.manychat) {
      if (messaging && rng.chance(0.5)) d.presence.chatwoot = true;
      else d.presence.cliniko = true;
    }
  };

  while (personSeq < target) {
    const hh = `household_${++householdSeq}`;
    const kind = rng.weighted<HouseholdKind>([
      ['single', 50],
      ['couple', 18],
      ['family', 25],
      ['namesake', 2],
      ['seniors', 5],
    ]);
    const last = pools.last.pick(rng);
    const country = phoneCountry();
    if (kind === 'single') {
      const d = newPerson(
        hh,
        kind,
        'adult',
        pickFirst(rng.chance(0.5), []),
        last,
        rng.int(18, 80),
        country,
        true,
        rng.chance(0.85),
      );
      adultPresence(d);
    } else if (kind === 'couple') {
      const a = newPerson(
        hh,
        kind,
        'adult',
        pickFirst(false, []),
        last,
        rng.int(22, 75),
        country,
        true,
        rng.chance(0.85),
      );
      const sharesPhone = rng.chance(0.35);
      const bLast = rng.chance(0.7) ? last : pools.last.pick(rng);
      const b = newPerson(
        hh,
        kind,
        'adult',
        pickFirst(true, [a.person.firstName]),
        bLast,
        rng.int(22, 75),
        country,
        !sharesPhone,
        rng.chance(0.8),
      );
      adultPresence(a);
      adultPresence(b);
      if (sharesPhone) {
        b.clinikoPhone = a.person.mobile;
        b.clinikoPhoneTag = 'shared_phone';
        a.clinikoPhoneTag = 'shared_phone';
        b.presence.cliniko = true;
      }
      if (rng.chance(0.1) && a.clinikoEmail) b.clinikoEmail = a.clinikoEmail; // joint email in Cliniko
    } else if (kind === 'family') {
      const mother = newPerson(
        hh,
        kind,
        'adult',
        pickFirst(true, []),
        last,
        rng.int(28, 50),
        country,
        true,
        rng.chance(0.9),
      );
      adultPresence(mother);
      const parents = [mother];
      if (rng.chance(0.6)) {
        const father = newPerson(
          hh,
          kind,
          'adult',
          pickFirst(false, [mother.person.firstName]),
          last,
          rng.int(28, 55),
          country,
          true,
          rng.chance(0.85),
        );
        adultPresence(father);
        parents.push(father);
      }
      const names = parents.map((p) => p.person.firstName);
      const children = rng.weighted<number>([
        [1, 45],
        [2, 40],
        [3, 15],
      ]);
      const twins = children >= 2 && rng.chance(0.15);
      let twinDob: string | null = null;
      for (let i = 0; i < children; i++) {
        const age = rng.int(2, 17);
        const teen = age >= 14;
        const ownMobile = teen && rng.chance(0.4);
        const first = pickFirst(rng.chance(0.5), names);
        names.push(first);
        const child = newPerson(hh, kind, teen ? 'teen' : 'child', first, last, age, country, ownMobile, false);
        if (twins && i < 2) {
          if (twinDob) {
            child.person.dateOfBirth = twinDob;
            child.clinikoPhoneTag = 'twin';
          } else twinDob = child.person.dateOfBirth;
        }
        const guardian = rng.chance(0.7) ? mother : (parents[1] ?? mother);
        child.presence.cliniko = true;
        if (!ownMobile || rng.chance(0.15)) {
          child.clinikoPhone = guardian.person.mobile;
          child.clinikoPhoneTag = child.clinikoPhoneTag ?? 'shared_phone';
          guardian.clinikoPhoneTag = 'shared_phone';
        }
        child.clinikoEmail = rng.chance(0.7) ? guardian.person.email : null;
        if (ownMobile) {
          child.presence.manychat = rng.chance(0.6);
          child.presence.chatwoot = rng.chance(0.4);
        }
        if (i === 0 && guardian.presence.chatwoot && rng.chance(0.12)) child.guardianRefFrom = guardian;
      }
    } else if (kind === 'namesake') {
      // Father and son with the same full name sharing the home landline in Cliniko.
      const first = pickFirst(false, []);
      const home = phones.landline();
      const sr = newPerson(hh, kind, 'adult', first, last, rng.int(50, 70), 'AU', true, true);
      const jr = newPerson(hh, kind, 'teen', first, last, rng.int(14, 24), 'AU', false, false);
      for (const d of [sr, jr]) {
        d.presence.cliniko = true;
        d.clinikoPhone = home;
        d.clinikoPhoneTag = 'namesake';
      }
      sr.presence.chatwoot = rng.chance(0.7);
      sr.clinikoEmail = sr.person.email;
    } else {
      // Elderly couple (or widow) on one landline, not on messaging.
      const home = phones.landline();
      const a = newPerson(
        hh,
        kind,
        'senior',
        pickFirst(false, []),
        last,
        rng.int(70, 92),
        'AU',
        false,
        rng.chance(0.4),
      );
      a.presence.cliniko = true;
      a.clinikoPhone = home;
      if (rng.chance(0.7)) {
        const b = newPerson(
          hh,
          kind,
          'senior',
          pickFirst(true, [a.person.firstName]),
          last,
          rng.int(70, 92),
          'AU',
          false,
          false,
        );
        b.presence.cliniko = true;
        b.clinikoPhone = home;
        b.clinikoEmail = rng.chance(0.3) ? a.person.email : null;
        a.clinikoPhoneTag = 'shared_phone';
        b.clinikoPhoneTag = 'shared_phone';
      }
    }
  }

  // Changed and recycled numbers, duplicates in Cliniko, second Chatwoot contacts.
  const adults = drafts.filter((d) => d.person.kind === 'adult' && d.person.mobile);
  for (const d of adults) {
    const messaging = d.presence.chatwoot || d.presence.manychat;
    if (d.presence.cliniko && messaging && d.clinikoPhoneTag === null && rng.chance(0.02)) {
      d.clinikoPhone = phones.mobile(d.phoneCountry); // old number, nobody's now
      d.clinikoPhoneTag = 'changed_number';
      d.clinikoEmail = d.person.email;
    } else if (d.presence.cliniko && messaging && d.clinikoPhoneTag === null && rng.chance(0.01)) {
      const other = rng.pick(adults);
      if (other !== d && other.person.householdId !== d.person.householdId && other.phoneCountry === d.phoneCountry) {
        d.clinikoPhone = other.person.mobile; // old number since given to someone else
        d.clinikoPhoneTag = 'recycled_number';
        d.clinikoEmail = d.person.email;
      }
    }
    if (d.presence.cliniko && rng.chance(0.03)) d.clinikoDuplicate = true;
    if (d.presence.chatwoot && d.clinikoEmail && d.presence.cliniko && rng.chance(0.05)) d.extraEmailContact = true;
  }

  // Render identities.
  const identities: LabelledIdentity[] = [];
  const clinikoIds = new Map<Draft, string>();
  let clinikoSeq = 100_000 + rng.int(0, 50_000);
  let chatwootSeq = 1 + rng.int(0, 5_000);
  let manychatSeq = 1_000_000_000 + rng.int(0, 1_000_000);

  const clinikoHint = (d: Draft, e164: string | null): string | null => {
    const c = e164 ? (parsePhoneNumberFromString(e164)?.country ?? null) : null;
    if (c && c !== 'AU') return rng.chance(0.7) ? c : null;
    return rng.chance(0.5) ? 'AU' : d.phoneCountry === 'AU' ? null : 'AU';
  };
  const renderCliniko = (d: Draft, duplicate: boolean): LabelledIdentity => {
    const id = String(++clinikoSeq);
    const p = d.person;
    const tags: string[] = duplicate ? ['cliniko_duplicate'] : [];
    let first = p.firstName;
    let last = p.lastName;
    if (rng.chance(duplicate ? 0.3 : 0.03)) {
      first = typo(rng, first);
      tags.push('typo');
    } else if (rng.chance(duplicate ? 0.1 : 0.02)) {
      last = typo(rng, last);
      tags.push('typo');
    }
    if (rng.chance(0.12)) {
      first = stripAccents(first);
      last = stripAccents(last);
    }
    const phone = duplicate && rng.chance(0.3) ? null : d.clinikoPhone;
    const hint = clinikoHint(d, phone);
    if (d.clinikoPhoneTag && phone) tags.push(d.clinikoPhoneTag);
    const email = duplicate && rng.chance(0.4) ? null : d.clinikoEmail;
    return {
      source: 'cliniko',
      externalId: id,
      firstName: first,
      lastName: last,
      email: email ? emailCase(rng, email) : null,
      phoneRaw: phone ? clinikoPhone(rng, phone, hint) : null,
      dateOfBirth: rng.chance(duplicate ? 0.9 : 0.96) ? p.dateOfBirth : null,
      countryHint: hint,
      personId: p.id,
      householdId: p.householdId,
      truePhoneE164: phone,
      tags,
    };
  };

  for (const d of drafts) {
    if (d.presence.cliniko) {
      const c = renderCliniko(d, false);
      clinikoIds.set(d, c.externalId);
      identities.push(c);
      if (d.clinikoDuplicate) identities.push(renderCliniko(d, true));
    }
  }
  const guardianRefs = new Map<Draft, Draft>();
  for (const d of drafts) if (d.guardianRefFrom) guardianRefs.set(d.guardianRefFrom, d);

  for (const d of drafts) {
    const p = d.person;
    if (d.presence.chatwoot && p.mobile) {
      const name = profileName(rng, p);
      const tags = [...name.tags];
      const crossRefs: Array<{ source: string; externalId: string }> = [];
      const child = guardianRefs.get(d);
      const childId = child ? clinikoIds.get(child) : undefined;
      const ownId = clinikoIds.get(d);
      if (childId) {
        crossRefs.push({ source: 'cliniko', externalId: childId });
        tags.push('guardian_ref');
      } else if (ownId && rng.chance(d.clinikoPhoneTag === 'changed_number' ? 0.6 : 0.35)) {
        crossRefs.push({ source: 'cliniko', externalId: ownId });
        tags.push('cross_ref');
      } else if (d.person.householdKind === 'namesake' && ownId) {
        crossRefs.push({ source: 'cliniko', externalId: ownId });
        tags.push('cross_ref');
      }
      const nameless = !childId && rng.chance(0.01);
      const email = p.email && rng.chance(d.clinikoPhoneTag === 'changed_number' ? 0.6 : 0.25) ? p.email : null;
      // Chatwoot keeps emails unique per account: a second (email-channel) contact exists only without one here.
      if (email) d.extraEmailContact = false;
      const identity: LabelledIdentity = {
        source: 'chatwoot',
        externalId: String(++chatwootSeq),
        displayName: nameless ? null : name.display,
        email,
        phoneE164: p.mobile,
        phoneRaw: p.mobile,
        personId: p.id,
        householdId: p.householdId,
        truePhoneE164: p.mobile,
        tags: nameless ? [...tags, 'nameless'] : tags,
      };
      if (crossRefs.length > 0) identity.crossRefs = crossRefs;
      identities.push(identity);
    }
    if (d.extraEmailContact && p.email) {
      identities.push({
        source: 'chatwoot',
        externalId: String(++chatwootSeq),
        displayName: `${p.firstName} ${p.lastName}`,
        email: p.email,
        phoneE164: null,
        phoneRaw: null,
        personId: p.id,
        householdId: p.householdId,
        truePhoneE164: null,
        tags: ['email_channel'],
      });
    }
    if (d.presence.manychat && p.mobile) {
      const name = profileName(rng, p);
      const nameless = rng.chance(0.01);
      const country = parsePhoneNumberFromString(p.mobile)?.country ?? null;
      identities.push({
        source: 'manychat',
        externalId: String(++manychatSeq),
        firstName: nameless ? null : name.first,
        lastName: nameless ? null : name.last,
        email: p.email && rng.chance(0.15) ? emailCase(rng, p.email) : null,
        phoneRaw: rng.chance(0.55) ? p.mobile : p.mobile.slice(1),
        countryHint: country && rng.chance(0.3) ? country : null,
        personId: p.id,
        householdId: p.householdId,
        truePhoneE164: p.mobile,
        tags: nameless ? [...name.tags, 'nameless'] : name.tags,
      });
    }
  }

  if (opts.noise === 'field') {
    const ids = { cliniko: () => String(++clinikoSeq), chatwoot: () => String(++chatwootSeq) };
    addFieldNoise({
      rng: new Rng((seed ^ 0x2545f491) >>> 0),
      pools,
      people: drafts.map((d) => ({ person: d.person, country: d.phoneCountry })),
      identities,
      phones,
      emailFor,
      nextId: ids,
      newPerson: (p) => {
        drafts.push({
          person: p,
          phoneCountry: 'AU',
          presence: { cliniko: true, chatwoot: false, manychat: false },
          clinikoPhone: null,
          clinikoPhoneTag: null,
          clinikoEmail: null,
          guardianRefFrom: null,
          clinikoDuplicate: false,
          extraEmailContact: false,
        });
        p.id = `person_${++personSeq}`;
        return p;
      },
      newHousehold: () => `household_${++householdSeq}`,
    });
  }

  rng.shuffle(identities);
  return { seed, defaultCountry: 'AU', people: drafts.map((d) => d.person), identities };
}

// ---------------------------------------------------------------------------------------------------------
// Field noise (issue #21.4): what independent chat data brings that the classic set lacked

const EMOJI = ['🌸', '✨', '💕', '😊', '🙏', '💪', '☀️', '🌺', '🦋', '❤️', '🏄‍♂️', '👑', '🇦🇺', '⚽', '🌿'];
const WRAPS: ReadonlyArray<readonly [string, string]> = [
  ['★ ', ' ★'],
  ['~', '~'],
  ['✿ ', ' ✿'],
  ['【', '】'],
  ['• ', ' •'],
  ['꧁', '꧂'],
  ['*', '*'],
  ['♡ ', ' ♡'],
];
const TRAILING = [
  ' | Mum of 3',
  ' (work)',
  ' - Pilates',
  ' 🏠 Bondi',
  ' xx',
  '.',
  '!!',
  ' 🇦🇺',
  ' ✌🏼',
  ' (Mum)',
  ' | Physio',
  ' 💼 Real Estate',
  ' 🙂🙂',
  ' :)',
  ' // Sydney',
];
/** What reception and web-chat forms store when there is no real number. */
const JUNK_PHONES = ['12345', '+61', 'n/a', 'N/A', '0', '-', '0000000000', 'none', '.', null] as const;

/** A display name as people decorate it on WhatsApp and web chat. */
export function decorateName(rng: Rng, name: string): string {
  const style = rng.weighted<string>([
    ['emoji_after', 28],
    ['emoji_before', 14],
    ['wrapped', 12],
    ['trailing', 24],
    ['shout', 7],
    ['emoji_between', 5],
    ['joined', 10],
  ]);
  switch (style) {
    case 'emoji_after':
      return `${name} ${rng.pick(EMOJI)}${rng.chance(0.4) ? rng.pick(EMOJI) : ''}`;
    case 'emoji_before':
      return `${rng.pick(EMOJI)}${rng.chance(0.5) ? ' ' : ''}${name}`;
    case 'wrapped': {
      const [l, r] = rng.pick(WRAPS);
      return `${l}${name}${r}`;
    }
    case 'trailing':
      return `${name}${rng.pick(TRAILING)}`;
    case 'shout':
      return `${name.toUpperCase()}${rng.pick(['', '!!', ' 😎'])}`;
    case 'emoji_between': {
      const i = name.indexOf(' ');
      return i > 0 ? `${name.slice(0, i)} ${rng.pick(EMOJI)} ${name.slice(i + 1)}` : `${name} ${rng.pick(EMOJI)}`;
    }
    default:
      return name.replace(/ /g, rng.pick(['.', '_']));
  }
}

/** Chatwoot's connector derives first/last from the display name: the first word, and the rest. */
function splitLikeConnector(l: LabelledIdentity): void {
  const name = l.displayName;
  if (!name) return;
  const i = name.indexOf(' ');
  l.firstName = (i >= 0 ? name.slice(0, i) : name).trim();
  l.lastName = i >= 0 ? name.slice(i + 1).trim() : null;
}

interface FieldNoiseInput {
  rng: Rng;
  pools: NamePools;
  people: Array<{ person: LabelledPerson; country: PhoneCountry }>;
  identities: LabelledIdentity[];
  phones: PhoneBook;
  emailFor: (first: string, last: string, r: Rng) => string;
  nextId: { cliniko: () => string; chatwoot: () => string };
  newPerson: (p: LabelledPerson) => LabelledPerson;
  newHousehold: () => string;
}

function addTag(l: LabelledIdentity, tag: string): void {
  if (!l.tags.includes(tag)) l.tags.push(tag);
}

function nationalFormat(e164: string): string {
  return parsePhoneNumberFromString(e164)?.formatNational() ?? e164;
}

function addFieldNoise(x: FieldNoiseInput): void {
  const f = x.rng;
  const phones = x.phones.fork(f);
  const byPerson = new Map<string, LabelledIdentity[]>();
  for (const l of x.identities) byPerson.set(l.personId, [...(byPerson.get(l.personId) ?? []), l]);
  const original = x.people.slice();
  const adults = original.filter((p) => p.person.kind === 'adult' && p.person.mobile);

  // Junk or absent phones on Cliniko records whose person also writes from a chat platform: nothing but the
  // name is left to link them (the email and the cross-reference go too).
  for (const { person } of original) {
    const ids = byPerson.get(person.id) ?? [];
    const clin = ids.find((l) => l.source === 'cliniko' && !l.tags.includes('cliniko_duplicate'));
    const chat = ids.filter((l) => l.source !== 'cliniko');
    if (!clin || chat.length === 0 || !f.chance(0.07)) continue;
    clin.phoneRaw = f.pick(JUNK_PHONES);
    clin.truePhoneE164 = null;
    clin.email = null;
    clin.tags = clin.tags.filter((t) => !['shared_phone', 'twin', 'changed_number', 'recycled_number'].includes(t));
    addTag(clin, 'junk_phone');
    for (const c of chat) {
      if (c.crossRefs?.some((r) => r.externalId === clin.externalId)) {
        delete c.crossRefs;
        c.tags = c.tags.filter((t) => t !== 'cross_ref');
      }
      addTag(c, 'junk_phone');
    }
  }

  // A WhatsApp contact whose phone field is empty: the number is only in its contact inbox (`source_id`).
  for (const l of x.identities) {
    if (l.source !== 'chatwoot' || !l.phoneE164 || !f.chance(0.12)) continue;
    l.evidence = [{ kind: 'phone', value: l.phoneE164.slice(1), origin: 'inbox' }];
    l.phoneE164 = null;
    l.phoneRaw = null;
    addTag(l, 'inbox_source_id');
  }

  // Web-chat contacts: a name typed into the pre-chat form, a junk or no phone; some write their email or phone
  // in the conversation (now and then a household member's number: "call my husband on …").
  for (const { person } of original) {
    const ids = byPerson.get(person.id) ?? [];
    if (!ids.some((l) => l.source === 'cliniko') || !f.chance(0.06)) continue;
    const name = profileName(f, person);
    const display = name.display && f.chance(0.3) ? decorateName(f, name.display) : name.display;
    const l: LabelledIdentity = {
      source: 'chatwoot',
      externalId: x.nextId.chatwoot(),
      displayName: display,
      email: null,
      phoneRaw: f.chance(0.5) ? f.pick(JUNK_PHONES) : null,
      phoneE164: null,
      personId: person.id,
      householdId: person.householdId,
      truePhoneE164: null,
      tags: [...name.tags, 'webchat'],
    };
    if (display !== name.display) addTag(l, 'decorated_name');
    const evidence = f.chance(0.6);
    if (evidence && person.email && f.chance(0.5)) {
      l.evidence = [{ kind: 'email', value: person.email, origin: 'message' }];
    } else if (evidence) {
      const other = original.find(
        (o) => o.person.householdId === person.householdId && o.person.id !== person.id && o.person.mobile,
      );
      const phone = other && f.chance(0.15) ? other.person.mobile : person.mobile;
      if (phone)
        l.evidence = [{ kind: 'phone', value: f.chance(0.5) ? nationalFormat(phone) : phone, origin: 'message' }];
    }
    addTag(l, l.evidence ? 'message_evidence' : 'junk_phone');
    x.identities.push(l);
    ids.push(l);
    byPerson.set(person.id, ids);
  }

  // Decorated display names, and Chatwoot first/last names as its connector derives them from the display name.
  for (const l of x.identities) {
    if (l.source === 'chatwoot') {
      if (l.displayName && !l.tags.includes('webchat') && f.chance(0.2)) {
        l.displayName = decorateName(f, l.displayName);
        addTag(l, 'decorated_name');
      }
      splitLikeConnector(l);
    } else if (l.source === 'manychat' && l.firstName && f.chance(0.15)) {
      const full = decorateName(f, [l.firstName, l.lastName].filter(Boolean).join(' '));
      const i = full.indexOf(' ');
      l.firstName = i >= 0 ? full.slice(0, i) : full;
      l.lastName = i >= 0 ? full.slice(i + 1) : null;
      addTag(l, 'decorated_name');
    }
  }

  // Diacritics on one side only: the clinic typed "Jose Garcia", WhatsApp says "José García" (or the reverse).
  for (const { person } of original) {
    const plain = stripAccents(`${person.firstName} ${person.lastName}`);
    if (plain === `${person.firstName} ${person.lastName}`) continue;
    const ids = byPerson.get(person.id) ?? [];
    const clin = ids.filter((l) => l.source === 'cliniko');
    const chat = ids.filter((l) => l.source !== 'cliniko');
    if (clin.length === 0 || chat.length === 0) continue;
    const clinicFolded = f.chance(0.5);
    const accent = (v: string | null | undefined): string | null =>
      v
        ? v
            .replace(stripAccents(person.firstName), person.firstName)
            .replace(stripAccents(person.lastName), person.lastName)
        : null;
    for (const c of clin) {
      c.firstName = clinicFolded ? stripAccents(c.firstName ?? '') : accent(c.firstName);
      c.lastName = clinicFolded ? stripAccents(c.lastName ?? '') : accent(c.lastName);
      addTag(c, 'diacritics');
    }
    for (const c of chat) {
      for (const k of ['displayName', 'firstName', 'lastName'] as const) {
        const v = c[k];
        if (v) c[k] = clinicFolded ? accent(v) : stripAccents(v);
      }
      addTag(c, 'diacritics');
    }
  }

  // Strangers: same full name and date of birth (common at 20,000 patients), and namesakes sharing a family
  // phone whose other identifiers differ. About one of each per 250 people.
  const strangers = Math.max(1, Math.round(original.length / 250));
  const clinikoRecord = (
    p: LabelledPerson,
    phone: string | null,
    dob: string | null,
    tag: string,
  ): LabelledIdentity => ({
    source: 'cliniko',
    externalId: x.nextId.cliniko(),
    firstName: p.firstName,
    lastName: p.lastName,
    email: p.email,
    phoneRaw: phone ? (f.chance(0.6) ? nationalFormat(phone) : phone) : null,
    dateOfBirth: dob,
    countryHint: f.chance(0.5) ? 'AU' : null,
    personId: p.id,
    householdId: p.householdId,
    truePhoneE164: phone,
    tags: [tag],
  });
  const chatContact = (p: LabelledPerson, tag: string): LabelledIdentity => {
    const name = profileName(f, p);
    const l: LabelledIdentity = {
      source: 'chatwoot',
      externalId: x.nextId.chatwoot(),
      displayName: name.display,
      email: null,
      phoneE164: p.mobile,
      phoneRaw: p.mobile,
      personId: p.id,
      householdId: p.householdId,
      truePhoneE164: p.mobile,
      tags: [...name.tags, tag],
    };
    splitLikeConnector(l);
    return l;
  };
  const person = (first: string, last: string, dob: string, country: PhoneCountry): LabelledPerson =>
    x.newPerson({
      id: '',
      householdId: x.newHousehold(),
      householdKind: 'single',
      kind: 'adult',
      firstName: first,
      lastName: last,
      dateOfBirth: dob,
      mobile: phones.mobile(country),
      email: x.emailFor(first, last, f),
    });
  for (let i = 0; i < strangers && adults.length > 0; i++) {
    const twin = f.pick(adults);
    const p = twin.person;
    const s = person(p.firstName, p.lastName, p.dateOfBirth, twin.country);
    const tag = 'same_name_same_dob';
    x.identities.push(clinikoRecord(s, s.mobile, s.dateOfBirth, tag));
    if (f.chance(0.5)) x.identities.push(chatContact(s, tag));
    for (const l of byPerson.get(p.id) ?? []) if (l.source === 'cliniko') addTag(l, tag);
  }
  for (let i = 0; i < strangers; i++) {
    const first = (f.chance(0.5) ? x.pools.female : x.pools.male).pick(f);
    const last = x.pools.last.pick(f);
    const home = phones.landline();
    const tag = 'same_name_shared_phone';
    const older = person(first, last, `${REFERENCE_YEAR - f.int(45, 70)}-0${f.int(1, 9)}-1${f.int(0, 9)}`, 'AU');
    const younger = person(first, last, `${REFERENCE_YEAR - f.int(18, 30)}-0${f.int(1, 9)}-2${f.int(0, 8)}`, 'AU');
    younger.householdId = older.householdId;
    older.householdKind = 'namesake';
    younger.householdKind = 'namesake';
    const withoutDob = f.chance(0.6) ? f.pick([older, younger]) : null;
    for (const p of [older, younger]) {
      x.identities.push(clinikoRecord(p, home, p === withoutDob ? null : p.dateOfBirth, tag));
      if (f.chance(0.6)) x.identities.push(chatContact(p, tag));
    }
  }
}

/** The identity as a connector would hand it to the matcher (labels removed). */
export function toIdentityInput(l: LabelledIdentity): IdentityInput {
  const { personId: _p, householdId: _h, truePhoneE164: _t, tags: _tags, ...identity } = l;
  return identity;
}
