import jsonata from 'jsonata';
import { RoutiqError } from '../errors/registry.ts';
import { FALLBACK, fastExpression } from './fast-expr.ts';

type Expression = ReturnType<typeof jsonata>;

/**
 * Limits on every evaluation of a spec expression, so a buggy or hostile expression cannot hang the process
 * (one evaluation would otherwise block every other connection: JSONata runs on the event loop).
 */
export interface ExpressionBudget {
  /** Deepest nesting of one evaluation (JSONata's evaluation stack: nested calls, paths, constructors); 0: none. */
  maxDepth: number;
  /** Longest one evaluation may run, in milliseconds of its own work (not time spent by others); 0: none. */
  maxMs: number;
  /** `$parseJson`: longest string it parses (characters). */
  jsonMaxLength: number;
  /** `$parseJson`: deepest nesting of arrays and objects it accepts. */
  jsonMaxDepth: number;
}

/** Real mappings nest < 40 deep and take < 1 ms; the limits leave two orders of magnitude of headroom. */
export const DEFAULT_EXPRESSION_BUDGET: Readonly<ExpressionBudget> = Object.freeze({
  maxDepth: 500,
  maxMs: 250,
  jsonMaxLength: 1_048_576,
  jsonMaxDepth: 64,
});

const budget: ExpressionBudget = { ...DEFAULT_EXPRESSION_BUDGET };
// jsonata reads `stack` from its options at each evaluation: one shared object, so a new limit also applies to
// expressions compiled (and cached) before it was set.
const jsonataOptions = { stack: budget.maxDepth };

/** Change the limits of every later evaluation (runner configuration); omitted fields keep their value. */
export function setExpressionBudget(b: Partial<ExpressionBudget>): void {
  for (const [k, v] of Object.entries(b)) {
    if (!(k in budget)) throw new TypeError(`unknown expression budget field ${k}`);
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0) throw new TypeError(`expression budget ${k} must be an integer >= 0`);
    budget[k as keyof ExpressionBudget] = v;
  }
  jsonataOptions.stack = budget.maxDepth;
}

export function expressionBudget(): ExpressionBudget {
  return { ...budget };
}

/**
 * Time accounting, cheap enough for every step. jsonata awaits `onStep` before each evaluation step. Every
 * SAMPLE_EVERY-th step (of any evaluation) reads the process CPU time and charges what was used since the
 * previous reading to the evaluation taking that step. So:
 * - the budget is CPU time: a process descheduled on a busy machine is not charged for the wait;
 * - concurrent evaluations (JSONata is async: evaluations started together interleave step by step) share the
 *   time in proportion to the steps they take, instead of each paying for all of them;
 * - an evaluation's first reading only starts its clock: the interval before it was idle time or other work;
 * - one reading charges at most MAX_CHARGE_MS: a longer interval is mostly someone else's synchronous work run
 *   between two steps (or one slow built-in call on a large input, which cannot be interrupted anyway).
 * The meter hangs on the evaluation's root frame (`environment.base`, one per `evaluate()` call), never on the
 * cached, shared compiled expression.
 */
const SAMPLE_EVERY = 1024; // steps; a reading costs 2–20 µs (a system call: dearer on a busy VM), a step ~0.5 µs
// 1024 steps take ~0.3–3 ms: a longer interval is a GC pause or other work, and must not fail a short evaluation.
const MAX_CHARGE_MS = 10;
const METER = Symbol('routiq.expr.meter');
let steps = 0;
let lastReading = 0;

function onStep(node: { position?: number }, _input: unknown, env: { base: { [METER]?: number } }): void {
  if ((++steps & (SAMPLE_EVERY - 1)) !== 0) return;
  const cpu = process.cpuUsage();
  const now = (cpu.user + cpu.system) / 1000;
  const root = env.base;
  const spent = root[METER];
  if (spent === undefined) root[METER] = 0;
  else {
    const total = spent + Math.min(now - lastReading, MAX_CHARGE_MS);
    root[METER] = total;
    if (budget.maxMs > 0 && total > budget.maxMs) {
      throw new BudgetExceeded(`ran for more than ${budget.maxMs} ms`, node.position);
    }
  }
  lastReading = now;
}

/** Thrown inside JSONata; `evaluate` turns it into an RQ5008 naming the expression. */
class BudgetExceeded extends Error {
  constructor(
    readonly why: string,
    readonly position: number | undefined,
  ) {
    super(why);
  }
}

function budgetError(expr: string, why: string, position: number | undefined): RoutiqError {
  const at = position === undefined ? '' : ` (near column ${position})`;
  return new RoutiqError('RQ5008', `expression ${why}${at}: ${shorten(expr)}`, {
    details: { expression: expr, position, budget: expressionBudget() },
  });
}

function shorten(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 120 ? `${one.slice(0, 117)}...` : one;
}

/** `$parseJson(str)`: a JSON string in a record becomes data, never code (see `$eval` below). */
function parseJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  if (s.length > budget.jsonMaxLength) {
    throw new RoutiqError(
      'RQ5001',
      `$parseJson: the string is ${s.length} characters long, more than the ${budget.jsonMaxLength} allowed`,
    );
  }
  const depth = jsonDepth(s);
  if (depth > budget.jsonMaxDepth) {
    throw new RoutiqError(
      'RQ5001',
      `$parseJson: the JSON nests more than ${budget.jsonMaxDepth} levels of arrays and objects`,
    );
  }
  try {
    return JSON.parse(s) as unknown;
  } catch (e) {
    // V8 quotes the start of the input in some messages: drop the quote (the input is in the dead letter).
    const why = (e as Error).message.replace(/,\s*"[\s\S]*" is not valid JSON$/, '');
    throw new RoutiqError('RQ5001', `$parseJson: the string is not valid JSON (${why})`);
  }
}

/** Deepest `[`/`{` nesting outside string literals, stopping early once past the limit. */
function jsonDepth(s: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) {
        max = depth;
        if (max > budget.jsonMaxDepth) return max;
      }
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return max;
}

/** Replaces JSONata's `$eval`: lint refuses it (RQ2026); a spec that was not linted still cannot run data. */
function evalDisabled(): never {
  throw new RoutiqError(
    'RQ5001',
    '$eval is disabled: it would run data as an expression; read a JSON string with $parseJson(str)',
  );
}

/** Functions the engine adds to every spec expression (lint knows them by these names). */
export const ROUTIQ_FUNCTION_NAMES: readonly string[] = ['parseJson'];

const cache = new Map<string, Expression>();

/** Compile once, evaluate many times: compiling per record is ~5x slower (dependencies note §4). */
export function compile(expr: string): Expression {
  let c = cache.get(expr);
  if (!c) {
    c = jsonata(expr, jsonataOptions);
    c.registerFunction('parseJson', parseJson, '<s-:j>');
    c.assign('eval', evalDisabled);
    // jsonata calls (and awaits) the function bound to this symbol before every evaluation step.
    c.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, onStep);
    cache.set(expr, c);
  }
  return c;
}

export type Bindings = Record<string, unknown>;

/**
 * Evaluate a spec expression. Only expressions written in specs come here, never strings from payloads.
 * Exceeding the budget throws RQ5008; the caller dead-letters the record like any mapping error.
 */
export async function evaluate(expr: string, input: unknown, bindings: Bindings = {}): Promise<unknown> {
  return evaluateNow(expr, input, bindings);
}

/**
 * `evaluate`, with the value itself (no promise) when the compiled form handles this input, else JSONata's promise.
 * For per-record loops (mapping): a promise and a microtask per record and expression showed in the profile, the
 * more as MikroORM's AsyncLocalStorage puts a hook on every promise. Values are plain JSON, never a Promise, so
 * `instanceof Promise` tells the two apart. Throws synchronously what `evaluate` would reject with.
 */
export function evaluateNow(expr: string, input: unknown, bindings: Bindings = {}): unknown {
  // Most mapping expressions run as compiled functions (fast-expr.ts); FALLBACK: this input needs JSONata.
  const fast = fastExpression(expr);
  if (fast) {
    try {
      return normalize(fast(input, bindings, {}));
    } catch (e) {
      if (e !== FALLBACK) throw e;
    }
  }
  return evaluateJsonata(expr, input, bindings);
}

async function evaluateJsonata(expr: string, input: unknown, bindings: Bindings): Promise<unknown> {
  let result: unknown;
  try {
    result = await compile(expr).evaluate(input, bindings);
  } catch (e) {
    if (e instanceof BudgetExceeded) throw budgetError(expr, e.why, e.position);
    const err = e as { code?: unknown; position?: number };
    if (err.code === 'D1011') {
      throw budgetError(expr, `nested more than ${budget.maxDepth} levels deep (runaway recursion?)`, err.position);
    }
    throw e;
  }
  return normalize(result);
}

/** JSONata marks sequences with a `sequence` flag and may return frozen arrays; hand back plain JSON values. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  return v;
}

const TEMPLATE = /\{\{([\s\S]+?)\}\}/g;

/** True when the string contains `{{ … }}`. */
export function isTemplate(s: string): boolean {
  return /\{\{[\s\S]+?\}\}/.test(s);
}

/** Render a template string. A string that is exactly one `{{ expr }}` keeps the expression's type. */
export async function render(tpl: string, bindings: Bindings): Promise<unknown> {
  const whole = /^\{\{([\s\S]+?)\}\}$/.exec(tpl.trim());
  if (whole?.[1] && !tpl.trim().slice(2, -2).includes('{{')) return evaluate(whole[1], {}, bindings);
  let out = '';
  let last = 0;
  for (const m of tpl.matchAll(TEMPLATE)) {
    out += tpl.slice(last, m.index);
    const v = await evaluate(m[1] as string, {}, bindings);
    out += v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    last = (m.index ?? 0) + m[0].length;
  }
  return out + tpl.slice(last);
}

export async function renderString(tpl: string, bindings: Bindings): Promise<string> {
  const v = await render(tpl, bindings);
  return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}
