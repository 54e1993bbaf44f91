/**
 * The delivery headers that may be stored (webhook inbox, dead letters): everything the mapping may read (e.g. a
 * signed timestamp used as the row version) except what can carry a credential. The token or signature was checked
 * when the delivery arrived, so a stored delivery is processed again without it.
 */
const SENSITIVE = /authorization|cookie|token|secret|signature|api[-_]?key|password|auth/i;

export function storableHeaders(headers: Record<string, string>, drop: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const skip = new Set(drop.map((h) => h.toLowerCase()));
  for (const [k, v] of Object.entries(headers)) if (!skip.has(k.toLowerCase()) && !SENSITIVE.test(k)) out[k] = v;
  return out;
}

/** Stored headers read back from a letter's details (anything but a string map counts as none). */
export function headersOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v))
    for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
