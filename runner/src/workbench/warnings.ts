/**
 * What a test read notices that a sync would silently accept: a `records` path that selects nothing from a response
 * that has content (a typo reports "succeeded, 0 records"), and a declared mapping that never produced a row.
 */

import { type Bindings, evaluate } from '../engine/expr.ts';
import { codes } from '../errors/registry.ts';
import { didYouMean } from '../lint/suggest.ts';
import type { StreamSpec } from '../spec/types.ts';
import type { StreamReport, Warning } from './report.ts';

function warning(code: 'RQ6102' | 'RQ6103', stream: string, message: string): Warning {
  return { code, stream, message, hint: codes[code]?.hint ?? '' };
}

/** Keys of an object, or of the objects of an array (the first few), for "the response has …" messages. */
function keysOf(v: unknown): string[] {
  if (Array.isArray(v)) return [...new Set(v.slice(0, 5).flatMap((x) => keysOf(x)))];
  return v && typeof v === 'object' ? Object.keys(v as object) : [];
}

/**
 * A page without records: fine when the path selected an empty list, suspicious when it selected nothing at all
 * from a body that has content. A plain dotted path is walked to name the first missing step and the nearest key.
 */
export async function recordsPathWarning(
  s: StreamSpec,
  body: unknown,
  bodyText: string,
  b: Bindings,
): Promise<Warning | undefined> {
  if (body === undefined || body === null || bodyText.trim().length <= 2) return undefined;
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return undefined;
  const path = s.records;
  if (!path) return undefined;
  const v = await evaluate(path, body, b).catch(() => undefined);
  if (v !== undefined && v !== null) return undefined;
  const size = `${bodyText.length} bytes`;
  if (/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(path.trim())) {
    let at: unknown = body;
    const walked: string[] = [];
    for (const step of path.trim().split('.')) {
      const keys = keysOf(at);
      const next = Array.isArray(at)
        ? at
            .map((x) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[step] : undefined))
            .find((x) => x !== undefined)
        : at && typeof at === 'object'
          ? (at as Record<string, unknown>)[step]
          : undefined;
      if (next === undefined) {
        const where = walked.length ? `\`${walked.join('.')}\`` : 'the response';
        const guess = didYouMean(step, keys);
        return warning(
          'RQ6102',
          s.name,
          `stream ${s.name}: records path \`${path}\` selects nothing from a non-empty response (${size}): ${where} has no key "${step}"${guess ? ` — did you mean "${[...walked, guess].join('.')}"?` : ''} (keys: ${keys.slice(0, 12).join(', ') || 'none'})`,
        );
      }
      walked.push(step);
      at = next;
    }
  }
  return warning(
    'RQ6102',
    s.name,
    `stream ${s.name}: records path \`${path}\` selects nothing from a non-empty response (${size}; top-level keys: ${keysOf(body).slice(0, 12).join(', ') || 'none'})`,
  );
}

/** Each unified table a stream maps to should get at least one row once records were read. */
export function unproducedTargetWarnings(s: StreamSpec, rep: StreamReport): Warning[] {
  if (rep.records === 0) {
    if (rep.pages === 0 || rep.parent) return [];
    return [
      warning(
        'RQ6103',
        s.name,
        `stream ${s.name}: ${rep.pages} page(s) read, 0 records — nothing to map (an empty account, a filter that excludes everything, or a wrong \`records\` path)`,
      ),
    ];
  }
  const out: Warning[] = [];
  s.map.forEach((m, i) => {
    if (m.mode === 'patch') return;
    if ((rep.rows[m.target] ?? 0) > 0) return;
    out.push(
      warning(
        'RQ6103',
        s.name,
        `stream ${s.name}: map[${i}] → ${m.target} produced no row from ${rep.records} record(s)${m.when ? ` (its when: \`${m.when.trim()}\` was never true?)` : m.input ? ` (its input \`${m.input.trim()}\` was always empty?)` : ''}`,
      ),
    );
  });
  return out;
}
