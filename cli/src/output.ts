/** Data goes to stdout, messages to stderr. */
export const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};
export const err = (s: string): void => {
  process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
};

/** Left-aligned text table. */
export function table(rows: Array<Array<string | number>>, header: string[]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((c, i) => String(c).padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Whether to colour what goes to `stream`: only a terminal gets colour, and never when NO_COLOR is set to a
 * non-empty value (https://no-color.org) or TERM is dumb. Every place the CLI colours asks here.
 */
export function colorEnabled(
  stream: { isTTY?: boolean | undefined } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

const SGR = { red: 31, green: 32, yellow: 33, cyan: 36, bold: 1, dim: 2 } as const;
export type Style = keyof typeof SGR;
export type Paint = Record<Style, (s: string) => string>;

/** ANSI styles for one stream: plain text when colour is off (colorEnabled). */
export function paint(on: boolean): Paint {
  const style = (code: number) => (s: string) => (on && s ? `\x1b[${code}m${s}\x1b[0m` : s);
  return Object.fromEntries(Object.entries(SGR).map(([k, code]) => [k, style(code)])) as Paint;
}

/** Removes ANSI escape sequences (widths, tests). */
export function stripAnsi(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escape character is the point
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
