import { type Finding, normalizeFindings } from './finding.ts';

/**
 * `text`: one line per finding, `file:line:col CODE message` (warnings say so after the code), sorted by file,
 * line and column. `json`: the same findings as a stable, sorted JSON array with a fixed key order.
 */
export function formatFindings(findings: readonly Finding[], format: 'text' | 'json'): string {
  const sorted = normalizeFindings(findings);
  if (format === 'json') {
    const rows = sorted.map((f) => ({
      file: f.file,
      line: f.line,
      col: f.col,
      code: f.code,
      severity: f.severity,
      message: f.message,
      path: f.path,
    }));
    return `${JSON.stringify(rows, null, 2)}\n`;
  }
  return sorted
    .map((f) => `${f.file}:${f.line}:${f.col} ${f.code} ${f.severity === 'warning' ? 'warning: ' : ''}${f.message}`)
    .join('\n')
    .concat(sorted.length ? '\n' : '');
}

/** `2 errors, 1 warning in 5 files` */
export function summarize(findings: readonly Finding[], files: number): string {
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  const n = (k: number, w: string): string => `${k} ${w}${k === 1 ? '' : 's'}`;
  return `${n(errors, 'error')}, ${n(warnings, 'warning')} in ${n(files, 'file')}`;
}

/** Exit codes of `routiq lint`: 0 clean (warnings allowed), 1 any error finding, 2 usage error. */
export const LINT_EXIT = { ok: 0, findings: 1, usage: 2 } as const;

export function lintExitCode(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.severity === 'error') ? LINT_EXIT.findings : LINT_EXIT.ok;
}
