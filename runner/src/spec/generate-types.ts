/**
 * runner/src/spec/types.gen.ts from schemas/connector.schema.json, so the TypeScript view of a spec cannot drift
 * from the schema the linter validates against (`npm run docs:check` compares it like the generated docs).
 *
 * The types describe a spec as the loader returns it: every property with a schema `default` is required, because
 * load.ts fills it in. Schema nodes with a `title` become named types; templates and JSONata expressions keep their
 * `Template` / `Jsonata` names.
 */
import { isDeepStrictEqual } from 'node:util';
import { loadSchema } from '@routiq/schemas';
import type { JSONSchema } from 'json-schema-to-typescript';

type Schema = Record<string, unknown>;
const isObj = (v: unknown): v is Schema => !!v && typeof v === 'object' && !Array.isArray(v);

export const SPEC_TYPES_FILE = 'runner/src/spec/types.gen.ts';

const BANNER = `// Generated from schemas/connector.schema.json by \`npm run docs:gen\` (runner/src/spec/generate-types.ts);
// do not edit. A spec as loaded: properties with a schema default are required (the loader fills them in).`;

/** `#/definitions/<name>` → the type name a reference to it gets. */
const EXPR_TYPES: Record<string, string> = { template: 'Template', jsonata: 'Jsonata' };

/**
 * The schema json-schema-to-typescript compiles: template/JSONata references inlined with their own description
 * (the ref parser would drop a `$ref`'s sibling keywords), titled nodes hoisted into shared definitions (one type
 * per title, and a title reused for a different shape is an error), defaulted properties required, and a `oneOf`
 * whose branches only list required keys dropped (it constrains presence, which TypeScript cannot say usefully).
 */
export function typesSchema(raw: Schema): Schema {
  const defs = (raw.definitions ?? {}) as Record<string, Schema>;
  const hoisted: Record<string, Schema> = {};

  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!isObj(node)) return node;
    if (typeof node.$ref === 'string') {
      const name = node.$ref.replace('#/definitions/', '');
      const tsType = EXPR_TYPES[name];
      if (!tsType || !defs[name]) throw new Error(`generate-types: unsupported $ref ${node.$ref}`);
      const { $ref: _ref, ...siblings } = node;
      return { ...defs[name], ...(walk(siblings) as Schema), tsType };
    }
    const out: Schema = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'definitions') continue;
      // `properties` maps names to schemas: a property may be called `default`, `title`, ….
      out[k] =
        k === 'properties' && isObj(v) ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, walk(s)])) : walk(v);
    }
    if (Array.isArray(out.oneOf) && out.oneOf.every((b) => isObj(b) && Object.keys(b).join() === 'required')) {
      delete out.oneOf;
    }
    if (isObj(out.properties)) {
      const withDefault = Object.entries(out.properties)
        .filter(([, s]) => isObj(s) && 'default' in s)
        .map(([p]) => p);
      const required = [...((out.required as string[] | undefined) ?? [])];
      for (const p of withDefault) if (!required.includes(p)) required.push(p);
      if (required.length) out.required = required;
    }
    if (typeof out.title === 'string') {
      const title = out.title;
      const seen = hoisted[title];
      if (seen && !isDeepStrictEqual(seen, out))
        throw new Error(
          `generate-types: two different schemas titled ${title} in connector.schema.json (one type per title: make them equal, or retitle one)`,
        );
      hoisted[title] = out;
      return { $ref: `#/definitions/${title}` };
    }
    return out;
  };

  const { definitions: _d, $schema: _s, $id: _i, title: _t, ...body } = raw;
  const root = walk(body) as Schema;
  const exprDefs = Object.fromEntries(
    Object.entries(EXPR_TYPES).map(([name, type]) => [type, { ...defs[name], title: type }]),
  );
  return { title: 'ConnectorSpec', ...root, definitions: { ...exprDefs, ...hoisted } };
}

/** The content of runner/src/spec/types.gen.ts (deterministic: same schema → same bytes). */
export async function specTypesSource(): Promise<string> {
  const schema = typesSchema(loadSchema('connector.schema.json'));
  // Loaded here, not at import: it is a devDependency (with prettier), needed only by `routiq docs`.
  const { compile } = await import('json-schema-to-typescript');
  const ts = await compile(schema as JSONSchema, 'ConnectorSpec', {
    bannerComment: BANNER,
    additionalProperties: false,
    ignoreMinAndMaxItems: true,
    unknownAny: true,
    unreachableDefinitions: true,
    format: true,
    style: { singleQuote: true, printWidth: 120, trailingComma: 'all', semi: true, tabWidth: 2, endOfLine: 'lf' },
  });
  // Drop the generator's "referenced via the definition X" lines: the definitions are our hoisting, not the schema's.
  const out = ts
    .replace(/\/\*\*\n \* This interface was referenced by .*\n \* via the `definition` ".*"\.\n \*\/\n/g, '')
    .replace(/\n \*\n \* This interface was referenced by .*\n \* via the `definition` ".*"\./g, '');
  return out.endsWith('\n') ? out : `${out}\n`;
}
