/** Small Markdown helpers for generated reference pages. */

/** A table cell: no line breaks, pipes escaped. */
export function cell(s: string): string {
  return s
    .replace(/\r?\n+/g, ' ')
    .replace(/\|/g, '\\|')
    .trim();
}

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

export function code(s: string): string {
  return s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/** GitHub's heading anchor: lower-case, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Hands out unique anchors the way GitHub does (`x`, `x-1`, `x-2`). */
export class Anchors {
  private readonly seen = new Map<string, number>();
  take(heading: string): string {
    const base = slug(heading);
    const n = this.seen.get(base);
    this.seen.set(base, (n ?? -1) + 1);
    return n === undefined ? base : `${base}-${n + 1}`;
  }
}
