/**
 * One pool of people per tenant, shared by the three simulators. The i-th account (Chatwoot),
 * user (Cliniko) and page (ManyChat) of a run all draw from pool i, so the same person can show up
 * on several platforms, under slightly different names and phone formats, as in real life.
 */
import { type Rng, rngFor } from './prng.ts';
import { DAY, HOUR, SECOND } from './time.ts';

export type Country = 'AU' | 'NZ' | 'UK' | 'US' | 'ID';

export interface Phone {
  country: Country;
  kind: 'mobile' | 'landline';
  /** E.164, e.g. +61412345678. */
  e164: string;
}

export interface TenantProfile {
  name: string;
  city: string;
  state: string;
  postCode: string;
  countryCode: string;
  /** IANA zone of the clinic. */
  timeZone: string;
  /** Cliniko's UI label for the zone. */
  timeZoneLabel: string;
  /** Fixed UTC offset in minutes used for ManyChat's local timestamps. */
  utcOffsetMinutes: number;
  countryMix: ReadonlyArray<readonly [Country, number]>;
}

const PROFILES: readonly TenantProfile[] = [
  {
    name: 'Surf Rehab',
    city: 'Canggu',
    state: 'Bali',
    postCode: '80351',
    countryCode: 'ID',
    timeZone: 'Asia/Makassar',
    timeZoneLabel: 'Perth',
    utcOffsetMinutes: 480,
    countryMix: [
      ['AU', 40],
      ['ID', 18],
      ['UK', 16],
      ['NZ', 12],
      ['US', 14],
    ],
  },
  {
    name: 'Bondi Physio & Pilates',
    city: 'Bondi Beach',
    state: 'NSW',
    postCode: '2026',
    countryCode: 'AU',
    timeZone: 'Australia/Sydney',
    timeZoneLabel: 'Sydney',
    utcOffsetMinutes: 660,
    countryMix: [
      ['AU', 80],
      ['NZ', 8],
      ['UK', 8],
      ['US', 4],
    ],
  },
  {
    name: 'Ponsonby Sports Clinic',
    city: 'Auckland',
    state: 'Auckland',
    postCode: '1011',
    countryCode: 'NZ',
    timeZone: 'Pacific/Auckland',
    timeZoneLabel: 'Auckland',
    utcOffsetMinutes: 780,
    countryMix: [
      ['NZ', 75],
      ['AU', 15],
      ['UK', 10],
    ],
  },
  {
    name: 'Fitzroy Osteopathy',
    city: 'Fitzroy',
    state: 'VIC',
    postCode: '3065',
    countryCode: 'AU',
    timeZone: 'Australia/Melbourne',
    timeZoneLabel: 'Melbourne',
    utcOffsetMinutes: 660,
    countryMix: [
      ['AU', 85],
      ['UK', 7],
      ['US', 4],
      ['NZ', 4],
    ],
  },
  {
    name: 'Brisbane Back & Neck',
    city: 'Brisbane',
    state: 'QLD',
    postCode: '4000',
    countryCode: 'AU',
    timeZone: 'Australia/Brisbane',
    timeZoneLabel: 'Brisbane',
    utcOffsetMinutes: 600,
    countryMix: [
      ['AU', 85],
      ['NZ', 7],
      ['UK', 5],
      ['US', 3],
    ],
  },
];

export function tenantProfile(tenant: number): TenantProfile {
  const base = PROFILES[tenant % PROFILES.length] as TenantProfile;
  const round = Math.floor(tenant / PROFILES.length);
  return round === 0 ? base : { ...base, name: `${base.name} ${round + 1}` };
}

const FIRST_F = [
  'Olivia',
  'Charlotte',
  'Amelia',
  'Isla',
  'Mia',
  'Ava',
  'Grace',
  'Chloé',
  'Zoë',
  'Renée',
  'Siân',
  'Niamh',
  'Aoife',
  'Māia',
  'Aroha',
  'Ngaio',
  'Matilda',
  'Harper',
  'Sophie',
  'Lily',
  'Léa',
  'Anaïs',
  'Saoirse',
  'Hannah',
  'Emily',
  'Jessica',
  'Sarah',
  'Priya',
  'Mei',
  'Ruby',
  'Willow',
  'Freya',
  'Inés',
  'Ellie',
  'Georgia',
] as const;
const FIRST_M = [
  'Jack',
  'Oliver',
  'Noah',
  'William',
  'Leo',
  'Lucas',
  'Thomas',
  'Henry',
  'James',
  'Seán',
  'Tāne',
  'Nikau',
  'Liam',
  'Ethan',
  'Mason',
  'José',
  'Matías',
  'Björn',
  'François',
  'Darragh',
  'Eoin',
  'Rhys',
  'Hemi',
  'Arjun',
  'Wei',
  'Finn',
  'Hugo',
  'Joaquín',
  'Callum',
  'Ryan',
  'Ben',
  'Sam',
] as const;
const LAST = [
  'Smith',
  'Jones',
  'Williams',
  'Brown',
  'Wilson',
  'Taylor',
  'Nguyễn',
  'Nguyen',
  'Tran',
  "O'Brien",
  "O'Connor",
  'Müller',
  'García',
  'Martínez',
  'Kowalski',
  'Ó Súilleabháin',
  'MacDonald',
  'Ngata',
  'Te Whare',
  'Walker',
  'White',
  'Thompson',
  'Chen',
  'Wang',
  'Patel',
  'Singh',
  'Kelly',
  'Murphy',
  'Ryan',
  'Campbell',
  'Robinson',
  'Clarke',
  'Hughes',
  'Lefèvre',
  'Søndergaard',
  'Jørgensen',
  'Dubois',
  'Rossi',
  'Costa',
  'Papadopoulos',
  'Horváth',
  'Smith-Jones',
  'van der Berg',
  'McKenzie',
] as const;
const ID_FIRST_F = ['Ni Luh', 'Dewi', 'Ayu', 'Kadek', 'Komang', 'Putu', 'Sari', 'Wulan'] as const;
const ID_FIRST_M = ['Made', 'Ketut', 'Wayan', 'Agus', 'Nyoman', 'Gede', 'Putu', 'Bayu'] as const;
const ID_LAST = ['Sudarsana', 'Wijaya', 'Pratama', 'Santoso', 'Saputra', 'Kusuma', 'Adnyana', 'Suartana'] as const;

const EMAIL_DOMAINS: Record<Country, readonly string[]> = {
  AU: ['gmail.com', 'outlook.com', 'icloud.com', 'bigpond.com', 'hotmail.com', 'optusnet.com.au'],
  NZ: ['gmail.com', 'xtra.co.nz', 'outlook.com', 'icloud.com'],
  UK: ['gmail.com', 'hotmail.co.uk', 'btinternet.com', 'outlook.com', 'yahoo.co.uk'],
  US: ['gmail.com', 'yahoo.com', 'outlook.com', 'icloud.com', 'protonmail.com'],
  ID: ['gmail.com', 'yahoo.co.id'],
};

const OCCUPATIONS = [
  'Teacher',
  'Nurse',
  'Surf instructor',
  'Software engineer',
  'Barista',
  'Builder',
  'Retired',
  '',
  '',
];

export interface Person {
  idx: number;
  firstName: string;
  lastName: string;
  preferredName: string | null;
  sex: 'Male' | 'Female';
  dob: string | null;
  /** Canonical lower-case email (what Chatwoot stores). */
  email: string | null;
  /** Email as the clinic typed it (Cliniko keeps the case). */
  emailAsTyped: string | null;
  country: Country;
  mobile: Phone | null;
  landline: Phone | null;
  /** Index of the family member whose mobile this person shares, if any. */
  sharesMobileWith: number | null;
  onChatwoot: boolean;
  onCliniko: boolean;
  onManyChat: boolean;
  /** The Chatwoot contact carries custom_attributes.cliniko_patient_id. */
  chatwootLinksCliniko: boolean;
  /** The ManyChat subscriber carries the cliniko_patient_id custom field. */
  manychatLinksCliniko: boolean;
  /** When the person first appeared anywhere. */
  firstSeenMs: number;
  clinikoCreatedAtMs: number;
  /** Cliniko patient id: 18-digit string, above 2^53. */
  clinikoId: string;
  address1: string;
  city: string;
  state: string;
  postCode: string;
  occupation: string;
}

export function stripAccents(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
}

function slug(s: string): string {
  return stripAccents(s)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '');
}

export function randomPhone(rng: Rng, country: Country, kind: 'mobile' | 'landline'): Phone {
  let e164: string;
  switch (country) {
    case 'AU':
      e164 =
        kind === 'mobile'
          ? `+614${rng.digits(8)}`
          : `+61${rng.pick(['2', '3', '7', '8'])}${rng.int(3, 9)}${rng.digits(7)}`;
      break;
    case 'NZ':
      e164 =
        kind === 'mobile'
          ? `+642${rng.pick(['1', '2', '7'])}${rng.digits(7)}`
          : `+64${rng.pick(['3', '4', '6', '7', '9'])}${rng.int(2, 9)}${rng.digits(6)}`;
      break;
    case 'UK':
      e164 =
        kind === 'mobile' ? `+447${rng.int(4, 9)}${rng.digits(8)}` : `+4420${rng.pick(['7', '8'])}${rng.digits(7)}`;
      break;
    case 'US':
      e164 = `+1${rng.int(2, 9)}${rng.digits(2)}${rng.int(2, 9)}${rng.digits(2)}${rng.digits(4)}`;
      break;
    case 'ID':
      e164 = kind === 'mobile' ? `+628${rng.int(1, 5)}${rng.digits(8 + rng.int(0, 1))}` : `+62361${rng.digits(6)}`;
      break;
  }
  return { country, kind, e164 };
}

/** National format as people type it, e.g. "0412 345 678", "(02) 9123 4567", "021 123 4567". */
export function nationalFormat(p: Phone): string {
  const d = p.e164.replace(/^\+/, '');
  switch (p.country) {
    case 'AU': {
      const n = `0${d.slice(2)}`;
      return p.kind === 'mobile'
        ? `${n.slice(0, 4)} ${n.slice(4, 7)} ${n.slice(7)}`
        : `(${n.slice(0, 2)}) ${n.slice(2, 6)} ${n.slice(6)}`;
    }
    case 'NZ': {
      const n = `0${d.slice(2)}`;
      return p.kind === 'mobile'
        ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`
        : `(${n.slice(0, 2)}) ${n.slice(2, 5)} ${n.slice(5)}`;
    }
    case 'UK': {
      const n = `0${d.slice(2)}`;
      return p.kind === 'mobile' ? `${n.slice(0, 5)} ${n.slice(5)}` : `${n.slice(0, 3)} ${n.slice(3, 7)} ${n.slice(7)}`;
    }
    case 'US': {
      const n = d.slice(1);
      return `(${n.slice(0, 3)}) ${n.slice(3, 6)}-${n.slice(6)}`;
    }
    case 'ID': {
      const n = `0${d.slice(2)}`;
      return `${n.slice(0, 4)}-${n.slice(4, 8)}-${n.slice(8)}`;
    }
  }
}

/** International with spaces, e.g. "+61 412 345 678". */
export function internationalSpaced(p: Phone): string {
  const nat = nationalFormat(p).replace(/[()]/g, '').replace(/-/g, ' ');
  const cc = { AU: '61', NZ: '64', UK: '44', US: '1', ID: '62' }[p.country];
  const rest = p.country === 'US' ? nat : nat.replace(/^0/, '');
  return `+${cc} ${rest}`;
}

/** The free-text number a clinic typed into Cliniko: national, compact, 61-prefixed without plus, etc. */
export function clinikoPhoneText(p: Phone, clinicCountry: string, rng: Rng): string {
  const local = p.country === clinicCountry || (p.country === 'UK' && clinicCountry === 'GB');
  if (!local)
    return rng.weighted([
      [internationalSpaced(p), 5],
      [p.e164, 3],
      [p.e164.slice(1), 2],
    ]);
  return rng.weighted([
    [nationalFormat(p), 6],
    [nationalFormat(p).replace(/[\s()-]/g, ''), 3],
    [p.e164.slice(1), 2],
    [internationalSpaced(p), 1],
  ]);
}

function makeId(usedIds: Set<string>, createdMs: number, rng: Rng): string {
  let id =
    700_000_000_000_000_000n + BigInt(Math.floor(createdMs / 1000)) * 100_000_000n + BigInt(rng.int(0, 99_990_000));
  while (usedIds.has(id.toString())) id += 7n;
  const s = id.toString();
  usedIds.add(s);
  return s;
}

/** Cliniko-style 18-digit id for anything created at `createdMs`. Unique within `used`. */
export function clinikoStyleId(used: Set<string>, createdMs: number, rng: Rng): string {
  return makeId(used, createdMs, rng);
}

export function generatePeople(seed: number, tenant: number, count: number, nowMs: number): Person[] {
  const profile = tenantProfile(tenant);
  const people: Person[] = [];
  const usedIds = new Set<string>();
  for (let i = 0; i < count; i++) {
    const rng = rngFor(seed, 'person', tenant, i);
    const head = i > 3 && rng.chance(0.12) ? people[rng.int(0, i - 1)] : undefined;
    const country: Country = head ? head.country : rng.weighted(profile.countryMix);
    const sex: 'Male' | 'Female' = rng.chance(0.55) ? 'Female' : 'Male';
    const isId = country === 'ID';
    const firstName = isId
      ? rng.pick(sex === 'Female' ? ID_FIRST_F : ID_FIRST_M)
      : rng.pick(sex === 'Female' ? FIRST_F : FIRST_M);
    const lastName = head ? head.lastName : isId ? rng.pick(ID_LAST) : rng.pick(LAST);
    const child = head !== undefined && rng.chance(0.6);
    const birthYear = child ? rng.int(2009, 2019) : rng.int(1944, 2006);
    const dob = rng.chance(0.9)
      ? `${birthYear}-${String(rng.int(1, 12)).padStart(2, '0')}-${String(rng.int(1, 28)).padStart(2, '0')}`
      : null;
    const hasEmail = !child && rng.chance(0.78);
    let email: string | null = null;
    let emailAsTyped: string | null = null;
    if (hasEmail) {
      const domain = rng.pick(EMAIL_DOMAINS[country]);
      const local = rng.weighted([
        [`${slug(firstName)}.${slug(lastName)}`, 5],
        [`${slug(firstName)}${slug(lastName).slice(0, 1)}${rng.int(1, 99)}`, 3],
        [`${slug(firstName)}_${rng.int(1970, 2005)}`, 2],
      ]);
      email = `${local}@${domain}`;
      emailAsTyped = rng.chance(0.25)
        ? `${local.charAt(0).toUpperCase()}${local.slice(1)}@${domain.charAt(0).toUpperCase()}${domain.slice(1)}`
        : email;
    }
    const sharesMobile = head !== undefined && head.mobile !== null && (child || rng.chance(0.3));
    const mobile = sharesMobile && head ? head.mobile : rng.chance(0.9) ? randomPhone(rng, country, 'mobile') : null;
    const landline =
      head && rng.chance(0.6) ? head.landline : rng.chance(0.18) ? randomPhone(rng, country, 'landline') : null;
    const firstSeenMs = head
      ? head.firstSeenMs + rng.int(1, 900) * SECOND
      : nowMs - rng.int(3, 420) * DAY - rng.int(0, DAY);
    // Never in the future: a first contact three days ago may register up to six days later, but not after now (a
    // record created tomorrow had an updated_at that no incremental cursor taken today could pass).
    const clinikoCreatedAtMs = head
      ? head.clinikoCreatedAtMs + rng.int(200, 900)
      : Math.min(nowMs - HOUR, firstSeenMs + rng.int(0, 6 * DAY));
    let clinikoId: string;
    if (head) {
      // Family members are registered together, so their ids sit right next to the head's:
      // distinct as int64, identical once parsed as a JS number.
      let id = BigInt(head.clinikoId) + 1n;
      while (usedIds.has(id.toString())) id += 1n;
      clinikoId = id.toString();
      usedIds.add(clinikoId);
    } else clinikoId = makeId(usedIds, clinikoCreatedAtMs, rng);
    const onCliniko = child || rng.chance(0.72);
    const onChatwoot = !child && rng.chance(0.62);
    const onManyChat = !child && rng.chance(0.42);
    const p: Person = {
      idx: i,
      firstName,
      lastName,
      preferredName: rng.chance(0.08) ? firstName.slice(0, 3) : null,
      sex,
      dob,
      email,
      emailAsTyped,
      country,
      mobile,
      landline,
      sharesMobileWith: sharesMobile && head ? head.idx : null,
      onChatwoot: onChatwoot || (!onCliniko && !onManyChat),
      onCliniko,
      onManyChat,
      chatwootLinksCliniko: false,
      manychatLinksCliniko: false,
      firstSeenMs,
      clinikoCreatedAtMs,
      clinikoId,
      address1: head
        ? head.address1
        : `${rng.int(1, 240)} ${rng.pick(['Campbell Pde', 'Jl. Batu Bolong', 'Ponsonby Rd', 'Brunswick St', 'Queen St', 'Beach Rd', 'High St'])}`,
      city: head ? head.city : profile.city,
      state: head ? head.state : profile.state,
      postCode: head ? head.postCode : profile.postCode,
      occupation: child ? 'Student' : rng.pick(OCCUPATIONS),
    };
    p.chatwootLinksCliniko = p.onChatwoot && p.onCliniko && rng.chance(0.45);
    p.manychatLinksCliniko = p.onManyChat && p.onCliniko && rng.chance(0.35);
    people.push(p);
  }
  return people;
}

/** How a person shows up as a chat contact: WhatsApp profile names are rarely the legal name. */
export function chatDisplayName(p: Person, rng: Rng): string {
  return rng.weighted([
    [`${p.firstName} ${p.lastName}`, 50],
    [p.firstName, 22],
    [`${p.firstName} ${p.lastName}`.toLowerCase(), 8],
    [`${p.firstName} ${rng.pick(['🌊', '🏄', '✨', '🌺'])}`, 6],
    [p.mobile ? p.mobile.e164 : p.firstName, 6],
    [`${p.firstName.toUpperCase()} ${p.lastName.charAt(0)}.`, 8],
  ]);
}

const HAIKU_ADJ = [
  'misty',
  'silent',
  'autumn',
  'hidden',
  'bitter',
  'frosty',
  'wild',
  'dawn',
  'snowy',
  'late',
  'quiet',
  'ancient',
];
const HAIKU_NOUN = ['water', 'river', 'frog', 'leaf', 'dew', 'moon', 'pond', 'sun', 'glade', 'meadow', 'paper', 'wave'];

/** Chatwoot names anonymous widget visitors with a haikunator ("misty-water-482"). */
export function haikuName(rng: Rng): string {
  return `${rng.pick(HAIKU_ADJ)}-${rng.pick(HAIKU_NOUN)}-${rng.int(100, 999)}`;
}
