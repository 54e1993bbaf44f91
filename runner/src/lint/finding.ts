import { type LintCode, lintSeverity } from '../errors/lint-codes.ts';
import type { Position } from '../util/yaml-source.ts';
import { formatPath, type Path } from './source.ts';

/** One problem found in a file, at a real line and column. */
export interface Finding {
  file: string;
  line: number;
  col: number;
  /** A code from the error registry (RQ2xxx for specs, RQ1xxx for config files). */
  code: string;
  severity: 'error' | 'warning';
  message: string;
  /** Where in the document, e.g. `streams[0].pagination.type`. */
  path: string;
}

export type Severity = Finding['severity'];

/** Collects findings for one file. */
export class Findings {
  readonly list: Finding[] = [];
  constructor(readonly file: string) {}

  add(code: string, severity: Severity, pos: Position, path: Path, message: string): void {
    this.list.push({ file: this.file, line: pos.line, col: pos.col, code, severity, message, path: formatPath(path) });
  }

  /** A lint code with its registered severity. */
  lint(code: LintCode, pos: Position, path: Path, message: string): void {
    this.add(code, lintSeverity[code], pos, path, message);
  }
}

export function compareFindings(a: Finding, b: Finding): number {
  return (
    (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
    a.line - b.line ||
    a.col - b.col ||
    (a.code < b.code ? -1 : a.code > b.code ? 1 : 0) ||
    (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)
  );
}

/** Sorted, without exact duplicates. */
export function normalizeFindings(list: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  const out: Finding[] = [];
  for (const f of [...list].sort(compareFindings)) {
    const key = `${f.file}\0${f.line}\0${f.col}\0${f.code}\0${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}

/** `"abc"`, `5`, `a mapping`, … for messages. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
