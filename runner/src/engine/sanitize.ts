/**
 * The one boundary every platform payload crosses before anything is mapped, hashed or written: text that
 * PostgreSQL cannot store (NUL, lone UTF-16 surrogates) is replaced with U+FFFD, and nesting deeper than any
 * real record is refused. A patient can type any character; one of them must never stop a stream.
 */

/** Deeper than any record of the shipped platforms; deep enough that stringify/hash never overflow the stack. */
export const MAX_DEPTH = 64;

export interface Sanitized {
  value: unknown;
  /** Strings (values or keys) in which characters were replaced. */
  replaced: number;
  /** Nesting deeper than MAX_DEPTH: the value must not be processed (dead-letter an excerpt instead). */
  tooDeep: boolean;
}

const NUL = new RegExp(String.fromCharCode(0), 'g');

function cleanString(s: string): string | undefined {
  const wellFormed = s.isWellFormed();
  if (wellFormed && !s.includes('\u0000')) return undefined;
  return (wellFormed ? s : s.toWellFormed()).replace(NUL, '\uFFFD');
}

/** A cleaned copy of `v` (the input is not modified; unchanged subtrees are shared). */
export function sanitize(v: unknown, maxDepth = MAX_DEPTH): Sanitized {
  const st = { replaced: 0, tooDeep: false };
  const value = walk(v, 0, maxDepth, st);
  return { value, replaced: st.replaced, tooDeep: st.tooDeep };
}

function walk(v: unknown, depth: number, max: number, st: { replaced: number; tooDeep: boolean }): unknown {
  if (typeof v === 'string') {
    const c = cleanString(v);
    if (c === undefined) return v;
    st.replaced++;
    return c;
  }
  if (v === null || typeof v !== 'object') return v;
  if (depth >= max) {
    st.tooDeep = true;
    return null;
  }
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = walk(v[i], depth + 1, max, st);
      if (st.tooDeep) return null;
      if (x !== v[i]) {
        out ??= v.slice();
        out[i] = x;
      }
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const x = walk(o[k], depth + 1, max, st);
    if (st.tooDeep) return null;
    const ck = cleanString(k);
    if (ck !== undefined) st.replaced++;
    if (x !== o[k] || ck !== undefined) {
      out ??= { ...o };
      if (ck !== undefined) delete out[k];
      out[ck ?? k] = x;
    }
  }
  return out ?? o;
}

/**
 * Sanitize a value about to be stored as JSON. Too deep to store is an error (the caller dead-letters the record),
 * never a silent `null`.
 */
export function storable(v: unknown): unknown {
  const s = sanitize(v);
  if (s.tooDeep) throw Object.assign(new Error(`a value nests deeper than ${MAX_DEPTH} levels`), { code: '22023' });
  return s.value;
}

/** Cheap test on a response body's text: false when parsing it cannot have produced anything to clean. */
export function mayNeedSanitizing(text: string): boolean {
  return !text.isWellFormed() || text.includes('\u0000') || /\\u(0000|[dD][89a-fA-F])/.test(text);
}

/** What a dead letter keeps of a payload too deep to store as JSON: its start, as text. */
export function excerpt(text: string, max = 4096): { excerpt: string; bytes: number } {
  return { excerpt: text.slice(0, max).toWellFormed().replace(NUL, '\uFFFD'), bytes: Buffer.byteLength(text) };
}
