/** "did you mean …?" suggestions for typos in keys, enum values, names and bindings. */

/** Optimal string alignment distance (Damerau–Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  if (m === 0) return n;
  if (n === 0) return m;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => {
    const row = new Array<number>(n + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= n; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= m; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = v;
    }
  }
  return (d[m] as number[])[n] as number;
}

const normalize = (s: string): string => s.toLowerCase().replace(/[-\s.]/g, '_');

/**
 * The closest candidate, or undefined when nothing is close enough. Case and `-`/`_` differences count as
 * exact; otherwise up to a third of the word may differ (at least 2 edits), and a candidate that contains the
 * word (or is contained in it) is the fallback (`page_size` → `size`).
 */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const list = [...new Set(candidates)].filter((c) => c !== input);
  if (!list.length || !input) return undefined;
  const n = normalize(input);
  const exact = list.find((c) => normalize(c) === n);
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of list) {
    const dist = editDistance(n, normalize(c));
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(input.length / 3))) return best;
  if (n.length >= 3) {
    const containing = list
      .filter((c) => {
        const nc = normalize(c);
        return nc.length >= 3 && (nc.includes(n) || n.includes(nc));
      })
      .sort((a, b) => Math.abs(a.length - input.length) - Math.abs(b.length - input.length) || a.localeCompare(b));
    if (containing[0]) return containing[0];
  }
  return undefined;
}

/** `; did you mean "x"?` or an empty string. */
export function suggestion(input: string, candidates: Iterable<string>, quote = '"'): string {
  const s = didYouMean(input, candidates);
  return s === undefined ? '' : `; did you mean ${quote}${s}${quote}?`;
}
