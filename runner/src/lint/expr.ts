/**
 * Static analysis of JSONata expressions and `{{ }}` templates: compile errors with their offset, free
 * variables, `$secrets.X`/`$config.X` references, field paths read, and the objects a mapping produces.
 */
import jsonata from 'jsonata';
import { ROUTIQ_FUNCTION_NAMES } from '../engine/expr.ts';
import { BINDING_NAMES } from '../spec/bindings.ts';

/** A node of jsonata's processed AST (its d.ts omits path, bind, apply, … and the extra fields). */
export type AstNode = { type: string; value?: unknown; position?: number } & Record<string, unknown>;

/** Bindings the engine provides to spec expressions: the table in spec/bindings.ts. */
export const KNOWN_BINDINGS: readonly string[] = BINDING_NAMES;

/** JSONata 2.2 built-in functions. */
export const JSONATA_FUNCTIONS = new Set([
  'sum',
  'count',
  'max',
  'min',
  'average',
  'string',
  'substring',
  'substringBefore',
  'substringAfter',
  'lowercase',
  'uppercase',
  'length',
  'trim',
  'pad',
  'match',
  'contains',
  'replace',
  'split',
  'join',
  'formatNumber',
  'formatBase',
  'formatInteger',
  'parseInteger',
  'number',
  'floor',
  'ceil',
  'round',
  'abs',
  'sqrt',
  'power',
  'random',
  'boolean',
  'not',
  'exists',
  'distinct',
  'shuffle',
  'zip',
  'append',
  'reverse',
  'sort',
  'keys',
  'lookup',
  'spread',
  'merge',
  'sift',
  'each',
  'error',
  'assert',
  'type',
  'map',
  'filter',
  'single',
  'reduce',
  'now',
  'millis',
  'fromMillis',
  'toMillis',
  'base64encode',
  'base64decode',
  'encodeUrlComponent',
  'encodeUrl',
  'decodeUrlComponent',
  'decodeUrl',
  'eval',
  'clone',
]);

/** Functions the engine adds to every spec expression (runner/src/engine/expr.ts), e.g. `$parseJson`. */
export const ROUTIQ_FUNCTIONS: ReadonlySet<string> = new Set(ROUTIQ_FUNCTION_NAMES);

/** Built-in functions a spec may not use (RQ2026), with what to say instead. */
export const FORBIDDEN_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  [
    'eval',
    '$eval runs a string as an expression: a payload or response could run code with the connection settings in scope; read a JSON string with $parseJson(str)',
  ],
]);

/** What a spec expression may call: JSONata's built-ins except the forbidden ones, plus the engine's. */
export const SPEC_FUNCTIONS: ReadonlySet<string> = new Set(
  [...JSONATA_FUNCTIONS, ...ROUTIQ_FUNCTIONS].filter((f) => !FORBIDDEN_FUNCTIONS.has(f)),
);

export interface CompileError {
  message: string;
  /** Offset in the expression the error points at. */
  offset: number;
}

export function compile(expr: string): { ast: AstNode; error?: undefined } | { ast?: undefined; error: CompileError } {
  try {
    return { ast: jsonata(expr).ast() as unknown as AstNode };
  } catch (e) {
    const err = e as { message?: string; position?: number; token?: unknown; code?: string };
    return { error: { message: err.message ?? String(e), offset: errorOffset(expr, err) } };
  }
}

function errorOffset(expr: string, err: { position?: number; token?: unknown; code?: string }): number {
  const len = expr.length;
  if (err.code === 'S0101') {
    // Unterminated string: point at the opening quote.
    let open = -1;
    let quote = '';
    for (let i = 0; i < len; i++) {
      const c = expr[i] as string;
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === "'" || c === '`') {
        quote = c;
        open = i;
      }
    }
    if (open >= 0) return open;
  }
  const pos = typeof err.position === 'number' ? err.position : len;
  if (typeof err.token !== 'string' || err.token === '(end)') return trimEnd(expr, Math.min(pos, len));
  let start = pos - err.token.length;
  if (/["'`]/.test(expr[pos - 1] ?? '') && expr[pos - 1] !== err.token.at(-1)) start -= 2;
  return Math.max(0, Math.min(start, len));
}

/** "end of expression" errors point just after the last non-space character. */
function trimEnd(expr: string, pos: number): number {
  let p = pos;
  while (p > 0 && /\s/.test(expr[p - 1] ?? '')) p--;
  return p;
}

export interface TemplatePart {
  expr: string;
  /** Offset of `expr` in the template string. */
  offset: number;
}

/**
 * Splits a template into its `{{ }}` parts. Braces and quotes inside a part are tracked, so object
 * constructors (`{{ {"a": 1} }}`) work.
 */
export function parseTemplate(s: string): { parts: TemplatePart[]; error?: CompileError } {
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf('{{', i);
    if (open < 0) break;
    let j = open + 2;
    let depth = 0;
    let quote = '';
    let close = -1;
    for (; j < s.length; j++) {
      const c = s[j] as string;
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === "'" || c === '`') quote = c;
      else if (c === '{') depth++;
      else if (c === '}') {
        if (depth === 0 && s[j + 1] === '}') {
          close = j;
          break;
        }
        depth = Math.max(0, depth - 1);
      }
    }
    if (close < 0) return { parts, error: { message: 'template part "{{" is never closed with "}}"', offset: open } };
    const raw = s.slice(open + 2, close);
    const lead = raw.length - raw.trimStart().length;
    parts.push({ expr: raw.trim(), offset: open + 2 + lead });
    i = close + 2;
  }
  return { parts };
}

/** Literal text of a template outside its `{{ }}` parts (for credential detection). */
export function templateLiterals(s: string): Array<{ text: string; offset: number }> {
  const { parts } = parseTemplate(s);
  const out: Array<{ text: string; offset: number }> = [];
  let pos = 0;
  for (const p of parts) {
    const open = s.lastIndexOf('{{', p.offset);
    if (open > pos) out.push({ text: s.slice(pos, open), offset: pos });
    const close = s.indexOf('}}', p.offset + p.expr.length);
    pos = close < 0 ? s.length : close + 2;
  }
  if (pos < s.length) out.push({ text: s.slice(pos), offset: pos });
  return out;
}

/** Depth-first visit of every AST node (children in any property), each once. */
export function visit(ast: AstNode, fn: (n: AstNode, parent: AstNode | undefined, key: string) => void): void {
  const seen = new Set<object>();
  const walk = (v: unknown, parent: AstNode | undefined, key: string): void => {
    if (!v || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) walk(x, parent, key);
      return;
    }
    const n = v as AstNode;
    if (typeof n.type === 'string') fn(n, parent, key);
    for (const [k, child] of Object.entries(n)) {
      if (child && typeof child === 'object') walk(child, typeof n.type === 'string' ? n : parent, k);
    }
  };
  walk(ast, undefined, '');
}

/** Start offset of a node in the source expression (JSONata records the end of each token). */
export function nodeStart(n: AstNode): number {
  const pos = typeof n.position === 'number' ? n.position : 0;
  const v = typeof n.value === 'string' ? n.value : typeof n.value === 'number' ? String(n.value) : '';
  switch (n.type) {
    case 'variable':
      return Math.max(0, pos - v.length - 1);
    case 'name':
      return Math.max(0, pos - v.length);
    case 'string':
      return Math.max(0, pos - v.length - 2);
    case 'number':
      return Math.max(0, pos - v.length);
    case 'unary':
      return Math.max(0, pos - 1);
    default:
      return Math.max(0, pos - 1);
  }
}

export interface VariableUse {
  name: string;
  offset: number;
  /** Called as a function: `$name(…)`. */
  call: boolean;
  /** For `$config.x` / `$secrets.x`: the field read. */
  field?: string;
}

/** Variables read but not bound inside the expression itself (lambda parameters, `:=`, `@$x`, `#$i`). */
export function freeVariables(ast: AstNode): VariableUse[] {
  const bound = new Set<string>(['', '$']);
  const decl = new Set<object>();
  visit(ast, (n) => {
    if (n.type === 'lambda' && Array.isArray(n.arguments)) {
      for (const a of n.arguments as AstNode[]) {
        bound.add(String(a.value));
        decl.add(a);
      }
    }
    if (n.type === 'bind' && n.lhs && typeof n.lhs === 'object' && !Array.isArray(n.lhs)) {
      const lhs = n.lhs as AstNode;
      bound.add(String(lhs.value));
      decl.add(lhs);
    }
    if (typeof n.focus === 'string') bound.add(n.focus);
    if (typeof n.index === 'string') bound.add(n.index);
  });
  const out: VariableUse[] = [];
  visit(ast, (n, parent, key) => {
    if (n.type !== 'variable' || decl.has(n)) return;
    const name = String(n.value);
    if (bound.has(name)) return;
    const use: VariableUse = { name, offset: nodeStart(n), call: key === 'procedure' };
    if (parent?.type === 'path' && Array.isArray(parent.steps) && parent.steps[0] === n) {
      const next = parent.steps[1] as AstNode | undefined;
      if (next?.type === 'name') use.field = String(next.value);
    }
    out.push(use);
  });
  return out.sort((a, b) => a.offset - b.offset);
}

/** Field paths read from the input, e.g. `updated_at`, `meta.sender.id` (paths starting at `$`/the context). */
export function fieldChains(ast: AstNode): string[][] {
  const chains: string[][] = [];
  visit(ast, (n) => {
    if (n.type !== 'path' || !Array.isArray(n.steps)) return;
    const steps = n.steps as AstNode[];
    let k = 0;
    if (steps[0]?.type === 'variable') {
      if (steps[0].value !== '') return;
      k = 1;
    }
    const chain: string[] = [];
    for (; k < steps.length; k++) {
      const s = steps[k] as AstNode;
      if (s.type !== 'name') break;
      chain.push(String(s.value));
    }
    if (chain.length) chains.push(chain);
  });
  return chains;
}

/** True when `needle` appears as a contiguous run in `hay`. */
export function containsChain(hay: readonly string[], needle: readonly string[]): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** An object constructor a mapping returns as a row (directly or via arrays, conditions, blocks, `$map`). */
export interface ObjectProducer {
  /** The `{` node. */
  node: AstNode;
  /** Literal keys with their key node. */
  keys: Array<{ key: string; keyNode: AstNode; value: AstNode }>;
  /** Some keys are computed or merged from something we cannot see: required keys cannot be checked. */
  open: boolean;
}

/**
 * The objects an expression can produce as its result. `unknown` is set when some result is not an object
 * constructor we can see through (a path, a variable, a function result), so absence of keys proves nothing.
 */
export function producedObjects(ast: AstNode): { objects: ObjectProducer[]; unknown: boolean } {
  const objects: ObjectProducer[] = [];
  let unknown = false;
  const lambdas = new Map<string, AstNode>();
  visit(ast, (n) => {
    if (n.type === 'bind' && n.lhs && !Array.isArray(n.lhs) && (n.rhs as AstNode | undefined)?.type === 'lambda') {
      lambdas.set(String((n.lhs as AstNode).value), n.rhs as AstNode);
    }
  });
  const fromPairs = (node: AstNode, pairs: unknown, open: boolean): ObjectProducer => {
    const p: ObjectProducer = { node, keys: [], open };
    for (const pair of Array.isArray(pairs) ? (pairs as Array<[AstNode, AstNode]>) : []) {
      const [k, v] = pair;
      if (k?.type === 'string') p.keys.push({ key: String(k.value), keyNode: k, value: v });
      else p.open = true;
    }
    return p;
  };
  const lambdaBody = (fn: AstNode | undefined): AstNode | undefined => {
    if (!fn) return undefined;
    if (fn.type === 'lambda') return fn.body as AstNode | undefined;
    if (fn.type === 'variable') return lambdas.get(String(fn.value))?.body as AstNode | undefined;
    return undefined;
  };
  const walk = (n: AstNode | undefined, depth: number): void => {
    if (!n || depth > 50) return;
    switch (n.type) {
      case 'unary':
        if (n.value === '{') objects.push(fromPairs(n, n.lhs, false));
        else if (n.value === '[') for (const e of (n.expressions as AstNode[] | undefined) ?? []) walk(e, depth + 1);
        else unknown = true;
        return;
      case 'condition':
        walk(n.then as AstNode, depth + 1);
        if (n.else) walk(n.else as AstNode, depth + 1);
        return;
      case 'block': {
        const exprs = (n.expressions as AstNode[] | undefined) ?? [];
        walk(exprs[exprs.length - 1], depth + 1);
        return;
      }
      case 'path': {
        if (n.group && typeof n.group === 'object') {
          objects.push(fromPairs(n as AstNode, (n.group as { lhs?: unknown }).lhs, true));
          return;
        }
        const steps = (n.steps as AstNode[] | undefined) ?? [];
        const last = steps[steps.length - 1];
        if (steps.length > 1 || (last && last.type !== 'name' && last.type !== 'variable')) walk(last, depth + 1);
        else unknown = true;
        return;
      }
      case 'function': {
        const proc = n.procedure as AstNode | undefined;
        const name = proc?.type === 'variable' ? String(proc.value) : '';
        const args = (n.arguments as AstNode[] | undefined) ?? [];
        if (name === 'map' || name === 'filter' || name === 'single') {
          if (name === 'map') {
            const body = lambdaBody(args[1]);
            if (body) walk(body, depth + 1);
            else unknown = true;
          } else walk(args[0], depth + 1);
          return;
        }
        if (name === 'merge') {
          // One object made of several: keys are the union; open if any part is not a constructor.
          const before = objects.length;
          const arg = args[0];
          const parts = arg?.type === 'unary' && arg.value === '[' ? ((arg.expressions as AstNode[]) ?? []) : [arg];
          const merged: ObjectProducer = { node: n, keys: [], open: false };
          for (const part of parts) {
            const sub = producedObjects(part as AstNode);
            if (sub.unknown || !sub.objects.length) merged.open = true;
            for (const o of sub.objects) {
              merged.keys.push(...o.keys);
              if (o.open) merged.open = true;
            }
          }
          objects.length = before;
          objects.push(merged);
          return;
        }
        if (name === 'append') {
          for (const a of args) walk(a, depth + 1);
          return;
        }
        const body = lambdaBody(proc);
        if (body) walk(body, depth + 1);
        else unknown = true;
        return;
      }
      case 'apply': {
        const rhs = n.rhs as AstNode | undefined;
        if (rhs?.type === 'function') {
          const proc = rhs.procedure as AstNode | undefined;
          const args = (rhs.arguments as AstNode[] | undefined) ?? [];
          if (proc?.type === 'variable' && proc.value === 'map') {
            const body = lambdaBody(args[0]);
            if (body) walk(body, depth + 1);
            else unknown = true;
            return;
          }
          if (proc?.type === 'variable' && (proc.value === 'filter' || proc.value === 'single')) {
            walk(n.lhs as AstNode, depth + 1);
            return;
          }
        }
        unknown = true;
        return;
      }
      default:
        unknown = true;
    }
  };
  walk(ast, 0);
  return { objects, unknown };
}

/** Constant values an expression can evaluate to, when it is made only of literals and conditions. */
export function literalValues(n: AstNode | undefined): Array<{ value: unknown; node: AstNode }> | undefined {
  if (!n) return undefined;
  if (n.type === 'string' || n.type === 'number') return [{ value: n.value, node: n }];
  if (n.type === 'value') return [{ value: n.value, node: n }];
  if (n.type === 'condition') {
    const a = literalValues(n.then as AstNode);
    const b = n.else ? literalValues(n.else as AstNode) : [];
    return a && b ? [...a, ...b] : undefined;
  }
  if (n.type === 'block') {
    const exprs = (n.expressions as AstNode[] | undefined) ?? [];
    return literalValues(exprs[exprs.length - 1]);
  }
  return undefined;
}
