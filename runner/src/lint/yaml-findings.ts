/** YAML syntax errors → findings, with better positions and wording than the parser's for common mistakes. */
import { isMap, isScalar, type Node, Scalar, visit } from 'yaml';
import type { Findings } from './finding.ts';
import type { SourceFile } from './source.ts';

export interface YamlCodes {
  syntax: string;
  duplicateKey: string;
}

/**
 * Reports YAML errors. Returns true when the document is too broken to check further (any error other than a
 * duplicate key): findings about a half-parsed document would only be noise.
 */
export function yamlFindings(src: SourceFile, out: Findings, codes: YamlCodes): boolean {
  const errors = src.yaml.doc.errors;
  if (!errors.length) return false;
  // Only the first syntax error is reported: the ones after it are almost always its echo (a missing quote or
  // a bad indent confuses everything below). Duplicate keys are independent and all reported.
  let fatal = false;
  const multiline = errors.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY');
  for (const e of errors) {
    if (e.code === 'DUPLICATE_KEY') {
      const first = firstOccurrence(src, e.pos[0]);
      const key = first?.key ?? src.text.slice(e.pos[0], e.pos[1]).replace(/:.*$/s, '').trim();
      const where = first ? ` (first at line ${src.posOfOffset(first.offset).line})` : '';
      out.add(
        codes.duplicateKey,
        'error',
        src.posOfOffset(e.pos[0]),
        [],
        `duplicate key ${JSON.stringify(key)}${where}; YAML keeps only the last one`,
      );
      continue;
    }
    if (fatal) continue;
    fatal = true;
    let offset = e.pos[0];
    let message = e.message.split('\n')[0] ?? e.message;
    if (e.code === 'MISSING_CHAR' && /quote/.test(message)) {
      const open = unclosedQuoteStart(src, e.pos[0]);
      if (open !== undefined) offset = open;
      message = `unclosed quoted string (${message.replace(/^Missing closing /, 'missing closing ')}); it runs to the end of the file`;
    } else if ((e.code === 'BLOCK_AS_IMPLICIT_KEY' || e.code === 'MULTILINE_IMPLICIT_KEY') && multiline) {
      // A line indented deeper than its sibling keys: the parser complains about the line above it.
      const nl = src.text.indexOf('\n', multiline.pos[0]);
      if (nl >= 0 && nl < multiline.pos[1]) {
        offset = nl + 1;
        while (src.text[offset] === ' ') offset++;
        message = 'bad indentation: this line is indented deeper than the key above it';
      }
    } else if (/without - indicator/.test(message)) {
      message = 'bad indentation: this line is not aligned with the keys above it';
    } else if (e.code === 'BAD_INDENT' || e.code === 'TAB_AS_INDENT') {
      message = `bad indentation: ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
    }
    // Point at the first character of an indented line rather than its start.
    if (e.code !== 'TAB_AS_INDENT' && (offset === 0 || src.text[offset - 1] === '\n')) {
      while (src.text[offset] === ' ') offset++;
    }
    const pos = src.posOfOffset(offset);
    out.add(codes.syntax, 'error', pos, [], message);
  }
  return fatal;
}

function unclosedQuoteStart(src: SourceFile, errorOffset: number): number | undefined {
  let best: number | undefined;
  visit(src.yaml.doc, {
    Scalar(_key, node) {
      if ((node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE) && node.range) {
        if (
          node.range[0] < errorOffset &&
          node.range[1] >= errorOffset &&
          (best === undefined || node.range[0] > best)
        ) {
          best = node.range[0];
        }
      }
    },
  });
  return best;
}

function firstOccurrence(src: SourceFile, dupOffset: number): { key: string; offset: number } | undefined {
  let found: { key: string; offset: number } | undefined;
  visit(src.yaml.doc, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Map<string, number>();
      for (const it of map.items) {
        const k = it.key as Node | null;
        if (!isScalar(k) || !k.range) continue;
        const name = String(k.value);
        const prev = seen.get(name);
        if (prev !== undefined && k.range[0] === dupOffset) found = { key: name, offset: prev };
        if (prev === undefined) seen.set(name, k.range[0]);
      }
    },
  });
  return found;
}
