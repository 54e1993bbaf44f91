import { describe, expect, it } from 'vitest';
import { type Finding, formatFindings, LINT_EXIT, lintExitCode, summarize } from './index.ts';

const f = (
  file: string,
  line: number,
  col: number,
  code: string,
  severity: Finding['severity'] = 'error',
): Finding => ({
  file,
  line,
  col,
  code,
  severity,
  message: `${code} message`,
  path: 'streams[0].pagination.type',
});

const findings = [
  f('b.yaml', 3, 1, 'RQ2010'),
  f('a.yaml', 10, 5, 'RQ2070', 'warning'),
  f('a.yaml', 2, 7, 'RQ2013'),
  f('a.yaml', 2, 3, 'RQ2022'),
];

describe('formatFindings', () => {
  it('text: one line per finding, file:line:col CODE message, sorted by file, line, col', () => {
    expect(formatFindings(findings, 'text')).toBe(
      [
        'a.yaml:2:3 RQ2022 RQ2022 message',
        'a.yaml:2:7 RQ2013 RQ2013 message',
        'a.yaml:10:5 RQ2070 warning: RQ2070 message',
        'b.yaml:3:1 RQ2010 RQ2010 message',
        '',
      ].join('\n'),
    );
  });

  it('text: nothing for no findings', () => {
    expect(formatFindings([], 'text')).toBe('');
  });

  it('json: a stable, sorted array with a fixed key order', () => {
    const json = formatFindings([...findings].reverse(), 'json');
    expect(json).toBe(formatFindings(findings, 'json'));
    const rows = JSON.parse(json) as Array<Record<string, unknown>>;
    expect(rows.map((r) => `${r.file}:${r.line}:${r.col}`)).toEqual([
      'a.yaml:2:3',
      'a.yaml:2:7',
      'a.yaml:10:5',
      'b.yaml:3:1',
    ]);
    expect(Object.keys(rows[0] ?? {})).toEqual(['file', 'line', 'col', 'code', 'severity', 'message', 'path']);
    expect(formatFindings([], 'json')).toBe('[]\n');
  });

  it('drops exact duplicates', () => {
    expect(
      formatFindings([findings[0] as Finding, findings[0] as Finding], 'text')
        .trim()
        .split('\n'),
    ).toHaveLength(1);
  });
});

describe('exit codes and summary', () => {
  it('0 when clean or only warnings, 1 on any error', () => {
    expect(lintExitCode([])).toBe(LINT_EXIT.ok);
    expect(lintExitCode([f('a', 1, 1, 'RQ2070', 'warning')])).toBe(0);
    expect(lintExitCode(findings)).toBe(1);
    expect(LINT_EXIT.usage).toBe(2);
  });

  it('summarizes', () => {
    expect(summarize(findings, 2)).toBe('3 errors, 1 warning in 2 files');
    expect(summarize([], 1)).toBe('0 errors, 0 warnings in 1 file');
  });
});
