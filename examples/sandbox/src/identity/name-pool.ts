/**
 * Name frequencies for the labelled generator.
 *
 * The classic set draws uniformly from ~60 given names per sex and ~115 surnames: at 20,000 people about one in
 * three shares a full name with a stranger, many times what a real practice sees, so the "unique name" signal
 * hardly ever applies there. Real name frequencies are heavy-headed with a long tail: in Australia the commonest
 * surname (Smith) is held by under 1% of people and the commonest given names of a mixed-age population by about
 * 2% of their sex, and most people carry names held by few others. The realistic pool models that with a
 * Zipf–Mandelbrot law over ranks, p(k) ∝ 1 / (k + q): the real names of the classic lists are the head (Smith,
 * Jones, …; James, John, …) and a deterministic tail of generated names (English place-style and other-origin
 * surnames, syllable-built given names) completes it. With q = 8 over ~2,800 given names per sex and q = 15
 * over ~10,000 surnames, a practice of 20,000 has a few per cent of people sharing their full name with a
 * stranger (John Smith is still common), which is what real practices of that size report. The injected
 * hard cases — same-name same-birthday strangers, namesakes on one family phone — are added on top by the
 * field noise, independently of these frequencies, so the set is not made easier.
 */
import { Rng } from '../common/prng.ts';

/** Draws names. */
export interface NamePool {
  readonly names: readonly string[];
  pick(rng: Rng): string;
}

/** A weighted list sampled by rank (cumulative weights, binary search). */
export class ZipfPool implements NamePool {
  private readonly cumulative: number[];
  constructor(
    readonly names: readonly string[],
    q: number,
  ) {
    let total = 0;
    this.cumulative = names.map((_, k) => {
      total += 1 / (k + 1 + q);
      return total;
    });
  }
  /** Share of draws that fall on the name of rank k (0-based). */
  share(k: number): number {
    const total = this.cumulative[this.cumulative.length - 1]!;
    return (this.cumulative[k]! - (k > 0 ? this.cumulative[k - 1]! : 0)) / total;
  }
  pick(rng: Rng): string {
    const total = this.cumulative[this.cumulative.length - 1]!;
    const r = rng.next() * total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.names[lo]!;
  }
}

const SURNAME_STEMS = [
  'Ash',
  'Black',
  'Brad',
  'Brook',
  'Craw',
  'Dal',
  'East',
  'Fair',
  'Glen',
  'Hart',
  'Holt',
  'Kings',
  'Lang',
  'Mar',
  'North',
  'Pem',
  'Rad',
  'Shel',
  'Stan',
  'Thorn',
  'Wes',
  'Whit',
  'Ald',
  'Bel',
  'Carr',
  'Dun',
  'Fen',
  'Gar',
  'Hal',
  'Ing',
  'Kel',
  'Lind',
  'Mor',
  'Nor',
  'Pen',
  'Ros',
  'Sut',
  'Tal',
  'Wal',
  'Wy',
  'Bram',
  'Chad',
  'Dray',
  'Elm',
  'Fox',
  'Gold',
  'Hay',
  'Lock',
  'Mill',
  'Oak',
  'Pres',
  'Red',
  'Sand',
  'Stock',
  'Tre',
  'Under',
  'Wake',
  'Win',
];
const SURNAME_LINKS = ['', 'er', 'en', 'ing'];
const SURNAME_ENDS = [
  'ford',
  'ley',
  'ton',
  'wood',
  'field',
  'worth',
  'by',
  'well',
  'combe',
  'mere',
  'ridge',
  'stone',
  'ham',
  'dale',
  'hurst',
  'bury',
  'croft',
  'more',
  'wick',
  'son',
  'man',
  'shaw',
  'brook',
  'land',
  'wright',
  'more',
  'gate',
  'hill',
  'den',
  'cott',
  'low',
  'ney',
  'sey',
  'ter',
  'ridge',
  'holme',
];
const OTHER_STEMS = [
  'Nak',
  'Tan',
  'Kov',
  'Pet',
  'Ros',
  'Ber',
  'Mal',
  'Sil',
  'Fer',
  'Gon',
  'Haz',
  'Kaz',
  'Lop',
  'Mor',
  'Nov',
  'Pal',
  'Rom',
  'Sav',
  'Vel',
  'Zan',
  'Dim',
  'Gal',
  'Kar',
  'Mak',
  'Ors',
  'Rad',
  'Stef',
  'Tod',
  'Vas',
  'Yil',
];
const OTHER_ENDS = [
  'amura',
  'aka',
  'enko',
  'ovic',
  'ski',
  'ini',
  'ardi',
  'etti',
  'ado',
  'ez',
  'ian',
  'oglu',
  'sson',
  'sen',
  'ek',
  'escu',
  'idis',
  'opoulos',
  'aki',
  'ani',
  'ova',
  'uk',
  'elli',
  'iou',
  'ar',
  'ovich',
  'anu',
  'mir',
  'dar',
  'oni',
];
const GIVEN_ONSETS = [
  'Al',
  'Bri',
  'Ca',
  'Da',
  'El',
  'Fe',
  'Ga',
  'Ha',
  'Is',
  'Ja',
  'Ka',
  'Le',
  'Ma',
  'Na',
  'Or',
  'Pa',
  'Ra',
  'Sa',
  'Ta',
  'Va',
  'Wi',
  'Ya',
  'Za',
  'Ber',
  'Cor',
  'Dor',
  'Er',
  'Jo',
  'Lu',
  'Mi',
  'Ro',
  'Se',
  'Te',
  'Vi',
  'Ad',
  'Ar',
];
const GIVEN_MIDDLES = ['ri', 'la', 'na', 'de', 'ro', 'li', 've', 'me', 'ta', 'si', 'mo', 'ren', 'lin', 'dan', ''];
const MALE_ENDS = ['n', 'o', 's', 'el', 'an', 'on', 'us', 'er', 'ik', 'ard', 'ius', 'em'];
const FEMALE_ENDS = ['a', 'ie', 'ine', 'elle', 'ah', 'ia', 'ette', 'y', 'ena', 'is', 'ora', 'een'];

function unique(names: readonly string[], head: readonly string[]): string[] {
  const seen = new Set(head.map((n) => n.toLowerCase()));
  const out: string[] = [];
  for (const n of names) {
    const k = n.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(n);
  }
  return out;
}

/** The head (real names, commonest first) then the generated tail in a fixed pseudo-random order. */
function withTail(head: readonly string[], tail: string[], seed: number): string[] {
  return [...head, ...new Rng(seed).shuffle(unique(tail, head))];
}

export interface NamePools {
  male: NamePool;
  female: NamePool;
  last: NamePool;
}

export function realisticPools(male: readonly string[], female: readonly string[], last: readonly string[]): NamePools {
  const surnames: string[] = [];
  for (const s of SURNAME_STEMS)
    for (const l of SURNAME_LINKS) for (const e of SURNAME_ENDS) surnames.push(`${s}${l}${e}`);
  for (const s of OTHER_STEMS) for (const e of OTHER_ENDS) surnames.push(`${s}${e}`);
  const given = (ends: readonly string[]): string[] => {
    const out: string[] = [];
    for (const o of GIVEN_ONSETS) for (const m of GIVEN_MIDDLES) for (const e of ends) out.push(`${o}${m}${e}`);
    return out;
  };
  const maleNames = withTail(male, given(MALE_ENDS), 0x6d616c65);
  const femaleTail = unique(given(FEMALE_ENDS), maleNames);
  return {
    male: new ZipfPool(maleNames, 8),
    female: new ZipfPool(withTail(female, femaleTail, 0x66656d61), 8),
    last: new ZipfPool(withTail(last, surnames, 0x6c617374), 15),
  };
}

/** The classic set's uniform lists, kept as they were so its figures stay comparable. */
export function uniformPools(male: readonly string[], female: readonly string[], last: readonly string[]): NamePools {
  const flat = (names: readonly string[]): NamePool => ({ names, pick: (rng) => rng.pick(names) });
  return { male: flat(male), female: flat(female), last: flat(last) };
}
