import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_EXPRESSION_BUDGET,
  evaluate,
  evaluateNow,
  expressionBudget,
  render,
  setExpressionBudget,
} from './expr.ts';

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
  it('evaluateNow answers compiled expressions without a promise and hands JSONata’s promise on otherwise', async () => {
    const rec = { id: 5, tags: [{ n: 1 }, { n: 2 }], name: ' Ann ' };
    // Compiled, and this input is handled: the value itself.
    expect(evaluateNow('$string(id)', rec)).toBe('5');
    expect(evaluateNow('missing.deep', rec)).toBeUndefined();
    // Compiled but this input falls back (a path over an array), or not compiled at all ($length): a promise of
    // what evaluate gives.
    for (const expr of ['tags.n', '$length(name)']) {
      const now = evaluateNow(expr, rec);
      expect(now).toBeInstanceOf(Promise);
      expect(await now).toEqual(await evaluate(expr, rec));
    }
    expect(await evaluateNow('tags.n', rec)).toEqual([1, 2]);
    // JSONata's errors come as a rejection, as from evaluate.
    await expect(evaluateNow('$number("x")', rec)).rejects.toMatchObject({ code: 'D3030' });
    await expect(evaluate('$number("x")', rec)).rejects.toMatchObject({ code: 'D3030' });
  });
  it('renders templates: a single expression keeps its type, mixed text is a string', async () => {
    expect(await render('{{ $config.n }}', { config: { n: 3 } })).toBe(3);
    expect(await render('a-{{ $config.n }}-b', { config: { n: 3 } })).toBe('a-3-b');
    expect(await render('{{ $missing }}x', {})).toBe('x');
  });
});

/** CPU milliseconds `fn` takes (the budget counts CPU time, so this is what it compares against). */
async function cpuMs(fn: () => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected the evaluation to fail');
}

const LOOP = '($loop := function($x){ $loop($x) }; $loop(1))'; // a tail call: the stack never grows
const DIVE = '($dive := function($x){ 1 + $dive($x) }; $dive(1))';
/** Legitimate work: ~60k steps, a few ms. */
const WORK = '$sum([1..5000].($ * 2))';

describe('expression budget', () => {
  afterEach(() => setExpressionBudget(DEFAULT_EXPRESSION_BUDGET));

  it('stops a self-recursive loop with RQ5008 once it used its time', async () => {
    setExpressionBudget({ maxMs: 40 });
    const err = await failure(evaluate(LOOP, {}));
    expect(err.code).toBe('RQ5008');
    expect(err.message).toMatch(/ran for more than 40 ms.*\$loop/);
  });

  it('stops runaway recursion and deep nesting with RQ5008 at the depth limit', async () => {
    const dive = await failure(evaluate(DIVE, {}));
    expect(dive.code).toBe('RQ5008');
    expect(dive.message).toMatch(/nested more than 500 levels/);
    // Bounded recursion within the limit still works.
    expect(await evaluate('($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100))', {})).toBe(100);

    const deep = `${'['.repeat(600)}1${']'.repeat(600)}`;
    expect((await failure(evaluate(deep, {}))).code).toBe('RQ5008');
    setExpressionBudget({ maxDepth: 2000 });
    expect(JSON.stringify(await evaluate(deep, {}))).toHaveLength(1201);
  });

  it('is per evaluation: cached expressions evaluated many times, or concurrently, do not add up', async () => {
    await evaluate(WORK, {}); // warm up (compile, JIT)
    const solo = Math.min(await cpuMs(() => evaluate(WORK, {})), await cpuMs(() => evaluate(WORK, {})));
    const maxMs = Math.max(20, Math.ceil(solo * 4));
    setExpressionBudget({ maxMs });
    // Sequentially: together far more than the budget, each well within it.
    let total = 0;
    // 25 runs against a budget of 4 solo runs: the premise holds even when the solo measurement is inflated by load.
    for (let i = 0; i < 25; i++) total += await cpuMs(() => evaluate(WORK, {}));
    expect(total).toBeGreaterThan(maxMs);
    // Concurrently (the evaluations interleave step by step): a shared counter or wall-clock time since each
    // start would charge every one of them with the others' work.
    let results: unknown[] = [];
    const together = await cpuMs(async () => {
      results = await Promise.all(Array.from({ length: 25 }, () => evaluate(WORK, {})));
    });
    expect(together).toBeGreaterThan(maxMs);
    expect(results).toEqual(Array(25).fill(25005000));
  });

  it('stops a runaway evaluation without failing the ones running next to it', async () => {
    setExpressionBudget({ maxMs: 40 });
    const legit = Array.from({ length: 20 }, (_, i) => evaluate('$sum([1..2000].($ * $i))', {}, { i }));
    const [loop, ...rest] = await Promise.allSettled([evaluate(LOOP, {}), ...legit]);
    expect(loop?.status === 'rejected' && (loop.reason as { code: string }).code).toBe('RQ5008');
    expect(rest.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(
      Array.from({ length: 20 }, (_, i) => 2001000 * i),
    );
  });

  it('rejects invalid budgets', () => {
    expect(() => setExpressionBudget({ maxMs: -1 })).toThrow(/integer >= 0/);
    expect(() => setExpressionBudget({ maxDepth: 1.5 })).toThrow(/integer >= 0/);
    expect(() => setExpressionBudget({ nope: 1 } as never)).toThrow(/unknown/);
    expect(expressionBudget()).toEqual(DEFAULT_EXPRESSION_BUDGET);
  });
});

describe('$parseJson and $eval', () => {
  afterEach(() => setExpressionBudget(DEFAULT_EXPRESSION_BUDGET));

  it('parses a JSON string into data', async () => {
    const rec = { data: '{"id": "9", "tags": ["a", "[{not nesting}]"], "q": "say \\"hi\\" {"}' };
    expect(await evaluate('$parseJson(data)', rec)).toEqual({
      id: '9',
      tags: ['a', '[{not nesting}]'],
      q: 'say "hi" {',
    });
    expect(await evaluate('$parseJson(data).tags[0]', rec)).toBe('a');
    expect(await evaluate('$parseJson("[1, 2]")', {})).toEqual([1, 2]);
    expect(await evaluate('$parseJson(missing)', rec)).toBeUndefined();
    expect((await failure(evaluate('$parseJson(5)', {}))).message).toMatch(/signature/);
  });

  it('rejects invalid JSON with a mapping error that does not quote the input', async () => {
    const err = await failure(evaluate('$parseJson(data)', { data: 'patient Jane Citizen' }));
    expect(err.code).toBe('RQ5001');
    expect(err.message).toMatch(/^\$parseJson: the string is not valid JSON \(Unexpected token/);
    expect(err.message).not.toContain('Jane');
  });

  it('refuses JSON nested deeper or longer than the limits, before parsing it', async () => {
    setExpressionBudget({ jsonMaxDepth: 5, jsonMaxLength: 100 });
    expect(await evaluate('$parseJson(d)', { d: '[[[[{"a": 1}]]]]' })).toEqual([[[[{ a: 1 }]]]]);
    const deep = await failure(evaluate('$parseJson(d)', { d: '[[[[[{"a": 1}]]]]]' }));
    expect([deep.code, deep.message]).toEqual(['RQ5001', expect.stringMatching(/nests more than 5 levels/)]);
    // unbalanced: depth is counted before JSON.parse sees it
    expect((await failure(evaluate('$parseJson(d)', { d: '['.repeat(50) }))).message).toMatch(/nests more/);
    expect((await failure(evaluate('$parseJson(d)', { d: `"${'x'.repeat(100)}"` }))).message).toMatch(
      /102 characters long, more than the 100 allowed/,
    );
  });

  it('never evaluates data: $eval is disabled and a payload expression stays text', async () => {
    const secrets = { api_key: 'S3CRET-KEY' };
    const err = await failure(evaluate('$eval(data)', { data: '$secrets.api_key' }, { secrets }));
    expect([err.code, err.message]).toEqual(['RQ5001', expect.stringMatching(/\$eval is disabled.*\$parseJson/)]);
    const payload = { data: '{"id":"9","first_name":$secrets.api_key}' };
    const parsed = await failure(evaluate('$parseJson(data)', payload, { secrets }));
    expect(parsed.code).toBe('RQ5001');
    expect(parsed.message).not.toContain('S3CRET');
    // A string that merely looks like an expression is copied as text.
    expect(await evaluate('{"name": data}', { data: '$secrets.api_key' }, { secrets })).toEqual({
      name: '$secrets.api_key',
    });
  });
});
