import { type Document, isNode, LineCounter, parseDocument } from 'yaml';

export interface Position {
  line: number;
  col: number;
}

/** A parsed YAML file that can answer "where is this path?" with real line:col. */
export interface YamlSource {
  file: string;
  doc: Document.Parsed;
  value: unknown;
  /** YAML syntax errors (the value may still be partial). */
  errors: Array<{ message: string; pos: Position }>;
  positionOf(path: ReadonlyArray<string | number>, which?: 'key' | 'value'): Position;
}

export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: false, prettyErrors: false, uniqueKeys: true });
  const toPos = (offset: number): Position => lineCounter.linePos(offset);
  const errors = doc.errors.map((e) => ({ message: e.message.split('\n')[0] ?? e.message, pos: toPos(e.pos[0]) }));
  const value = errors.length ? safeToJS(doc) : doc.toJS({ maxAliasCount: 100 });

  function positionOf(path: ReadonlyArray<string | number>, which: 'key' | 'value' = 'value'): Position {
    // Walk down as far as the path exists; report the deepest node found (a missing key points at its parent).
    let node: unknown = doc.contents;
    let keyNode: unknown;
    for (const seg of path) {
      if (!isNode(node) || !('items' in node)) break;
      const items = (node as { items: unknown[] }).items;
      let next: unknown;
      let nextKey: unknown;
      for (const [i, item] of items.entries()) {
        if (item && typeof item === 'object' && 'key' in item) {
          const k = (item as { key: unknown }).key;
          const kv = isNode(k) && 'value' in k ? (k as { value: unknown }).value : k;
          if (String(kv) === String(seg)) {
            next = (item as unknown as { value: unknown }).value;
            nextKey = k;
            break;
          }
        } else if (String(i) === String(seg)) {
          next = item;
          nextKey = item;
          break;
        }
      }
      if (next === undefined && nextKey === undefined) break;
      node = next ?? nextKey;
      keyNode = nextKey;
    }
    const target = which === 'key' && isNode(keyNode) ? keyNode : isNode(node) ? node : keyNode;
    const range = isNode(target) ? target.range : undefined;
    return range ? toPos(range[0]) : { line: 1, col: 1 };
  }

  return { file, doc, value, errors, positionOf };
}

function safeToJS(doc: Document.Parsed): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
}
