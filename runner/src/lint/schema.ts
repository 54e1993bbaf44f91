/**
 * The connector and config JSON Schemas, prepared for linting: `$ref`s to local definitions are inlined (so an
 * Ajv schemaPath always names the oneOf branch it came from), and every place that holds a template or a
 * JSONata expression is known from the schema itself rather than from a hand-kept list.
 */
import { loadSchema } from '@routiq/schemas';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Path } from './source.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export type Schema = Record<string, unknown>;
export type ExprKind = 'template' | 'jsonata';

/** Schema nodes that came from `#/definitions/template` or `#/definitions/jsonata`. */
const kinds = new WeakMap<object, ExprKind>();

export function exprKind(schema: Schema): ExprKind | undefined {
  return kinds.get(schema);
}

/** Inline local `$ref`s (the schemas are not recursive). Sibling keywords of a $ref override the definition's. */
export function derefSchema(root: Schema): Schema {
  const defs = (root.definitions ?? {}) as Record<string, Schema>;
  const inline = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(inline);
    if (!node || typeof node !== 'object') return node;
    const obj = node as Schema;
    if (typeof obj.$ref === 'string' && obj.$ref.startsWith('#/definitions/')) {
      const name = obj.$ref.slice('#/definitions/'.length);
      const { $ref: _ref, ...rest } = obj;
      const target = inline(defs[name] ?? {}) as Schema;
      const merged: Schema = { ...target, ...(inline(rest) as Schema) };
      if (name === 'template' || name === 'jsonata') kinds.set(merged, name);
      return merged;
    }
    const out: Schema = {};
    for (const [k, v] of Object.entries(obj)) out[k] = k === 'definitions' ? v : inline(v);
    return out;
  };
  return inline(root) as Schema;
}

interface Prepared {
  raw: Schema;
  schema: Schema;
  validate: ValidateFunction;
}

const cache = new Map<string, Prepared>();

export function prepared(name: 'connector.schema.json' | 'config.schema.json'): Prepared {
  let p = cache.get(name);
  if (!p) {
    const raw = loadSchema(name);
    const schema = derefSchema(raw);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    p = { raw, schema, validate: ajv.compile(schema) };
    cache.set(name, p);
  }
  return p;
}

export function validateAgainst(name: 'connector.schema.json' | 'config.schema.json', data: unknown): ErrorObject[] {
  const { validate } = prepared(name);
  return validate(data) ? [] : [...(validate.errors ?? [])];
}

/** Resolve a JSON pointer (`#/properties/auth/oneOf/1`) in a schema. */
export function schemaAt(root: Schema, pointer: string): Schema | undefined {
  let node: unknown = root;
  for (const raw of pointer.replace(/^#\/?/, '').split('/')) {
    if (raw === '') continue;
    const seg = decodeURIComponent(raw.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node && typeof node === 'object' ? (node as Schema) : undefined;
}

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Does data of this JSON type satisfy a schema's `type` keyword? */
export function typeAccepts(schema: Schema, data: unknown): boolean {
  const t = schema.type;
  if (t === undefined) {
    if (Array.isArray(schema.enum)) return schema.enum.some((e) => jsonType(e) === jsonType(data));
    return true;
  }
  const types = Array.isArray(t) ? (t as string[]) : [t as string];
  const actual = jsonType(data);
  return types.some((x) => x === actual || (x === 'number' && actual === 'integer'));
}

/** The branch of a `type`-discriminated oneOf whose `type` const equals the data's `type`. */
export function discriminatedBranch(branches: Schema[], data: unknown): number {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return -1;
  const t = (data as Record<string, unknown>).type;
  // Only branches told apart by a `type` const (not `{required: [stream]} | {required: [webhook]}`).
  if (t === undefined) return -1;
  return branches.findIndex((b) => (b.properties as Record<string, Schema> | undefined)?.type?.const === t);
}

export function branchTypes(branches: Schema[]): string[] {
  return branches
    .map((b) => (b.properties as Record<string, Schema> | undefined)?.type?.const)
    .filter((c): c is string => typeof c === 'string');
}

export interface ExprSite {
  path: Path;
  kind: ExprKind;
  value: string;
}

/** Every template/JSONata string in `data`, found by walking the schema alongside it. */
export function exprSites(schema: Schema, data: unknown): ExprSite[] {
  const out: ExprSite[] = [];
  const walk = (s: Schema | undefined, d: unknown, path: Array<string | number>): void => {
    if (!s || d === undefined) return;
    const kind = exprKind(s);
    if (kind) {
      if (typeof d === 'string') out.push({ path, kind, value: d });
      return;
    }
    // A POST body is free JSON whose string leaves are templates.
    if (path.length === 4 && path[0] === 'streams' && path[2] === 'request' && path[3] === 'body') {
      collectStrings(d, path, out);
      return;
    }
    if (Array.isArray(s.oneOf)) {
      const branches = s.oneOf as Schema[];
      const k = discriminatedBranch(branches, d);
      if (k >= 0) walk(branches[k], d, path);
      // A oneOf of constraints beside the object's own properties (parent: stream or webhook) walks those.
      if (k >= 0 || !s.properties) return;
    }
    if (Array.isArray(s.anyOf)) {
      const b = (s.anyOf as Schema[]).find((x) => typeAccepts(x, d));
      if (b) walk(b, d, path);
      return;
    }
    if (d && typeof d === 'object' && !Array.isArray(d)) {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const extra = typeof s.additionalProperties === 'object' ? (s.additionalProperties as Schema) : undefined;
      for (const [k, v] of Object.entries(d)) walk(props[k] ?? extra, v, [...path, k]);
    } else if (Array.isArray(d) && s.items && typeof s.items === 'object') {
      for (const [i, v] of d.entries()) walk(s.items as Schema, v, [...path, i]);
    }
  };
  walk(schema, data, []);
  return out;
}

function collectStrings(d: unknown, path: Array<string | number>, out: ExprSite[]): void {
  if (typeof d === 'string') out.push({ path, kind: 'template', value: d });
  else if (Array.isArray(d)) for (const [i, v] of d.entries()) collectStrings(v, [...path, i], out);
  else if (d && typeof d === 'object') for (const [k, v] of Object.entries(d)) collectStrings(v, [...path, k], out);
}
