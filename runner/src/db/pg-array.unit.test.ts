import { describe, expect, it } from 'vitest';
import { pgArray } from './pg-array.ts';

describe('pgArray', () => {
  it('quotes every element, escapes backslash and double quote, and writes null as NULL', () => {
    expect(pgArray([])).toBe('{}');
    expect(pgArray(['a', '', null, 'NULL'])).toBe('{"a","",NULL,"NULL"}');
    expect(pgArray(['x"y', 'back\\slash', '{a,b}', "it's", ' sp '])).toBe(
      '{"x\\"y","back\\\\slash","{a,b}","it\'s"," sp "}',
    );
    expect(pgArray(new Set(['é', '👍']))).toBe('{"é","👍"}');
  });
});
