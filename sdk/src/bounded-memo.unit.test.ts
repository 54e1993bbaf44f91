import { describe, expect, it } from 'vitest';
import { BoundedMemo } from './bounded-memo.ts';

describe('BoundedMemo', () => {
  it('keeps entries in use across a fill, drops ones unused for two generations', () => {
    const m = new BoundedMemo<string, number>(3);
    for (const k of ['a', 'b', 'c']) m.set(k, k.charCodeAt(0));
    m.set('d', 100); // current full: a, b, c become the previous generation
    expect(m.get('a')).toBe(97); // found in the previous generation, moved back to the current one
    m.set('e', 101);
    m.set('f', 102); // current (d, a, e) full: it becomes the previous one, b and c are dropped
    expect(m.get('b')).toBeUndefined();
    expect(m.get('c')).toBeUndefined();
    expect(m.get('a')).toBe(97);
    expect(m.get('d')).toBe(100);
    expect(m.get('f')).toBe(102);
  });

  it('holds null values (a known "no answer")', () => {
    const m = new BoundedMemo<string, string | null>(2);
    m.set('x', null);
    expect(m.get('x')).toBeNull();
    expect(m.get('y')).toBeUndefined();
  });
});
