/**
 * Name normalisation and comparison for identity matching. Pure functions, no I/O.
 */
import { BoundedMemo } from '../bounded-memo.ts';

/** Letters that NFKD does not decompose into a base letter plus a combining mark. */
const SPECIAL_LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  ł: 'l',
  þ: 'th',
  ı: 'i',
  ŋ: 'n',
};

const TITLES = new Set(['mr', 'mrs', 'ms', 'miss', 'mx', 'dr', 'prof', 'sir', 'dame', 'rev', 'fr']);
const SUFFIXES = new Set(['jr', 'jnr', 'sr', 'snr', 'ii', 'iii', 'iv']);
/** Surname particles ignored when comparing surnames token by token ("van der Berg" ~ "Berg"). */
const PARTICLES = new Set([
  'van',
  'von',
  'der',
  'den',
  'de',
  'la',
  'le',
  'da',
  'di',
  'del',
  'dos',
  'das',
  'du',
  'bin',
  'binti',
]);

/** foldName's answers by input. */
const folds = new BoundedMemo<string, string>(20_000);

/**
 * Fold a name to lower-case ASCII letters and single spaces: accents dropped (`José` → `jose`, `Nguyễn` →
 * `nguyen`, `Søren` → `soren`), apostrophes removed (`O'Brien` → `obrien`), hyphens, digits, emoji and
 * punctuation turned into spaces.
 */
export function foldName(value: string | null | undefined): string {
  if (!value) return '';
  // Matching folds the same few names over and over (each identity is prepared several times per page, and a
  // display name is folded part by part): a Map lookup instead of NFKD and five regex passes.
  let folded = folds.get(value);
  if (folded === undefined) {
    folded = value
      .normalize('NFKD')
      .replace(/\p{M}/gu, '')
      .toLowerCase()
      .replace(/[ßæœøđðłþıŋ]/g, (c) => SPECIAL_LETTERS[c] ?? c)
      .replace(/['’‘`ʼ]/g, '')
      .replace(/[^a-z]+/g, ' ')
      .trim();
    if (value.length > 200) return folded; // a name, not a pasted document: not kept
    folds.set(value, folded);
  }
  return folded;
}

function tokens(value: string | null | undefined): string[] {
  const folded = foldName(value);
  if (!folded) return [];
  return folded.split(' ').filter((t) => !TITLES.has(t) && !SUFFIXES.has(t));
}

/**
 * Characters that are not part of a written name: emoji, symbols, brackets, bars, slashes (letters, combining
 * marks, spaces, apostrophes, hyphens, dots, underscores and commas are).
 */
const DECORATION = /[^\p{L}\p{M}\s'’‘`ʼ.\-_,]+|\s[-–—]+\s/gu;
/** Words people append to a chat name that are not part of it ("Sarah Jones xx", "Mia (work)"). */
const DECORATION_WORDS = new Set(['xx', 'xxx', 'xo', 'xoxo', 'lol', 'official', 'work', 'home', 'mum', 'mom', 'mama']);
/** After these a chat name is over: what follows is a description ("Sarah Jones | Mum of 3", "Tom (work)"). */
const HARD_SEPARATOR = /[|/\\()[\]{}<>【】「」«»:;@#]|\s[-–—]+\s/u;

function isDecorated(value: string): boolean {
  DECORATION.lastIndex = 0;
  const hit = DECORATION.test(value);
  DECORATION.lastIndex = 0;
  return hit;
}

/**
 * A display name without what people decorate it with on WhatsApp and web chat, for comparison only (the
 * original is kept for display): leading/trailing/wrapping emoji and symbols, a description after a bar,
 * bracket or dash, and trailing "xx"/"(work)". An emoji between two words ("Sarah 🌸 Jones") separates them.
 * A name whose first part is a single word takes the next part as its surname; later parts are dropped
 * ("Sarah Jones 🏠 Bondi" → "Sarah Jones").
 */
export function cleanDisplayName(value: string): string {
  const cut = value.split(HARD_SEPARATOR).find((part) => /\p{L}/u.test(foldName(part) ? part : ''));
  const head = cut ?? value;
  const parts = head
    .split(DECORATION)
    .map((p) => p.trim())
    .filter((p) => foldName(p) !== '');
  if (parts.length === 0) return '';
  const words = (p: string) => foldName(p).split(' ');
  let name = parts[0]!;
  if (words(name).length === 1 && parts[1] && words(parts[1]).length <= 2) name = `${name} ${parts[1]}`;
  const kept = name.split(/\s+/);
  while (kept.length > 1 && DECORATION_WORDS.has(foldName(kept[kept.length - 1]))) kept.pop();
  return kept.join(' ');
}

/**
 * The key under which identities with the same full name are found, whatever the decoration, accents, case or
 * nickname: `canonical first name + ' ' + surname` (folded, particles removed). Null without a first name and a
 * surname of at least two letters. Used for candidate lookups and for the uniqueness of a name in an organization.
 */
export function nameKeyOf(name: PreparedName): string | null {
  if (!name.first || !name.last || name.last.replace(/ /g, '').length < 2) return null;
  return `${canonicalFirstName(name.first)} ${name.last}`;
}

export interface PreparedName {
  /** Every name token in written order (given names, then surname tokens including particles). */
  tokens: string[];
  /** First given-name token, folded; null when unknown. */
  first: string | null;
  firstTokens: string[];
  /** Folded surname with particles removed and tokens joined by a space; null when unknown. */
  last: string | null;
  lastTokens: string[];
  /** Surname as written, particles included, without spaces (`van der Berg` → `vanderberg`). */
  lastFull: string | null;
  /** First letter of the surname as written, particles included (`van der Berg` → `v`). */
  lastInitial: string | null;
}

/**
 * Build comparable name parts from what a platform gives: `firstName`/`lastName` (Cliniko, ManyChat) or only a
 * display name (Chatwoot `name`, WhatsApp profile names). `"Smith, John"` is read surname-first. A first name
 * holding a full name (`first_name: "Bob Smith"`, no last name) is split like a display name.
 */
export function prepareName(
  firstName: string | null | undefined,
  lastName: string | null | undefined,
  displayName?: string | null,
): PreparedName {
  let firstTokens = tokens(firstName);
  let lastTokens = tokens(lastName);
  if (
    displayName &&
    (firstName || lastName) &&
    foldName(`${firstName ?? ''} ${lastName ?? ''}`) === foldName(displayName)
  ) {
    // First/last cut out of the display name by a connector ("🌸 Sarah" + "Jones | Mum of 3"): read the display
    // name instead, which is cleaned as a whole.
    firstTokens = [];
    lastTokens = [];
  } else if (!displayName && isDecorated(`${firstName ?? ''} ${lastName ?? ''}`)) {
    // Decorated first/last of a profile (ManyChat "Sarah" + "Jones 💕 | Mum of 3"): cleaned as one name.
    const all = tokens(cleanDisplayName(`${firstName ?? ''} ${lastName ?? ''}`));
    firstTokens = all.slice(0, 1);
    lastTokens = all.slice(1);
  }
  if (firstTokens.length === 0 && lastTokens.length === 0 && displayName) {
    displayName = cleanDisplayName(displayName);
    const comma = displayName.indexOf(',');
    if (comma > 0) {
      lastTokens = tokens(displayName.slice(0, comma));
      firstTokens = tokens(displayName.slice(comma + 1));
    } else {
      const all = tokens(displayName);
      firstTokens = all.slice(0, 1);
      lastTokens = all.slice(1);
    }
  } else if (lastTokens.length === 0 && firstTokens.length > 1 && !lastName) {
    lastTokens = firstTokens.slice(1);
    firstTokens = firstTokens.slice(0, 1);
  }
  while (lastTokens.length > 0 && DECORATION_WORDS.has(lastTokens[lastTokens.length - 1]!)) lastTokens.pop();
  const significantLast = lastTokens.filter((t) => !PARTICLES.has(t));
  const lastKept = significantLast.length > 0 ? significantLast : lastTokens;
  return {
    tokens: [...firstTokens, ...lastTokens],
    first: firstTokens[0] ?? null,
    firstTokens,
    last: lastKept.length > 0 ? lastKept.join(' ') : null,
    lastTokens: lastKept,
    lastFull: lastTokens.length > 0 ? lastTokens.join('') : null,
    lastInitial: lastTokens[0]?.[0] ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Nicknames

/**
 * Groups of given names that refer to the same person: formal names, spelling variants and common
 * hypocorisms in Australian/NZ/UK/US usage. A name can sit in several groups (`alex`, `sam`, `pat`, `chris`).
 */
const NICKNAME_GROUPS: readonly string[] = [
  'robert rob robbie bob bobby bert',
  'elizabeth elisabeth liz lizzie lizzy beth betty eliza libby bess',
  'william will willie bill billy liam',
  'margaret maggie meg peggy marge greta',
  'katherine catherine kathryn katharine kate katie kathy cath cathy kat',
  'james jim jimmy jamie',
  'michael mike mick mickey mikey',
  'richard rick ricky rich richie dick',
  'thomas tom tommy',
  'christopher chris kit',
  'christine christina chris chrissy tina',
  'john jack johnny jon',
  'jonathan jon jonny',
  'alexander alex xander sandy',
  'alexandra alex lexi sasha',
  'benjamin ben benny benji',
  'daniel dan danny',
  'david dave davey',
  'edward ed eddie ted ned',
  'matthew matt matty',
  'nicholas nick nicky',
  'patrick pat paddy',
  'patricia pat patty trish tricia',
  'samuel sam sammy',
  'samantha sam sammy',
  'stephen steven steve stevie',
  'timothy tim timmy',
  'anthony tony',
  'andrew andy drew',
  'joseph joe joey',
  'charles charlie chas',
  'jennifer jen jenny',
  'jessica jess jessie',
  'rebecca becky bec becca',
  'victoria vicky tori',
  'susan sue susie suzy',
  'deborah debra deb debbie',
  'kimberley kimberly kim',
  'joshua josh',
  'zachary zach zac zack',
  'gregory greg',
  'jeffrey geoffrey jeff geoff',
  'kenneth ken kenny',
  'ronald ron ronnie',
  'donald don donny',
  'gerald gerry jerry',
  'lawrence laurence larry laurie',
  'frederick fred freddie',
  'henry harry hank',
  'harold harry hal',
  'isabella isabel isobel bella izzy',
  'abigail abby abbie',
  'olivia liv livvy',
  'amanda mandy',
  'eleanor elinor ellie nell nora',
  'helen nell',
  'josephine jo josie',
  'joanne joanna jo',
  'natalie nat',
  'nathan nate',
  'nathaniel nate nat',
  'peter pete',
  'philip phillip phil',
  'raymond ray',
  'sarah sara sally',
  'mary molly polly',
  'dorothy dot dottie',
  'barbara barb babs',
  'judith judy',
  'teresa theresa terri tess tessa',
  'francis frank',
  'frances fran frankie',
  'anne ann annie',
  'hannah hanna',
  'mohammed mohammad muhammad mohamed',
  'jacob jake',
  'lucas luke',
  'nicola nicky nikki',
  'caroline carol carrie',
];

const NICKNAMES: ReadonlyMap<string, readonly number[]> = (() => {
  const map = new Map<string, number[]>();
  NICKNAME_GROUPS.forEach((group, index) => {
    for (const name of group.split(' ')) {
      const list = map.get(name) ?? [];
      list.push(index);
      map.set(name, list);
    }
  });
  return map;
})();

const fuzzyGroups = new BoundedMemo<string, readonly number[]>(10_000);

/**
 * Nickname groups of a name, tolerating one typo after the first letter in names of 5+ letters (`zacharry` →
 * zachary's group), so that a misspelt formal name still pairs with its nickname.
 */
function groupsOf(name: string): readonly number[] {
  const exact = NICKNAMES.get(name);
  if (exact) return exact;
  if (name.length < 5) return [];
  const cached = fuzzyGroups.get(name);
  if (cached) return cached;
  const found = new Set<number>();
  for (const [known, groups] of NICKNAMES) {
    // Same first letter: a slip rarely hits it, and `kenji` one letter from `benji` is another name, not a typo.
    if (
      known.length >= 5 &&
      known[0] === name[0] &&
      Math.abs(known.length - name.length) <= 1 &&
      damerauLevenshtein(known, name) <= 1
    ) {
      for (const g of groups) found.add(g);
    }
  }
  const list = [...found];
  fuzzyGroups.set(name, list);
  return list;
}

export function areNicknames(a: string, b: string): boolean {
  const ga = groupsOf(a);
  if (ga.length === 0) return false;
  const gb = groupsOf(b);
  return ga.some((g) => gb.includes(g));
}

/** A stable key for a first name that nicknames share (`bob` and `robert` → `robert`), for blocking. */
export function canonicalFirstName(name: string): string {
  const groups = NICKNAMES.get(name);
  const first = groups?.[0];
  if (first === undefined) return name;
  return NICKNAME_GROUPS[first]?.split(' ')[0] ?? name;
}

// ---------------------------------------------------------------------------------------------------------
// String similarity

/** Jaro-Winkler similarity in 0..1 (prefix scale 0.1, up to 4 prefix characters). */
export function jaroWinkler(a: string, b: string): number {
  if (a === b) return a.length === 0 ? 0 : 1;
  if (a.length === 0 || b.length === 0) return 0;
  const window = Math.max(0, Math.floor(Math.max(a.length, b.length) / 2) - 1);
  const aMatched = new Array<boolean>(a.length).fill(false);
  const bMatched = new Array<boolean>(b.length).fill(false);
  let matches = 0;
  for (let i = 0; i < a.length; i++) {
    const lo = Math.max(0, i - window);
    const hi = Math.min(b.length - 1, i + window);
    for (let j = lo; j <= hi; j++) {
      if (bMatched[j] || a[i] !== b[j]) continue;
      aMatched[i] = true;
      bMatched[j] = true;
      matches++;
      break;
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let k = 0;
  for (let i = 0; i < a.length; i++) {
    if (!aMatched[i]) continue;
    while (!bMatched[k]) k++;
    if (a[i] !== b[k]) transpositions++;
    k++;
  }
  const m = matches;
  const jaro = (m / a.length + m / b.length + (m - transpositions / 2) / m) / 3;
  let prefix = 0;
  while (prefix < 4 && prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  return jaro + prefix * 0.1 * (1 - jaro);
}

/** Optimal-string-alignment Damerau-Levenshtein distance (adjacent transpositions count as one edit). */
export function damerauLevenshtein(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prevPrev = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prevPrev[j - 2]! + 1);
      cur[j] = v;
    }
    [prevPrev, prev, cur] = [prev, cur, prevPrev];
  }
  return prev[m]!;
}

/** American Soundex of a folded name (`robert` → `R163`), for sound-alike blocking. */
export function soundex(name: string): string {
  const s = name.replace(/[^a-z]/g, '');
  if (!s) return '';
  const code = (c: string): string => {
    if ('bfpv'.includes(c)) return '1';
    if ('cgjkqsxz'.includes(c)) return '2';
    if ('dt'.includes(c)) return '3';
    if (c === 'l') return '4';
    if ('mn'.includes(c)) return '5';
    if (c === 'r') return '6';
    return c === 'h' || c === 'w' ? '' : '0';
  };
  let out = s[0]!.toUpperCase();
  let last = code(s[0]!);
  for (let i = 1; i < s.length && out.length < 4; i++) {
    const c = code(s[i]!);
    if (c === '') continue; // h, w do not separate equal codes
    if (c !== '0' && c !== last) out += c;
    last = c;
  }
  return out.padEnd(4, '0');
}

// ---------------------------------------------------------------------------------------------------------
// Comparisons

export type FirstNameLevel =
  | 'exact'
  | 'nickname'
  | 'typo'
  | 'other_token'
  | 'initial'
  | 'similar'
  | 'different'
  | 'missing';
export type LastNameLevel = 'exact' | 'partial' | 'typo' | 'initial' | 'similar' | 'different' | 'missing';

type EditKind = 'none' | 'indel' | 'transposition' | 'substitution' | 'more';

const KEY_POSITION: ReadonlyMap<string, readonly [number, number]> = (() => {
  const map = new Map<string, readonly [number, number]>();
  ['qwertyuiop', 'asdfghjkl', 'zxcvbnm'].forEach((row, y) => {
    const offset = [0, 0.25, 0.75][y]!;
    [...row].forEach((c, x) => {
      map.set(c, [x + offset, y]);
    });
  });
  return map;
})();

/** Neighbouring keys on a QWERTY keyboard (`a`/`s`, `a`/`q`), the letters a slipped finger hits. */
function adjacentKeys(a: string, b: string): boolean {
  const pa = KEY_POSITION.get(a);
  const pb = KEY_POSITION.get(b);
  if (!pa || !pb || a === b) return false;
  const dx = Math.abs(pa[0] - pb[0]);
  const dy = Math.abs(pa[1] - pb[1]);
  return dy === 0 ? dx === 1 : dy === 1 && dx <= 1;
}

function substitutedLetters(a: string, b: string): [string, string] | null {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return [a[i]!, b[i]!];
  return null;
}

/** The kind of a single edit between two strings, or `more` when they are further apart. */
function singleEdit(a: string, b: string): EditKind {
  if (a === b) return 'none';
  if (Math.abs(a.length - b.length) > 1) return 'more';
  if (a.length !== b.length) return damerauLevenshtein(a, b) === 1 ? 'indel' : 'more';
  const diff: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff.push(i);
  if (diff.length === 1) return 'substitution';
  const [i, j] = diff;
  if (diff.length === 2 && i !== undefined && j === i + 1 && a[i] === b[j] && a[j] === b[i]) return 'transposition';
  return 'more';
}

/**
 * A keystroke slip in a given name. Substituting one letter of a short name usually makes another real name
 * (Josh/Jose, Mark/Mary, Jane/June, Maria/Marie), which in a family sharing a phone is a different person, so:
 * a dropped or doubled letter counts from 3/4 letters (`Ins`/`Ines`), a swap of neighbours from 4, a wrong
 * letter from 4 only when it is the neighbouring key (`Lucqs`/`Lucas`) and from 6 otherwise, two edits from 8.
 */
function isGivenNameTypo(a: string, b: string): boolean {
  const min = Math.min(a.length, b.length);
  const max = Math.max(a.length, b.length);
  const kind = singleEdit(a, b);
  if (kind === 'indel') return min >= 3 && max >= 4;
  if (kind === 'transposition') return min >= 4;
  if (kind === 'substitution') {
    const letters = substitutedLetters(a, b);
    return min >= 6 || (min >= 4 && letters !== null && adjacentKeys(letters[0], letters[1]));
  }
  return kind === 'more' && min >= 8 && damerauLevenshtein(a, b) <= 2;
}

/** A slip in a surname: one edit of any kind from 4 letters (`Smith`/`Smyth`), a dropped letter from 3. */
function isSurnameTypo(a: string, b: string): boolean {
  const min = Math.min(a.length, b.length);
  const max = Math.max(a.length, b.length);
  const kind = singleEdit(a, b);
  if (kind === 'indel') return min >= 3 && max >= 4;
  if (kind === 'transposition' || kind === 'substitution') return min >= 4;
  return kind === 'more' && min >= 8 && damerauLevenshtein(a, b) <= 2;
}

function compareGiven(a: string, b: string): Exclude<FirstNameLevel, 'other_token' | 'missing'> {
  if (a === b) return 'exact';
  if (a.length === 1 || b.length === 1) return a[0] === b[0] ? 'initial' : 'different';
  if (isGivenNameTypo(a, b)) return 'typo';
  if (areNicknames(a, b)) return 'nickname';
  return jaroWinkler(a, b) >= 0.88 ? 'similar' : 'different';
}

export function compareFirstNames(a: PreparedName, b: PreparedName): FirstNameLevel {
  if (!a.first || !b.first) return 'missing';
  const primary = compareGiven(a.first, b.first);
  if (primary === 'exact' || primary === 'nickname' || primary === 'typo') return primary;
  // Middle names: "Mary Jane" vs "Jane", "John Paul" vs "Paul".
  for (const x of a.firstTokens) {
    for (const y of b.firstTokens) {
      if (x.length < 2 || y.length < 2) continue;
      if (x === y || areNicknames(x, y)) return 'other_token';
    }
  }
  return primary;
}

export function compareLastNames(a: PreparedName, b: PreparedName): LastNameLevel {
  if (!a.last || !b.last) return 'missing';
  if (a.last === b.last) return 'exact';
  const ja = a.lastTokens.join('');
  const jb = b.lastTokens.join('');
  // "van der Berg" / "Vanderberg", "O Brien" / "OBrien"
  if (ja === jb || (a.lastFull !== null && a.lastFull === b.lastFull)) return 'exact';
  if (ja.length === 1 || jb.length === 1) {
    const [single, full, fullInitial] = ja.length === 1 ? [ja, jb, b.lastInitial] : [jb, ja, a.lastInitial];
    return single === full[0] || single === fullInitial ? 'initial' : 'different';
  }
  if (a.lastTokens.some((t) => t.length > 1 && b.lastTokens.includes(t))) return 'partial'; // hyphenated
  if (isSurnameTypo(ja, jb)) return 'typo';
  return jaroWinkler(ja, jb) >= 0.9 ? 'similar' : 'different';
}

export type DobLevel = 'equal' | 'near' | 'different' | 'missing';

/** Parse `YYYY-MM-DD` (a trailing time is ignored); null when not a date. */
export function normalizeDob(value: string | null | undefined): string | null {
  if (!value) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value.trim());
  if (!m) return null;
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** `near`: one digit off or day and month swapped, i.e. a likely typo, which is a reason to review, not merge. */
export function compareDob(a: string | null, b: string | null): DobLevel {
  if (!a || !b) return 'missing';
  if (a === b) return 'equal';
  // Dates from normalizeDob (YYYY-MM-DD) without splitting: this runs for every candidate pair.
  if (a.length === 10 && b.length === 10 && a[4] === '-' && a[7] === '-' && b[4] === '-' && b[7] === '-') {
    if (
      a.charCodeAt(0) === b.charCodeAt(0) &&
      a.charCodeAt(1) === b.charCodeAt(1) &&
      a.charCodeAt(2) === b.charCodeAt(2) &&
      a.charCodeAt(3) === b.charCodeAt(3) &&
      a.charCodeAt(5) === b.charCodeAt(8) &&
      a.charCodeAt(6) === b.charCodeAt(9) &&
      a.charCodeAt(8) === b.charCodeAt(5) &&
      a.charCodeAt(9) === b.charCodeAt(6)
    )
      return 'near';
  } else {
    const [ya, ma, da] = a.split('-');
    const [yb, mb, db] = b.split('-');
    if (ya === yb && ma === db && da === mb) return 'near';
  }
  let diff = 0;
  for (let i = 0; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) diff++;
  return diff === 1 ? 'near' : 'different';
}
