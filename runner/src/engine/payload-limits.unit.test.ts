import { describe, expect, it } from 'vitest';
import { checkJsonDepth, checkPayload } from './payload-limits.ts';

describe('checkJsonDepth', () => {
  it('measures objects and arrays, not brackets inside strings (escaped quotes included)', () => {
    expect(checkJsonDepth('{"a":[{"b":[1]}]}', 4)).toBeUndefined();
    expect(checkJsonDepth('{"a":[{"b":[1]}]}', 3)).toEqual({ depth: 4, offset: 11 });
    expect(checkJsonDepth(JSON.stringify({ s: '[[[[\\"[[[[{{{{' }), 1)).toBeUndefined();
    expect(checkJsonDepth('[[]] [[]] [[]]', 2)).toBeUndefined();
  });

  it('refuses a hostile nesting in one linear pass', () => {
    const deep = `${'['.repeat(5_000_000)}${']'.repeat(5_000_000)}`;
    const started = performance.now();
    expect(checkJsonDepth(deep, 64)).toEqual({ depth: 65, offset: 64 });
    expect(checkJsonDepth(`"${'['.repeat(5_000_000)}"`, 64)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('checkPayload', () => {
  it('says why a body is refused: size (413) before nesting (400)', () => {
    const limits = { maxBodyBytes: 100, maxJsonDepth: 2 };
    expect(checkPayload('{"a":{"b":1}}', limits)).toBeUndefined();
    expect(checkPayload('{"a":{"b":[1]}}', limits)).toEqual({
      status: 400,
      reason: 'the JSON body nests deeper than 2 levels (at character 10)',
    });
    // Bytes, not characters: 60 three-byte characters exceed 100 bytes.
    expect(checkPayload(JSON.stringify({ a: '€'.repeat(60) }), limits)).toEqual({
      status: 413,
      reason: 'the body is larger than 100 bytes',
    });
  });
});
