/**
 * docs/connector-spec.md from schemas/connector.schema.json (every key: type, required, default, allowed
 * values, description; nested objects and each `type:` variant as their own section) and the unified target
 * tables from schemas/unified/*.schema.json.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { loadSchema, schemaPath } from '@routiq/schemas';
import { Anchors, code, table } from './markdown.ts';

type Schema = Record<string, unknown>;
const isObj = (v: unknown): v is Schema => !!v && typeof v === 'object' && !Array.isArray(v);

interface Section {
  title: string;
  level: number;
  body: string[];
}

class SpecDoc {
  readonly sections: Section[] = [];
  private readonly defs: Record<string, Schema>;
  private readonly anchors = new Anchors();
  private readonly anchorOf = new Map<string, string>();

  constructor(private readonly root: Schema) {
    this.defs = (root.definitions ?? {}) as Record<string, Schema>;
  }

  private resolve(s: Schema): { schema: Schema; ref?: string } {
    if (typeof s.$ref === 'string' && s.$ref.startsWith('#/definitions/')) {
      const name = s.$ref.slice('#/definitions/'.length);
      const { $ref: _r, ...rest } = s;
      return { schema: { ...(this.defs[name] ?? {}), ...rest }, ref: name };
    }
    return { schema: s };
  }

  /** Does this schema get its own section? */
  private nested(s: Schema): Schema | Schema[] | undefined {
    const { schema } = this.resolve(s);
    if (Array.isArray(schema.oneOf) && this.variants(schema).length) return schema;
    if (isObj(schema.properties)) return schema;
    if (schema.type === 'array' && isObj(schema.items)) {
      const items = this.resolve(schema.items).schema;
      if (isObj(items.properties) || (Array.isArray(items.oneOf) && this.variants(items).length)) return items;
    }
    if (isObj(schema.additionalProperties) && isObj(this.resolve(schema.additionalProperties).schema.properties)) {
      return this.resolve(schema.additionalProperties).schema;
    }
    return undefined;
  }

  private variants(s: Schema): string[] {
    return ((s.oneOf as Schema[] | undefined) ?? [])
      .map((b) => (b.properties as Record<string, Schema> | undefined)?.type?.const)
      .filter((c): c is string => typeof c === 'string');
  }

  /** The path a nested schema is documented under, e.g. `streams[].pagination`, `connection.properties.<name>`. */
  private childPath(parent: string, key: string, s: Schema): string {
    const { schema } = this.resolve(s);
    const base = parent ? `${parent}.${key}` : key;
    if (schema.type === 'array') return `${base}[]`;
    if (isObj(schema.additionalProperties) && !isObj(schema.properties)) return `${base}.<name>`;
    return base;
  }

  typeText(s: Schema, at?: string): string {
    const { schema, ref } = this.resolve(s);
    const link = at && this.anchorOf.has(at) ? ` ([see below](#${this.anchorOf.get(at)}))` : '';
    if (ref === 'template') return 'template';
    if (ref === 'jsonata') return 'JSONata';
    if ('const' in schema) return `${code(JSON.stringify(schema.const))} (constant)`;
    if (Array.isArray(schema.enum))
      return `one of ${schema.enum.map((v) => code(JSON.stringify(v).replace(/^"|"$/g, ''))).join(', ')}`;
    if (Array.isArray(schema.oneOf)) {
      const v = this.variants(schema);
      if (v.length) return `one of the types ${v.map((x) => code(x)).join(', ')}${link}`;
    }
    if (Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).map((x) => this.typeText(x)).join(' or ');
    const types = Array.isArray(schema.type)
      ? (schema.type as string[])
      : typeof schema.type === 'string'
        ? [schema.type]
        : [];
    if (!types.length) return 'any';
    const parts = types.map((t) => {
      if (t === 'array') {
        const items = isObj(schema.items) ? schema.items : undefined;
        if (!items) return 'list';
        const it = this.resolve(items).schema;
        if (isObj(it.properties) || (Array.isArray(it.oneOf) && this.variants(it).length))
          return `list of objects${link}`;
        const inner = this.typeText(items);
        return `list of ${/^(string|integer|number|boolean)$/.test(inner) ? `${inner}s` : inner}`;
      }
      if (t === 'object') {
        if (isObj(schema.additionalProperties)) {
          const v = this.resolve(schema.additionalProperties).schema;
          if (isObj(v.properties)) return `map of name → object${link}`;
          return `map of name → ${this.typeText(schema.additionalProperties)}`;
        }
        return isObj(schema.properties) ? `object${link}` : 'object';
      }
      const extra: string[] = [];
      if (typeof schema.format === 'string') extra.push(schema.format);
      if (typeof schema.pattern === 'string') extra.push(`pattern ${code(schema.pattern)}`);
      if (typeof schema.minimum === 'number') extra.push(`≥ ${schema.minimum}`);
      if (typeof schema.exclusiveMinimum === 'number') extra.push(`> ${schema.exclusiveMinimum}`);
      if (typeof schema.maximum === 'number') extra.push(`≤ ${schema.maximum}`);
      if (typeof schema.minLength === 'number' && schema.minLength > 0) extra.push(`min length ${schema.minLength}`);
      if (typeof schema.maxLength === 'number') extra.push(`max length ${schema.maxLength}`);
      return extra.length ? `${t} (${extra.join(', ')})` : t;
    });
    return parts.join(' or ');
  }

  private describe(s: Schema): string {
    const { schema, ref } = this.resolve(s);
    let d = typeof schema.description === 'string' ? schema.description : '';
    // A template/JSONata key without its own description would repeat the definition's.
    if (ref && typeof s.description !== 'string') d = '';
    if (!d && schema.type === 'array' && isObj(schema.items)) {
      const items = this.resolve(schema.items).schema;
      if (typeof items.description === 'string') d = items.description;
    }
    if (schema.type === 'array') {
      const bits: string[] = [];
      if (typeof schema.minItems === 'number') bits.push(`At least ${schema.minItems}.`);
      if (bits.length) d = `${d} ${bits.join(' ')}`.trim();
    }
    return d;
  }

  private propertyTable(s: Schema, at: string): string {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    const required = new Set((s.required as string[] | undefined) ?? []);
    const rows = Object.entries(props).map(([k, p]) => {
      const { schema } = this.resolve(p);
      const def = 'default' in schema ? code(JSON.stringify(schema.default)) : '';
      return [code(k), this.typeText(p, this.childPath(at, k, p)), required.has(k) ? 'yes' : '', def, this.describe(p)];
    });
    return table(['Key', 'Type', 'Required', 'Default', 'Description'], rows);
  }

  private render(at: string, s: Schema, level: number, heading: string): void {
    const body: string[] = [];
    const desc = this.describe(s);
    if (desc) body.push(desc);
    const branches = Array.isArray(s.oneOf) ? (s.oneOf as Schema[]) : [];
    if (
      branches.length &&
      branches.every((b) => Object.keys(b).every((k) => k === 'required' || k === 'description'))
    ) {
      const keys = branches.flatMap((b) => (b.required as string[] | undefined) ?? []);
      body.push(`Exactly one of ${keys.map((k) => code(k)).join(', ')} is required.`);
    }
    if (branches.length && this.variants(s).length) {
      const rows = branches.map((b) => {
        const t = (b.properties as Record<string, Schema>).type as Schema;
        const v = String(t.const);
        const anchor = this.anchorOf.get(`${at}#${v}`);
        return [anchor ? `[${code(v)}](#${anchor})` : code(v), typeof t.description === 'string' ? t.description : ''];
      });
      body.push(
        `Set ${code('type')} to choose a variant; each takes its own keys.`,
        table(['type', 'Description'], rows),
      );
    } else if (isObj(s.properties)) {
      body.push(this.propertyTable(s, at));
    }
    this.sections.push({ title: heading, level, body });
  }

  /** All sections in document order. Anchors are assigned first, so tables can link to sections below them. */
  build(): string[] {
    const order: Array<{ at: string; s: Schema; level: number; heading: string }> = [];
    const add = (at: string, key: string, s: Schema, level: number, heading: string): void => {
      order.push({ at, s, level, heading });
      this.anchorOf.set(key, this.anchors.take(heading));
    };
    const visit = (at: string, s: Schema, level: number): void => {
      // Shared shapes (e.g. pagination `stop` in every variant) get one section.
      if (this.anchorOf.has(at)) return;
      add(at, at, s, level, code(at));
      if (Array.isArray(s.oneOf) && this.variants(s).length) {
        const branches = s.oneOf as Schema[];
        for (const b of branches) {
          const t = String(((b.properties as Record<string, Schema>).type as Schema).const);
          add(at, `${at}#${t}`, b, Math.min(level + 1, 4), `${code(at)} — type ${code(t)}`);
        }
        for (const b of branches) this.children(at, b, level + 1, visit);
        return;
      }
      this.children(at, s, level, visit);
    };
    this.anchors.take('Connector spec reference');
    add('', '', { ...this.root, description: '' }, 2, 'Top level');
    this.children('', this.root, 1, visit);
    this.anchors.take('Templates and JSONata');
    this.anchors.take('Unified targets');
    for (const job of order) this.render(job.at, job.s, job.level, job.heading);
    const lines: string[] = [];
    for (const sec of this.sections) {
      lines.push(`${'#'.repeat(sec.level)} ${sec.title}`, '');
      for (const b of sec.body) lines.push(b, '');
    }
    return lines;
  }

  private children(at: string, s: Schema, level: number, visit: (at: string, s: Schema, level: number) => void): void {
    for (const [k, p] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
      const n = this.nested(p);
      if (!n || Array.isArray(n)) continue;
      const childAt = this.childPath(at, k, p);
      visit(childAt, n, Math.min(level + 1, 4));
    }
  }
}

function unifiedTables(anchors: string[]): string[] {
  const dir = path.dirname(schemaPath('unified/patients.schema.json'));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .sort();
  const lines: string[] = [];
  for (const f of files) {
    const s = loadSchema(`unified/${f}`);
    const x = (s['x-routiq'] ?? {}) as {
      table?: string;
      natural_key?: string[];
      references?: Record<string, string>;
      mappable?: boolean;
    };
    const name = String(s.title ?? f.replace('.schema.json', ''));
    anchors.push(name);
    lines.push(`### ${code(name)}`, '');
    if (typeof s.description === 'string') lines.push(s.description, '');
    const facts = [`Table ${code(x.table ?? name)}`, `natural key ${code((x.natural_key ?? []).join(', '))}`];
    if (x.mappable === false) facts.push('not a mapping target (written by the engine)');
    lines.push(`${facts.join('; ')}.`, '');
    if (x.references && Object.keys(x.references).length) {
      lines.push(
        `References: ${Object.entries(x.references)
          .map(([k, v]) => `${code(k)} → ${code(v)}`)
          .join(', ')}.`,
        '',
      );
    }
    const required = new Set((s.required as string[] | undefined) ?? []);
    const nestedTables: string[] = [];
    const rows = Object.entries((s.properties ?? {}) as Record<string, Schema>).map(([k, p]) => {
      let type = fieldType(p);
      const items = isObj(p.items) ? p.items : undefined;
      if (p.type === 'array' && items && isObj(items.properties)) {
        type = `list of objects (${Object.keys(items.properties)
          .map((c) => code(c))
          .join(', ')})`;
        const req = new Set((items.required as string[] | undefined) ?? []);
        nestedTables.push(
          `${code(`${name}.${k}[]`)}:`,
          '',
          table(
            ['Field', 'Type', 'Required', 'Description'],
            Object.entries(items.properties as Record<string, Schema>).map(([c, cp]) => [
              code(c),
              fieldType(cp),
              req.has(c) ? 'yes' : '',
              String(cp.description ?? ''),
            ]),
          ),
          '',
        );
      }
      return [code(k), type, required.has(k) ? 'yes' : '', String(p.description ?? '')];
    });
    lines.push(table(['Field', 'Type', 'Required', 'Description'], rows), '');
    lines.push(...nestedTables);
  }
  return lines;
}

function fieldType(p: Schema): string {
  if (Array.isArray(p.enum)) return `one of ${p.enum.map((v) => code(v === null ? 'null' : String(v))).join(', ')}`;
  const types = Array.isArray(p.type) ? (p.type as string[]) : typeof p.type === 'string' ? [p.type] : ['any'];
  const extra: string[] = [];
  if (typeof p.format === 'string') extra.push(p.format);
  if (typeof p.pattern === 'string') extra.push(`pattern ${code(p.pattern)}`);
  if (typeof p.minimum === 'number') extra.push(`≥ ${p.minimum}`);
  if (typeof p.maxLength === 'number') extra.push(`max length ${p.maxLength}`);
  return `${types.join(' or ')}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

export function connectorSpecDoc(): string {
  const root = loadSchema('connector.schema.json');
  const doc = new SpecDoc(root);
  const defs = (root.definitions ?? {}) as Record<string, Schema>;
  const lines: string[] = [
    '> Generated from `schemas/connector.schema.json` and `schemas/unified/*.schema.json` by `npm run docs:gen`; do not edit.',
    '',
    '# Connector spec reference',
    '',
  ];
  if (typeof root.description === 'string') lines.push(root.description, '');
  lines.push(
    'Each connector is one `connectors/<name>/connector.yaml`. Put the schema modeline on its first line for editor completion: `# yaml-language-server: $schema=../../schemas/connector.schema.json`. `routiq lint` checks a spec against everything below and more (see [errors.md](errors.md), codes RQ2xxx).',
    '',
  );
  lines.push(...doc.build());
  lines.push('## Templates and JSONata', '');
  lines.push(
    table(
      ['Kind', 'Description'],
      [
        ['template', String(defs.template?.description ?? '')],
        ['JSONata', String(defs.jsonata?.description ?? '')],
      ],
    ),
    '',
  );
  lines.push(
    '## Unified targets',
    '',
    'What `map[].target` writes to. A mapping expression returns one row or a list of rows with these fields.',
    '',
  );
  lines.push(...unifiedTables([]));
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
