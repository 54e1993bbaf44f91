/**
 * Where things are in a YAML file: node lookup by path, key/value positions, and the position of a
 * character inside a string value (for errors inside JSONata and templates, including block scalars).
 * Builds on util/yaml-source.ts (parsing + LineCounter positions).
 */
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, type Node, type Pair, Scalar } from 'yaml';
import { type Position, parseYamlSource, type YamlSource } from '../util/yaml-source.ts';

export type Path = ReadonlyArray<string | number>;

/** `streams[0].pagination.type`; keys that are not plain words are quoted: `params["q[]"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

interface Located {
  /** The node at the path (undefined for `key:` with no value). */
  node: Node | undefined;
  /** The pair whose value it is, when the last segment is a map key. */
  pair: Pair | undefined;
  /** How many segments were found. */
  depth: number;
}

export class SourceFile {
  readonly yaml: YamlSource;
  readonly text: string;
  readonly file: string;
  private readonly lineStarts: number[];

  constructor(text: string, file: string) {
    this.text = text;
    this.file = file;
    this.yaml = parseYamlSource(text, file);
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.lineStarts.push(i + 1);
  }

  get value(): unknown {
    return this.yaml.value;
  }

  /** 1-based line and column of a character offset (same convention as yaml's LineCounter). */
  posOfOffset(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.lineStarts[mid] as number) <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - (this.lineStarts[lo] as number) + 1 };
  }

  locate(path: Path): Located {
    let node: unknown = this.yaml.doc.contents;
    let pair: Pair | undefined;
    let depth = 0;
    for (const seg of path) {
      // Through an alias (`incremental: *updated_at_cursor`) to the anchored node it stands for.
      if (isAlias(node)) node = node.resolve(this.yaml.doc) ?? node;
      if (isMap(node)) {
        const found = node.items.find((it) => {
          const k = isScalar(it.key) ? it.key.value : it.key;
          return String(k) === String(seg);
        });
        if (!found) break;
        pair = found as Pair;
        node = found.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        pair = isPair(item) ? item : undefined;
        node = isPair(item) ? item.value : item;
      } else break;
      depth++;
    }
    return { node: isNode(node) ? node : undefined, pair, depth };
  }

  /** The source text of a scalar at this path (`1.0` for a number written so), or undefined. */
  rawText(path: Path): string | undefined {
    const n = this.nodeAt(path);
    return isScalar(n) && n.range ? this.text.slice(n.range[0], n.range[1]).trim() : undefined;
  }

  /** The node at exactly this path, or undefined. */
  nodeAt(path: Path): Node | undefined {
    const l = this.locate(path);
    return l.depth === path.length ? l.node : undefined;
  }

  private rangeStart(n: unknown): number | undefined {
    return isNode(n) && n.range ? n.range[0] : undefined;
  }

  /**
   * Where a key is written: the key of a map entry, the start of a list item, the document start for `[]`.
   * A path that does not exist points at its deepest existing ancestor.
   */
  keyPos(path: Path): Position {
    const l = this.locate(path);
    if (l.depth === 0) {
      const start = this.rangeStart(this.yaml.doc.contents);
      return start === undefined ? { line: 1, col: 1 } : this.posOfOffset(start);
    }
    const last = path[l.depth - 1];
    const keyStart = l.pair && typeof last === 'string' ? this.rangeStart(l.pair.key) : undefined;
    const start = keyStart ?? this.rangeStart(l.node);
    if (start !== undefined) return this.posOfOffset(start);
    return l.depth === path.length ? { line: 1, col: 1 } : this.keyPos(path.slice(0, l.depth));
  }

  /** Where a value starts; falls back to its key (e.g. `key:` with no value) or ancestor. */
  valuePos(path: Path): Position {
    const l = this.locate(path);
    if (l.depth === path.length) {
      const start = this.rangeStart(l.node);
      if (start !== undefined && !(isScalar(l.node) && l.node.value === null && l.node.source === '')) {
        return this.posOfOffset(start);
      }
    }
    return this.keyPos(path.slice(0, l.depth));
  }

  /**
   * Position of character `offset` of the string value at `path` (as parsed, i.e. after YAML unquoting and
   * folding). Works for plain, quoted and block scalars by aligning the parsed value with the source text.
   */
  posInString(path: Path, offset: number): Position {
    const node = this.nodeAt(path);
    if (!isScalar(node) || typeof node.value !== 'string' || !node.range) return this.valuePos(path);
    const value = node.value;
    const t = this.text;
    const type = node.type;
    let j = node.range[0];
    if (type === Scalar.QUOTE_DOUBLE || type === Scalar.QUOTE_SINGLE) j++;
    else if (type === Scalar.BLOCK_LITERAL || type === Scalar.BLOCK_FOLDED) {
      const nl = t.indexOf('\n', j);
      j = nl < 0 ? t.length : nl + 1;
    }
    const end = node.range[1];
    const target = Math.max(0, Math.min(offset, value.length));
    const ws = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
    let i = 0;
    while (i < target && j < end) {
      const v = value[i];
      const s = t[j];
      if (v === s) {
        if (type === Scalar.QUOTE_SINGLE && s === "'" && t[j + 1] === "'") j++;
        i++;
        j++;
      } else if (type === Scalar.QUOTE_DOUBLE && s === '\\') {
        // An escape: one value character for a few source characters.
        const next = t[j + 1];
        j += next === 'x' ? 4 : next === 'u' ? 6 : next === 'U' ? 10 : 2;
        i++;
      } else if (ws(s)) j++;
      else if (ws(v)) i++;
      else {
        i++;
        j++;
      }
    }
    while (j < end && ws(t[j]) && !ws(value[target])) j++;
    return this.posOfOffset(Math.min(j, end));
  }
}
