import { describe, expect, it } from 'vitest';
import { LoopGuard } from './paginate.ts';
import { canonicalJson, forgetRecordHashes, hashRecord, hashRecordOnce } from './record-hash.ts';

describe('hashRecord and canonicalJson', () => {
  it('hashes by content: key order and undefined properties do not matter, values and array order do', () => {
    const h = hashRecord({ id: 1, name: 'A', tags: ['x', 'y'], extra: undefined });
    expect(h).toMatch(/^[0-9a-f]{32}$/);
    expect(hashRecord({ tags: ['x', 'y'], name: 'A', id: 1 })).toBe(h);
    expect(hashRecord({ id: 1, name: 'A', tags: ['y', 'x'] })).not.toBe(h);
    expect(hashRecord({ id: '1', name: 'A', tags: ['x', 'y'] })).not.toBe(h);
    expect(hashRecord({ id: 1, name: 'A', tags: ['x', 'y'], extra: null })).not.toBe(h);
  });

  it('writes objects with sorted keys at every depth and leaves out undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: null }], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":1}]},"b":1}',
    );
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson('é"')).toBe('"é\\""');
    expect(canonicalJson([])).toBe('[]');
    // Keys that need escaping, in order or not, at any depth.
    expect(canonicalJson({ 'b"\n': 1, a: { y: 2, x: [{ q: 1, p: 2 }] } })).toBe(
      '{"a":{"x":[{"p":2,"q":1}],"y":2},"b\\"\\n":1}',
    );
    expect(canonicalJson({ a: 1, b: { c: 2, d: 3 } })).toBe('{"a":1,"b":{"c":2,"d":3}}');
  });
});

describe('hashRecordOnce', () => {
  it('hashes a record once: the loop guard hash is the one the mapper takes, until a hook may have changed it', () => {
    const r: Record<string, unknown> = { id: 7, name: 'A' };
    new LoopGuard().records([r], 'https://api.example/x', 200);
    // Remembered: changing the object in place (which nothing but a hook does) does not change the answer ...
    r.name = 'B';
    expect(hashRecordOnce(r)).toBe(hashRecord({ id: 7, name: 'A' }));
    // ... until its hash is forgotten, as the stream does after an after_fetch hook.
    forgetRecordHashes([r]);
    expect(hashRecordOnce(r)).toBe(hashRecord({ id: 7, name: 'B' }));
    expect(hashRecordOnce('text')).toBe(hashRecord('text'));
  });
});
