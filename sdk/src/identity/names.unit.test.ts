import { describe, expect, it } from 'vitest';
import {
  areNicknames,
  canonicalFirstName,
  compareDob,
  compareFirstNames,
  compareLastNames,
  damerauLevenshtein,
  foldName,
  jaroWinkler,
  normalizeDob,
  prepareName,
  soundex,
} from './names.ts';

const n = (first: string | null, last: string | null = null, display: string | null = null) =>
  prepareName(first, last, display);

describe('foldName', () => {
  it.each([
    ['José García', 'jose garcia'],
    ['Nguyễn', 'nguyen'],
    ['Đặng', 'dang'],
    ['Søren Jørgensen', 'soren jorgensen'],
    ['Łukasiewicz', 'lukasiewicz'],
    ['Müller', 'muller'],
    ["O'Brien", 'obrien'],
    ['O’Connor', 'oconnor'],
    ['Smith-Jones', 'smith jones'],
    ['Jess 🌸', 'jess'],
    ['  BOB   smith ', 'bob smith'],
    ['Straße', 'strasse'],
  ])('%s → %s', (input, expected) => {
    expect(foldName(input)).toBe(expected);
    // Again, from the memo: the same answer.
    expect(foldName(input)).toBe(expected);
  });

  it('folds a long value (not memoised) the same way every time', () => {
    const long = `${'Zoë '.repeat(100)}Ñúñez`;
    expect(foldName(long)).toBe(`${'zoe '.repeat(100)}nunez`);
    expect(foldName(long)).toBe(`${'zoe '.repeat(100)}nunez`);
  });
});

describe('prepareName', () => {
  it('uses first/last when given and drops titles and suffixes', () => {
    expect(n('Dr. Mary Jane', 'Smith Jr')).toMatchObject({
      first: 'mary',
      firstTokens: ['mary', 'jane'],
      last: 'smith',
    });
  });

  it('splits display names, including "Last, First"', () => {
    expect(n(null, null, 'Bob Smith')).toMatchObject({ first: 'bob', last: 'smith' });
    expect(n(null, null, 'Smith, Bob')).toMatchObject({ first: 'bob', last: 'smith' });
    expect(n(null, null, 'bob')).toMatchObject({ first: 'bob', last: null });
    expect(n(null, null, 'Mrs Sarah van der Berg')).toMatchObject({ first: 'sarah', last: 'berg', lastInitial: 'v' });
  });

  it('splits a full name stored in first_name', () => {
    expect(n('Bob Smith', null)).toMatchObject({ first: 'bob', last: 'smith' });
  });

  it('handles nothing at all', () => {
    expect(n(null, null, null)).toMatchObject({ first: null, last: null, tokens: [] });
    expect(n('', '  ', '🌸')).toMatchObject({ first: null, last: null });
  });
});

describe('similarity helpers', () => {
  it('jaroWinkler matches the reference values', () => {
    expect(jaroWinkler('martha', 'marhta')).toBeCloseTo(0.961, 3);
    expect(jaroWinkler('dwayne', 'duane')).toBeCloseTo(0.84, 2);
    expect(jaroWinkler('dixon', 'dicksonx')).toBeCloseTo(0.813, 3);
    expect(jaroWinkler('abc', 'abc')).toBe(1);
    expect(jaroWinkler('', 'abc')).toBe(0);
  });

  it('damerauLevenshtein counts a transposition as one edit', () => {
    expect(damerauLevenshtein('emma', 'emam')).toBe(1);
    expect(damerauLevenshtein('kitten', 'sitting')).toBe(3);
    expect(damerauLevenshtein('', 'abc')).toBe(3);
  });

  it('soundex groups sound-alike surnames', () => {
    expect(soundex('robert')).toBe('R163');
    expect(soundex('rupert')).toBe('R163');
    expect(soundex('smith')).toBe(soundex('smyth'));
    expect(soundex('ashcraft')).toBe('A261');
    expect(soundex('')).toBe('');
  });

  it('nicknames, including a misspelt formal name', () => {
    expect(areNicknames('bob', 'robert')).toBe(true);
    expect(areNicknames('liz', 'elizabeth')).toBe(true);
    expect(areNicknames('zac', 'zacharry')).toBe(true);
    expect(areNicknames('bob', 'william')).toBe(false);
    expect(canonicalFirstName('bobby')).toBe('robert');
    expect(canonicalFirstName('zelda')).toBe('zelda');
  });
});

describe('compareFirstNames', () => {
  const cmp = (a: string, b: string) => compareFirstNames(n(a), n(b));
  it.each([
    ['Robert', 'robert', 'exact'],
    ['José', 'Jose', 'exact'],
    ['Bob', 'Robert', 'nickname'],
    ['Liz', 'Elizabeth', 'nickname'],
    ['Emma', 'Emam', 'typo'], // transposition
    ['Ines', 'Ins', 'typo'], // dropped letter
    ['Lucas', 'Lucqs', 'typo'], // neighbouring key
    ['Christopher', 'Christophre', 'typo'],
    ['J', 'John', 'initial'],
    ['Ava', 'Eva', 'different'],
    ['Emma', 'Liam', 'different'],
  ])('%s vs %s → %s', (a, b, level) => {
    expect(cmp(a, b)).toBe(level);
  });

  it('a middle name matching the other first name', () => {
    expect(compareFirstNames(n('Mary Jane', 'Smith'), n('Jane', 'Smith'))).toBe('other_token');
  });

  it.each([
    ['Josh', 'Jose'],
    ['Mark', 'Mary'],
    ['Jane', 'June'],
    ['Maria', 'Marie'],
    ['Anna', 'Anne'],
  ])('a one-letter change that makes another real name is not a typo: %s vs %s', (a, b) => {
    expect(['similar', 'different']).toContain(cmp(a, b));
  });

  it('is missing when either side has no first name', () => {
    expect(compareFirstNames(n(null), n('Bob'))).toBe('missing');
  });
});

describe('compareLastNames', () => {
  const cmp = (a: string, b: string) => compareLastNames(n('x', a), n('x', b));
  it.each([
    ['Smith', 'smith', 'exact'],
    ['van der Berg', 'Vanderberg', 'exact'],
    ["O'Brien", 'OBrien', 'exact'],
    ['Smith-Jones', 'Jones', 'partial'],
    ['Smith', 'Smyth', 'typo'],
    ['Ryan', 'Ryn', 'typo'],
    ['Smith', 'S', 'initial'],
    ['van der Berg', 'v', 'initial'],
    ['Smith', 'Jones', 'different'],
  ])('%s vs %s → %s', (a, b, level) => {
    expect(cmp(a, b)).toBe(level);
  });
});

describe('dates of birth', () => {
  it('normalises ISO dates and rejects junk', () => {
    expect(normalizeDob('1985-03-04')).toBe('1985-03-04');
    expect(normalizeDob('1985-03-04T00:00:00Z')).toBe('1985-03-04');
    expect(normalizeDob('04/03/1985')).toBeNull();
    expect(normalizeDob('1985-13-04')).toBeNull();
    expect(normalizeDob(null)).toBeNull();
  });

  it('tells equal, near (typo or day/month swap) and different apart', () => {
    expect(compareDob('1985-03-04', '1985-03-04')).toBe('equal');
    expect(compareDob('1985-03-04', '1985-04-03')).toBe('near');
    expect(compareDob('1985-03-04', '1986-03-04')).toBe('near');
    expect(compareDob('1985-03-04', '2012-07-19')).toBe('different');
    expect(compareDob('1985-03-04', '1986-04-03')).toBe('different'); // swapped, but another year
    expect(compareDob('1985-3-4', '1985-4-3')).toBe('near'); // not normalised: compared by parts
    expect(compareDob(null, '2012-07-19')).toBe('missing');
  });
});
