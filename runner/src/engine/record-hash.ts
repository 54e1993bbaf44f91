/**
 * A platform record's hash (`source_hash`, lineage): SHA-256 of its canonical JSON. Computed once per record: the
 * pagination loop guard hashes each record as its page arrives (paginate.ts) and the mapper takes the same hash for
 * the same object (hashRecordOnce); sanitizing returns the object itself when it changes nothing.
 */
import { hash } from 'node:crypto';

const hashed = new WeakMap<object, string>();

/** hashRecord, remembered for the object (records are never mutated after they are parsed). */
export function hashRecordOnce(raw: unknown): string {
  if (raw === null || typeof raw !== 'object') return hashRecord(raw);
  let h = hashed.get(raw);
  if (h === undefined) {
    h = hashRecord(raw);
    hashed.set(raw, h);
  }
  return h;
}

/** Drops the remembered hashes of records a hook may have changed in place (an after_fetch hook). */
export function forgetRecordHashes(records: readonly unknown[]): void {
  for (const r of records) if (r !== null && typeof r === 'object') hashed.delete(r);
}

export function hashRecord(raw: unknown): string {
  // crypto.hash: the one-shot form, cheaper than a createHash object per record (same digest).
  return hash('sha256', canonicalJson(raw), 'hex').slice(0, 32);
}

/** Object keys as JSON strings: records of one stream repeat the same few dozen keys. */
const quotedKeys = new Map<string, string>();

function quoted(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    // Bounded: a platform that puts ids in keys must not grow it without end.
    if (quotedKeys.size < 10_000) quotedKeys.set(k, q);
  }
  return q;
}

/** JSON with every object's keys sorted, undefined properties left out (arrays keep undefined as null). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  // Loops that append rather than map/filter/join: once per platform record, the hash's main cost.
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i) s += ',';
      s += canonicalJson(v[i]);
    }
    return `${s}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  // A platform's serializer writes keys in one order, often already sorted: sorted only when they are not.
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      keys.sort();
      break;
    }
  }
  let s = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    if (!first) s += ',';
    s += quoted(k);
    s += ':';
    s += canonicalJson(x);
    first = false;
  }
  return `${s}}`;
}
