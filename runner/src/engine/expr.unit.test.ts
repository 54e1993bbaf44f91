import { describe, expect, it } from 'vitest';
import { evaluate, render } from './expr.ts';

describe('evaluate', () => {
  it('reads plain paths directly with the same results as JSONata', async () => {
    const rec = {
      id: 5,
      links: { next: 'u' },
      meta: { sender: { id: null } },
      tags: [{ n: 1 }, { n: 2 }],
      obj: { a: 1 },
    };
    expect(await evaluate('id', rec)).toBe(5);
    expect(await evaluate('links.next', rec)).toBe('u');
    expect(await evaluate('meta.sender.id', rec)).toBeNull();
    expect(await evaluate('missing.deep', rec)).toBeUndefined();
    // arrays and objects are left to JSONata (it maps over arrays)
    expect(await evaluate('tags.n', rec)).toEqual([1, 2]);
    expect(await evaluate('obj', rec)).toEqual({ a: 1 });
    expect(await evaluate('true', rec)).toBe(true);
    expect(await evaluate('$string(id)', rec)).toBe('5');
  });
  it('renders templates: a single expression keeps its type, mixed text is a string', async () => {
    expect(await render('{{ $config.n }}', { config: { n: 3 } })).toBe(3);
    expect(await render('a-{{ $config.n }}-b', { config: { n: 3 } })).toBe('a-3-b');
    expect(await render('{{ $missing }}x', {})).toBe('x');
  });
});
