/**
 * Spec expressions compiled to plain functions, for the common shapes of mappings: field paths over objects,
 * literals, object and array constructors, `? :`, `=` `!=` `<` `<=` `>` `>=`, `and` `or`, `+ - * / %`, `&`, and a
 * few built-ins ($string, $fromMillis, $lowercase, $uppercase, $replace with plain strings, $not, $boolean, $count,
 * $exists, $type, $trim, $substringBefore, $substringAfter, $contains with a string), and the evaluation's bindings as variables (`$secrets.api_token`, `$parent.id`). JSONata evaluates asynchronously, step by step (tens of promises per field): a mapping of twenty
 * fields cost ~0.3 ms of CPU per record. A compiled function gives the same result with no promise at all.
 *
 * Same semantics, by construction: an expression with any other node is not compiled (JSONata runs it), and a
 * compiled function gives up on any value it does not handle exactly as JSONata does (an array met inside a path,
 * where JSONata maps over it; a comparison of objects; a number that is not finite; an argument of the wrong
 * type, where JSONata raises its own error) by throwing FALLBACK: the caller then runs JSONata on that input.
 * fast-expr.unit.test.ts checks both agree on a corpus of expressions (the connectors' own included) and inputs.
 */
import jsonata from 'jsonata';

/** Thrown by a compiled function for an input it does not handle exactly: evaluate with JSONata instead. */
export const FALLBACK: unique symbol = Symbol('routiq.expr.fallback');

/** `vars`: the block variables in scope (`$x := …`, lambda parameters), a prototype chain of frames. */
type Fn = (input: unknown, bindings: Record<string, unknown>, vars: Vars) => unknown;
type Vars = Record<string, unknown>;

/** A lambda bound in a block: only ever called by name there (never handed on as a value). */
interface Lambda {
  body: Fn;
  params: string[];
  input: unknown;
  frame: Vars;
}

/** Compile-time scope: the names a block binds, and which of them hold lambdas (and their arity). */
type Scope = ReadonlyMap<string, { lambda?: number }>;
const EMPTY: Scope = new Map();

interface Node {
  type: string;
  value?: unknown;
  steps?: Node[];
  lhs?: Node | Array<[Node, Node]>;
  rhs?: Node;
  expressions?: Node[];
  expression?: Node;
  condition?: Node;
  then?: Node;
  else?: Node;
  procedure?: Node;
  arguments?: Node[];
  [k: string]: unknown;
}

const fallback = (): never => {
  throw FALLBACK;
};

/** Fields a path step may carry that change its meaning (predicates, focus/index binding, grouping, …). */
const STEP_EXTRAS = ['stages', 'predicate', 'group', 'focus', 'index', 'tuple', 'ancestor', 'keepArray'];
const PATH_EXTRAS = ['keepSingletonArray', 'tuple', 'seekingParent'];

function hasAny(n: Node, keys: string[]): boolean {
  return keys.some((k) => n[k] !== undefined);
}

/** A finite number (JSONata raises D1001 for ±Infinity, and treats NaN as not a number). */
function finite(v: unknown): boolean {
  return typeof v !== 'number' || Number.isFinite(v);
}

/** JSONata's $boolean for the values handled here (arrays, functions: fall back). */
function toBoolean(v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === null) return false;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'string':
      return v.length > 0;
    case 'number':
      if (!Number.isFinite(v)) fallback();
      return v !== 0;
    case 'object':
      if (Array.isArray(v)) fallback();
      return Object.keys(v).length > 0;
    default:
      return fallback();
  }
}

/** A value a compiled function may hand on: plain JSON data (a function from a lookup, e.g. `constructor`: no). */
function plain(v: unknown): unknown {
  if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') fallback();
  if (!finite(v)) fallback();
  return v;
}

/**
 * Filters (`[pred]`, `[0]`) on a sequence of plain items: a constant integer picks by position (negative from the
 * end); any other predicate keeps the items it holds true for, with `$` the item. A predicate that yields a number
 * (JSONata then selects by position) or an array, or an item that is itself an array: fall back.
 */
type Filters = (seq: unknown[], b: Record<string, unknown>, vars: Vars) => unknown[];
function compileFilters(stages: Node[], sc: Scope): Filters | null {
  const fs: Array<{ index?: number; pred?: Fn }> = [];
  for (const st of stages) {
    const e = st.expr as Node | undefined;
    if (st.type !== 'filter' || !e) return null;
    if (e.type === 'number') {
      if (!Number.isInteger(e.value)) return null;
      fs.push({ index: e.value as number });
    } else {
      const pred = compileNode(e, sc);
      if (!pred) return null;
      fs.push({ pred });
    }
  }
  return (seq, b, vars) => {
    let cur = seq;
    for (const f of fs) {
      if (f.index !== undefined) {
        const item = cur[f.index < 0 ? cur.length + f.index : f.index];
        cur = item === undefined ? [] : [item];
      } else {
        const pred = f.pred as Fn;
        cur = cur.filter((item) => {
          const r = pred(item, b, vars);
          if (typeof r === 'number' || Array.isArray(r)) return fallback();
          return toBoolean(r) === true;
        });
      }
    }
    return cur;
  };
}

/** A value as the sequence a filter sees: nothing, its items (plain ones only), or itself. */
function asSequence(v: unknown): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return [v];
  for (const x of v) if (Array.isArray(x) || x === undefined) fallback();
  return v;
}

/**
 * `a.b.c` over objects, each step perhaps filtered (`phones[type = 'Mobile'][0].number`). An array on the way
 * (JSONata maps over it, flattening) falls back, as does a filter that leaves more than one item; an unfiltered
 * array at the end is kept.
 */
function compilePath(n: Node, sc: Scope): Fn | null {
  // `a{ … }` groups the path's result (the group sits on the path node).
  if (hasAny(n, [...PATH_EXTRAS, 'group'])) return null;
  const steps = n.steps ?? [];
  if (!steps.length) return null;
  const names: Array<{ name: string; filters?: Filters }> = [];
  for (const s of steps) {
    if (s.type !== 'name' || typeof s.value !== 'string') return null;
    if (
      hasAny(
        s,
        STEP_EXTRAS.filter((k) => k !== 'stages'),
      )
    )
      return null;
    if (s.stages === undefined) {
      names.push({ name: s.value });
      continue;
    }
    const filters = compileFilters(s.stages as Node[], sc);
    if (!filters) return null;
    names.push({ name: s.value, filters });
  }
  return (input, b, vars) => {
    let v: unknown = input;
    for (const step of names) {
      if (Array.isArray(v)) return fallback();
      // JSONata reads own properties only (never `constructor` and the like of the prototype).
      if (v === null || typeof v !== 'object' || !Object.hasOwn(v, step.name)) v = undefined;
      else v = plain((v as Record<string, unknown>)[step.name]);
      if (step.filters) {
        const seq = step.filters(asSequence(v), b, vars);
        if (seq.length > 1) return fallback();
        v = seq[0];
      } else if (v === undefined) return undefined;
    }
    return plain(v);
  };
}

function compileObject(n: Node, sc: Scope): Fn | null {
  const pairs = n.lhs as Array<[Node, Node]> | undefined;
  if (!Array.isArray(pairs)) return null;
  const keys: string[] = [];
  const values: Fn[] = [];
  for (const [k, v] of pairs) {
    // A literal key, once: a repeated one is JSONata's D1009, reported by JSONata.
    if (k.type !== 'string' || typeof k.value !== 'string' || keys.includes(k.value)) return null;
    if (k.value === '_jsonata_lambda' || k.value === '_jsonata_function') return null;
    const f = compileNode(v, sc);
    if (!f) return null;
    keys.push(k.value);
    values.push(f);
  }
  return (input, b, vars) => {
    // Over an array JSONata groups the items: not handled here.
    if (Array.isArray(input)) return fallback();
    const out: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < keys.length; i++) {
      const v = (values[i] as Fn)(input, b, vars);
      if (v !== undefined) out[keys[i] as string] = v;
    }
    return out;
  };
}

function compileArray(n: Node, sc: Scope): Fn | null {
  const nodes = n.expressions ?? [];
  const items = nodes.map((x) => compileNode(x, sc));
  if (items.some((f) => f === null)) return null;
  const fs = items as Fn[];
  // JSONata flattens an array item into the constructed array, one level, unless the item is itself constructed
  // (`[[1, 2]]`: not handled here).
  const constructed = nodes.map((x) => x.type === 'unary' && x.value === '[');
  return (input, b, vars) => {
    const out: unknown[] = [];
    for (let i = 0; i < fs.length; i++) {
      const v = (fs[i] as Fn)(input, b, vars);
      if (v === undefined) continue;
      if (!Array.isArray(v)) out.push(v);
      else if (constructed[i]) return fallback();
      else for (const x of v) out.push(x);
    }
    return out;
  };
}

function compileBinary(n: Node, sc: Scope): Fn | null {
  const op = n.value as string;
  const l = compileNode(n.lhs as Node, sc);
  const r = compileNode(n.rhs as Node, sc);
  if (!l || !r) return null;
  switch (op) {
    case 'and':
    case 'or':
      return (input, b, vars) => {
        const lv = toBoolean(l(input, b, vars)) ?? false;
        if (op === 'and' ? !lv : lv) return lv;
        return toBoolean(r(input, b, vars)) ?? false;
      };
    case '=':
    case '!=':
      return (input, b, vars) => {
        const lv = l(input, b, vars);
        const rv = r(input, b, vars);
        if (lv === undefined || rv === undefined) return false;
        // JSONata compares objects and arrays deeply: not handled here.
        if ((lv !== null && typeof lv === 'object') || (rv !== null && typeof rv === 'object')) return fallback();
        return op === '=' ? lv === rv : lv !== rv;
      };
    case '<':
    case '<=':
    case '>':
    case '>=':
      return (input, b, vars) => {
        const lv = l(input, b, vars);
        const rv = r(input, b, vars);
        const ok = (v: unknown) => v === undefined || typeof v === 'string' || typeof v === 'number';
        if (!ok(lv) || !ok(rv)) return fallback(); // T2010
        if (lv === undefined || rv === undefined) return undefined;
        if (typeof lv !== typeof rv) return fallback(); // T2009
        const a = lv as number;
        const c = rv as number;
        return op === '<' ? a < c : op === '<=' ? a <= c : op === '>' ? a > c : a >= c;
      };
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return (input, b, vars) => {
        const lv = l(input, b, vars);
        const rv = r(input, b, vars);
        const num = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));
        if (!num(lv) || !num(rv)) return fallback(); // T2001 / T2002
        if (lv === undefined || rv === undefined) return undefined;
        const a = lv as number;
        const c = rv as number;
        const out = op === '+' ? a + c : op === '-' ? a - c : op === '*' ? a * c : op === '/' ? a / c : a % c;
        // JSONata raises D1001 on a result that is not finite (e.g. division by zero).
        return Number.isFinite(out) ? out : fallback();
      };
    case '&':
      return (input, b, vars) => {
        const lv = l(input, b, vars);
        const rv = r(input, b, vars);
        return (lv === undefined ? '' : toStringFn(lv)) + (rv === undefined ? '' : toStringFn(rv));
      };
    default:
      return null;
  }
}

/** JSONata's $string for scalars (objects and arrays: fall back). */
function toStringFn(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return fallback(); // D3001
    return String(Number.isInteger(v) ? v : Number(v.toPrecision(15)));
  }
  return fallback();
}

// $fromMillis prints years 0000–9999 like toISOString; outside them JSONata's picture differs.
const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

type Builtin = { arity: number; fn: (args: unknown[]) => unknown };

/** $substringBefore / $substringAfter: the whole string when `chars` is not in it. */
function substringAround(v: unknown, chars: unknown, side: 'before' | 'after'): unknown {
  if (typeof chars !== 'string' || (v !== undefined && typeof v !== 'string')) return fallback();
  if (v === undefined) return undefined;
  const pos = v.indexOf(chars);
  if (pos === -1) return v;
  return side === 'before' ? v.substring(0, pos) : v.substring(pos + chars.length);
}

const BUILTINS: Record<string, Builtin> = {
  string: { arity: 1, fn: ([v]) => (v === undefined ? undefined : toStringFn(v)) },
  fromMillis: {
    arity: 1,
    fn: ([v]) => {
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v > MAX_MS || v < MIN_MS) return fallback();
      return new Date(v).toISOString();
    },
  },
  lowercase: {
    arity: 1,
    fn: ([v]) => (v === undefined ? undefined : typeof v === 'string' ? v.toLowerCase() : fallback()),
  },
  uppercase: {
    arity: 1,
    fn: ([v]) => (v === undefined ? undefined : typeof v === 'string' ? v.toUpperCase() : fallback()),
  },
  replace: {
    arity: 3,
    fn: ([s, pattern, replacement]) => {
      // JSONata checks every argument's type before it looks at an undefined input: so do we (else fall back).
      // Plain strings only: a regex, a function or a `$` in the replacement has JSONata's own rules.
      if (typeof pattern !== 'string' || pattern === '') return fallback();
      if (typeof replacement !== 'string' || replacement.includes('$')) return fallback();
      if (s === undefined) return undefined;
      if (typeof s !== 'string') return fallback();
      return s.split(pattern).join(replacement);
    },
  },
  split: {
    arity: 2,
    fn: ([s, sep]) => {
      if (typeof sep !== 'string') return fallback();
      if (s === undefined) return undefined;
      if (typeof s !== 'string') return fallback();
      return s.split(sep);
    },
  },
  join: {
    arity: 2,
    fn: ([v, sep]) => {
      if (typeof sep !== 'string') return fallback();
      if (v === undefined) return undefined;
      if (typeof v === 'string') return v;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return fallback();
      return v.join(sep);
    },
  },
  // Either side missing: the other as it is; else both as arrays, concatenated (a new, plain array).
  append: {
    arity: 2,
    fn: ([a, c]) => {
      if (a === undefined) return c;
      if (c === undefined) return a;
      return (Array.isArray(a) ? a : [a]).concat(Array.isArray(c) ? c : [c]);
    },
  },
  not: { arity: 1, fn: ([v]) => (v === undefined ? undefined : !toBoolean(v)) },
  boolean: { arity: 1, fn: ([v]) => toBoolean(v) },
  exists: { arity: 1, fn: ([v]) => v !== undefined },
  // Chatwoot's message filter (`$type(content) = 'string'`) ran every message through JSONata for this alone.
  type: {
    arity: 1,
    fn: ([v]) => {
      if (v === undefined) return undefined;
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'array';
      switch (typeof v) {
        case 'string':
        case 'boolean':
          return typeof v;
        case 'number':
          // JSONata calls NaN an object and raises D1001 on ±Infinity: its own answer.
          return Number.isFinite(v) ? 'number' : fallback();
        case 'object':
          return 'object';
        default:
          return fallback();
      }
    },
  },
  // Chatwoot's contact mapping splits `name` with these: every contact, on every pass, went through JSONata.
  // JSONata checks argument types first (a non-string is its T0410): fall back on anything but strings.
  trim: {
    arity: 1,
    fn: ([v]) => {
      if (v === undefined) return undefined;
      if (typeof v !== 'string') return fallback();
      let r = v.replace(/[ \t\n\r]+/gm, ' ');
      if (r.charAt(0) === ' ') r = r.substring(1);
      if (r.charAt(r.length - 1) === ' ') r = r.substring(0, r.length - 1);
      return r;
    },
  },
  substringBefore: { arity: 2, fn: ([v, chars]) => substringAround(v, chars, 'before') },
  substringAfter: { arity: 2, fn: ([v, chars]) => substringAround(v, chars, 'after') },
  contains: {
    arity: 2,
    fn: ([v, token]) => {
      // A regex token is JSONata's (a matcher function).
      if (typeof token !== 'string' || (v !== undefined && typeof v !== 'string')) return fallback();
      if (v === undefined) return undefined;
      return v.includes(token);
    },
  },
  count: {
    arity: 1,
    fn: ([v]) => {
      if (v === undefined) return 0;
      return Array.isArray(v) ? v.length : 1;
    },
  },
};

function compileCall(n: Node, sc: Scope): Fn | null {
  const p = n.procedure;
  if (p?.type !== 'variable' || typeof p.value !== 'string' || n.value !== '(') return null;
  const name = p.value;
  const argNodes = n.arguments ?? [];
  if (name === 'match' && !sc.has(name)) return compileMatch(argNodes, sc);
  const args = argNodes.map((x) => compileNode(x, sc));
  if (args.some((f) => f === null)) return null;
  const fs = args as Fn[];
  const bound = sc.get(name);
  if (bound) {
    // A lambda of this block, called with as many arguments as it has parameters.
    if (bound.lambda !== argNodes.length) return null;
    return (input, b, vars) => {
      const l = vars[name] as Lambda;
      const frame: Vars = Object.create(l.frame);
      for (let i = 0; i < l.params.length; i++) frame[l.params[i] as string] = (fs[i] as Fn)(input, b, vars);
      return l.body(l.input, b, frame);
    };
  }
  const builtin = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
  if (!builtin || argNodes.length !== builtin.arity) return null;
  return (input, bindings, vars) => {
    // A binding of the same name (`$string := …`) would shadow the built-in: JSONata then.
    if (Object.hasOwn(bindings, name)) return fallback();
    return builtin.fn(fs.map((f) => f(input, bindings, vars)));
  };
}

/**
 * `$match(s, /re/)` with a regex literal: JSONata's match objects ({match, index, groups}) as a sequence (nothing,
 * the one object, or the objects). A later match of zero length is JSONata's D1004, a non-string its T0410: fall back.
 */
function compileMatch(argNodes: Node[], sc: Scope): Fn | null {
  const [strNode, reNode] = argNodes;
  if (argNodes.length !== 2 || !strNode || reNode?.type !== 'regex' || !(reNode.value instanceof RegExp)) return null;
  const str = compileNode(strNode, sc);
  if (!str) return null;
  // The parser's RegExp (flags i/m and always g), copied as JSONata's evaluator does; used synchronously only.
  const re = new RegExp(reNode.value);
  return (input, b, vars) => {
    if (Object.hasOwn(b, 'match')) return fallback();
    const s = str(input, b, vars);
    if (s === undefined) return undefined;
    if (typeof s !== 'string') return fallback();
    const out: Array<{ match: string; index: number; groups: Array<string | undefined> }> = [];
    re.lastIndex = 0;
    let m = re.exec(s);
    while (m !== null) {
      out.push({ match: m[0], index: m.index, groups: m.slice(1) });
      if (re.lastIndex >= s.length) break;
      m = re.exec(s);
      if (m !== null && m[0] === '') return fallback();
    }
    return out.length === 0 ? undefined : out.length === 1 ? out[0] : out;
  };
}

/**
 * A path that maps over sequences (`$match(s, /re/).match`, `$xs.{ … }`, `attachments.{ … }`): the first step a
 * name, a variable or a call, each later step a name or an object constructor, applied to every item. JSONata's
 * rules: each step's values are collected, the first step's arrays flattened into items; the result is nothing,
 * the one item, or the items. An array met after the first step (nested data, or a name over an array item) falls
 * back, as does an array input (JSONata iterates over it).
 */
function compileMappingPath(n: Node, sc: Scope): Fn | null {
  if (hasAny(n, [...PATH_EXTRAS, 'group'])) return null;
  const steps = n.steps ?? [];
  if (steps.length < 2) return null;
  const fns: Fn[] = [];
  for (const [i, s] of steps.entries()) {
    if (hasAny(s, STEP_EXTRAS)) return null;
    let f: Fn | null = null;
    if (s.type === 'name' && typeof s.value === 'string') {
      const name = s.value;
      f = (x) => {
        if (Array.isArray(x)) return fallback();
        if (x === null || typeof x !== 'object' || !Object.hasOwn(x, name)) return undefined;
        return plain((x as Record<string, unknown>)[name]);
      };
    } else if (i === 0 && (s.type === 'variable' || s.type === 'function')) f = compileNode(s, sc);
    else if (i > 0 && s.type === 'unary' && s.value === '{') f = compileObject(s, sc);
    if (!f) return null;
    fns.push(f);
  }
  return (input, b, vars) => {
    if (Array.isArray(input)) return fallback();
    let seq: unknown[] = [input];
    for (let i = 0; i < fns.length; i++) {
      const f = fns[i] as Fn;
      const out: unknown[] = [];
      for (const x of seq) {
        const v = f(x, b, vars);
        if (v === undefined) continue;
        if (!Array.isArray(v)) out.push(v);
        else if (i > 0) return fallback();
        else for (const y of v) out.push(y);
      }
      if (!out.length) return undefined;
      seq = out;
    }
    return seq.length === 1 ? seq[0] : seq;
  };
}

/** `$split(s, '/')[-1]`: one constant integer index on an array a built-in returned. */
function compileIndexed(n: Node, sc: Scope): Fn | null {
  const preds = n.predicate as Node[] | undefined;
  if (hasAny(n, [...STEP_EXTRAS.filter((k) => k !== 'predicate'), ...PATH_EXTRAS]) || preds?.length !== 1) return null;
  const [pred] = preds as [Node];
  const idx = (pred.expr as Node | undefined)?.value;
  if (pred.type !== 'filter' || (pred.expr as Node).type !== 'number' || !Number.isInteger(idx)) return null;
  if (n.procedure?.value !== 'split') return null;
  const call = compileCall({ ...n, predicate: undefined }, sc);
  if (!call) return null;
  const i = idx as number;
  return (input, b, vars) => {
    const v = call(input, b, vars);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return fallback();
    const item = v[i < 0 ? v.length + i : i];
    return typeof item === 'string' ? item : undefined;
  };
}

/** `[a, b][pred]`: the constructed items that pass; one item is unwrapped, none is nothing (JSONata's sequence). */
function compileFilteredArray(n: Node, sc: Scope): Fn | null {
  if (hasAny(n, [...STEP_EXTRAS.filter((k) => k !== 'predicate'), ...PATH_EXTRAS])) return null;
  const arr = compileArray({ ...n, predicate: undefined }, sc);
  const filters = compileFilters((n.predicate as Node[] | undefined) ?? [], sc);
  if (!arr || !filters) return null;
  return (input, b, vars) => {
    const seq = filters(asSequence(arr(input, b, vars)), b, vars);
    return seq.length === 0 ? undefined : seq.length === 1 ? seq[0] : seq;
  };
}

/** `( $a := …; $f := function($x) { … }; expression )`: the last value; the bindings live in the block only. */
function compileBlock(n: Node, sc: Scope): Fn | null {
  const exprs = n.expressions ?? [];
  if (!exprs.length) return null;
  const scope = new Map(sc);
  const steps: Array<{ name?: string; lambda?: { body: Fn; params: string[] }; fn?: Fn }> = [];
  for (const [i, x] of exprs.entries()) {
    if (x.type !== 'bind') {
      const f = compileNode(x, scope);
      if (!f) return null;
      steps.push({ fn: f });
      continue;
    }
    const lhs = x.lhs as Node;
    const rhs = x.rhs as Node;
    if (lhs.type !== 'variable' || typeof lhs.value !== 'string' || lhs.value === '') return null;
    const name = lhs.value;
    if (rhs.type === 'lambda') {
      // A lambda as the block's value would hand a function on: JSONata.
      if (i === exprs.length - 1 || rhs.signature !== undefined || rhs.thunk) return null;
      const params = (rhs.arguments ?? []).map((a) => (a.type === 'variable' ? a.value : undefined));
      if (params.some((a) => typeof a !== 'string' || a === '')) return null;
      const inner = new Map(scope);
      for (const a of params as string[]) inner.set(a, {});
      // Recursion (the lambda calling itself) is left to JSONata: the name is bound after the body.
      inner.delete(name);
      const body = compileNode(rhs.body as Node, inner);
      if (!body) return null;
      scope.set(name, { lambda: params.length });
      steps.push({ name, lambda: { body, params: params as string[] } });
    } else {
      const f = compileNode(rhs, scope);
      if (!f) return null;
      scope.set(name, {});
      steps.push({ name, fn: f });
    }
  }
  return (input, b, vars) => {
    const frame: Vars = Object.create(vars);
    let v: unknown;
    for (const st of steps) {
      if (st.lambda) {
        v = undefined;
        frame[st.name as string] = { ...st.lambda, input, frame } satisfies Lambda;
      } else {
        v = (st.fn as Fn)(input, b, frame);
        if (st.name !== undefined) frame[st.name] = v;
      }
    }
    return v;
  };
}

function compileNode(n: Node, sc: Scope): Fn | null {
  // Predicates, focus/index bindings, grouping, sorting … on any node: JSONata.
  if (n.type !== 'path' && hasAny(n, [...STEP_EXTRAS, ...PATH_EXTRAS])) {
    // Handled: a constant index on a built-in's result (`$split(s, '/')[-1]`), filters on an array constructor.
    if (n.type === 'function') return compileIndexed(n, sc);
    if (n.type === 'unary' && n.value === '[' && !n.consarray) return compileFilteredArray(n, sc);
    return null;
  }
  switch (n.type) {
    case 'path':
      return compilePath(n, sc) ?? compileMappingPath(n, sc);
    case 'string':
    case 'number':
    case 'value': {
      const v = n.value;
      if (!finite(v)) return null;
      return () => v;
    }
    case 'condition': {
      const c = compileNode(n.condition as Node, sc);
      const t = compileNode(n.then as Node, sc);
      const e = n.else === undefined ? () => undefined : compileNode(n.else, sc);
      if (!c || !t || !e) return null;
      return (input, b, vars) => (toBoolean(c(input, b, vars)) ? t(input, b, vars) : e(input, b, vars));
    }
    case 'binary':
      return compileBinary(n, sc);
    case 'block':
      return compileBlock(n, sc);
    case 'variable': {
      const name = n.value;
      // `$` (the context), or a value bound in an enclosing block (a lambda is never handed on as a value).
      if (name === '') return (input) => (Array.isArray(input) ? fallback() : input);
      const bound = typeof name === 'string' ? sc.get(name) : undefined;
      if (bound) return bound.lambda !== undefined ? null : (_input, _b, vars) => vars[name as string];
      // A binding of the evaluation (`$secrets`, `$parent`, `$config`, `$cursor`: a request's headers and URL, once
      // per request). A name not bound there may be a built-in function used as a value: JSONata's.
      if (typeof name !== 'string' || !/^[A-Za-z_]\w*$/.test(name)) return null;
      return (_input, b) => (Object.hasOwn(b, name) ? plain(b[name]) : fallback());
    }
    case 'lambda':
      // A tail call JSONata's parser wrapped to run later: the same value as the call itself.
      return n.thunk === true && !(n.arguments as Node[] | undefined)?.length ? compileNode(n.body as Node, sc) : null;
    case 'function':
      return compileCall(n, sc);
    case 'unary':
      if (n.value === '{') return compileObject(n, sc);
      // A constructor that is a path step (`a.[b]`) keeps JSONata's special handling.
      if (n.value === '[') return n.consarray ? null : compileArray(n, sc);
      if (n.value === '-') {
        const f = compileNode(n.expression as Node, sc);
        if (!f) return null;
        return (input, b, vars) => {
          const v = f(input, b, vars);
          if (v === undefined) return undefined;
          return typeof v === 'number' && Number.isFinite(v) ? -v : fallback();
        };
      }
      return null;
    default:
      return null;
  }
}

const compiled = new Map<string, Fn | null>();

/** The compiled form of a spec expression, or null when it uses something not compiled (JSONata runs it). */
export function fastExpression(expr: string): Fn | null {
  let f = compiled.get(expr);
  if (f === undefined) {
    try {
      f = compileNode(jsonata(expr).ast() as Node, EMPTY);
    } catch {
      f = null; // a syntax error: JSONata reports it
    }
    compiled.set(expr, f);
  }
  return f;
}
