/** docs/errors.md from the error-code registry (runner/src/errors/registry.ts + lint-codes.ts). */
import { lintSeverity } from '../errors/lint-codes.ts';
import { codes } from '../errors/registry.ts';
import { code, table } from './markdown.ts';

const GROUPS: Array<{ prefix: string; title: string; intro: string }> = [
  {
    prefix: 'RQ1',
    title: 'RQ1xxx: configuration',
    intro: 'The config file (`config/<env>.yaml`), environment variables and connection settings.',
  },
  {
    prefix: 'RQ2',
    title: 'RQ2xxx: connector specs',
    intro:
      'Reported by `routiq lint` as `file:line:col CODE message`. Errors make it exit 1; warnings are printed but do not fail it.',
  },
  { prefix: 'RQ3', title: 'RQ3xxx: HTTP and platforms', intro: 'Talking to the platforms during a sync.' },
  { prefix: 'RQ4', title: 'RQ4xxx: database', intro: 'The database holding the unified schema.' },
  {
    prefix: 'RQ5',
    title: 'RQ5xxx: records and dead letters',
    intro: 'Per-record failures; the record goes to the dead-letter queue and can be replayed.',
  },
  { prefix: 'RQ6', title: 'RQ6xxx: command line', intro: 'Using the `routiq` command.' },
];

export function errorsDoc(): string {
  const all = Object.entries(codes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines: string[] = [
    '> Generated from `runner/src/errors/registry.ts` and `runner/src/errors/lint-codes.ts` by `npm run docs:gen`; do not edit.',
    '',
    '# Error codes',
    '',
    'Every error routiq raises and every lint finding carries one of these codes. Codes are stable and never reused.',
    '',
  ];
  lines.push(
    table(
      ['Code', 'Name', 'What went wrong'],
      all.map(([c, info]) => [`[${c}](#${c.toLowerCase()})`, code(info.name), info.title]),
    ),
    '',
  );
  const seen = new Set<string>();
  for (const g of GROUPS) {
    const entries = all.filter(([c]) => c.startsWith(g.prefix));
    if (!entries.length) continue;
    lines.push(`## ${g.title}`, '', g.intro, '');
    for (const [c, info] of entries) {
      seen.add(c);
      lines.push(...entry(c, info));
    }
  }
  const rest = all.filter(([c]) => !seen.has(c));
  if (rest.length) {
    lines.push('## Other', '');
    for (const [c, info] of rest) lines.push(...entry(c, info));
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function entry(c: string, info: { name: string; title: string; hint: string }): string[] {
  const severity = (lintSeverity as Record<string, string | undefined>)[c];
  return [
    `### ${c}`,
    '',
    `${code(info.name)}${severity ? ` (${severity})` : ''}: ${info.title}.`,
    '',
    `What to do: ${info.hint}`,
    '',
  ];
}
