/**
 * Ajv errors → findings at the YAML node they are about. Unions are resolved the way a reader thinks of them:
 * a `type`-discriminated oneOf reports only the chosen branch's errors (or one "unknown type" finding), an anyOf
 * reports the branch matching the value's JSON type (or one "expected X or Y, got Z" finding).
 */
import type { ErrorObject } from 'ajv';
import { type Findings, show } from './finding.ts';
import { branchTypes, discriminatedBranch, exprKind, jsonType, type Schema, schemaAt, typeAccepts } from './schema.ts';
import { formatPath, type Path, type SourceFile } from './source.ts';
import { suggestion } from './suggest.ts';

export interface SchemaCodes {
  unknownKey: string;
  missingKey: string;
  wrongType: string;
  badEnum: string;
  unknownVariant: string;
  invalidValue: string;
}

function toPath(instancePath: string, data: unknown): Array<string | number> {
  const out: Array<string | number> = [];
  let cur: unknown = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function dataAt(data: unknown, path: Path): unknown {
  let cur = data;
  for (const seg of path)
    cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[seg] : undefined;
  return cur;
}

const article = (t: string): string => (/^[aeiouAEIOU]/.test(t) ? `an ${t}` : `a ${t}`);

const TYPE_WORDS: Record<string, string> = {
  object: 'mapping',
  array: 'list',
  string: 'string',
  integer: 'integer',
  number: 'number',
  boolean: 'boolean',
  null: 'null',
};

/** Singular noun phrases for what a schema accepts: ["template string", "number", "list of …"]. */
function nouns(s: Schema): string[] {
  const kind = exprKind(s);
  if (kind === 'template') return ['template string'];
  if (kind === 'jsonata') return ['JSONata expression (string)'];
  if (Array.isArray(s.anyOf)) return [...new Set((s.anyOf as Schema[]).flatMap(nouns))];
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  return types.map((t) => {
    if (t === 'array') {
      const items = s.items as Schema | undefined;
      return items ? `list of ${joinOr(nouns(items).map(plural))}` : 'list';
    }
    const word = TYPE_WORDS[t] ?? t;
    return t === 'string' && typeof s.pattern === 'string' ? `${word} matching ${s.pattern}` : word;
  });
}

/** "template string" → "template strings", "string matching X" → "strings matching X". */
const plural = (n: string): string =>
  n.replace(
    /^(.*?\S)(\s+matching .*|\s*\(.*\))?$/,
    (_m, a: string, rest: string | undefined) => `${a.endsWith('s') ? a : `${a}s`}${rest ?? ''}`,
  );

/** "a template string", "an integer", "a list of …" for messages. */
export function describeSchema(s: Schema): string {
  const ns = nouns(s);
  return ns.length ? joinOr(ns.map(article)) : 'a value';
}

function joinOr(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** "string \"50\"", "number 1.0" (as written), "mapping". */
function gotText(v: unknown, raw?: string): string {
  const t = jsonType(v);
  if (t === 'object' || t === 'array') return TYPE_WORDS[t] as string;
  const word = t === 'integer' ? 'number' : (TYPE_WORDS[t] ?? t);
  return `${word} ${typeof v === 'string' || raw === undefined ? show(v) : raw}`;
}

/** Patterns of the schemas, said in words. */
const PATTERN_HINTS: Record<string, string> = {
  '^[a-z][a-z0-9_-]*$': 'must be lower-case letters, digits, _ or -, starting with a letter',
  '^[a-z][a-z0-9_]*$': 'must be lower-case letters, digits or _, starting with a letter',
  '^\\d+\\.\\d+\\.\\d+$': 'must be a version like 1.0.0',
  '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$': 'must be a hook name like area.verb (e.g. identity.match)',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is config-file syntax, not a JS template
  '^\\$\\{[A-Z_][A-Z0-9_]*\\}$': 'must be an ${ENV_VAR} reference (secret values never appear in the config file)',
  '^[1-5]xx$': 'must be a status class like 5xx',
  '^[A-Z]{2}$': 'must be a two-letter country code like AU',
  '^postgres(ql)?://': 'must be a postgres:// or postgresql:// URL',
};

interface Suppression {
  inst: string;
  prefix: string;
}

export function schemaFindings(
  errors: readonly ErrorObject[],
  root: Schema,
  data: unknown,
  src: SourceFile,
  out: Findings,
  codes: SchemaCodes,
): void {
  const suppressed: Suppression[] = [];
  const handled = new Set<ErrorObject>();
  const isSuppressed = (e: ErrorObject): boolean =>
    suppressed.some(
      (s) =>
        (e.instancePath === s.inst || e.instancePath.startsWith(`${s.inst}/`)) && e.schemaPath.startsWith(s.prefix),
    );
  const add = (code: string, pos: { line: number; col: number }, path: Path, message: string): void =>
    out.add(code, 'error', pos, path, message);

  const combinators = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length || a.instancePath.length - b.instancePath.length);
  for (const e of combinators) {
    handled.add(e);
    if (isSuppressed(e)) continue;
    const path = toPath(e.instancePath, data);
    const value = dataAt(data, path);
    const branches = (schemaAt(root, e.schemaPath) ?? []) as unknown as Schema[];
    const label = path.length ? formatPath(path) : 'the top level';
    const variants = e.keyword === 'oneOf' ? branchTypes(branches) : [];
    let keep = -1;
    const requiredOnly = branches.every((b) => Object.keys(b).every((k) => k === 'required' || k === 'description'));
    if (requiredOnly && value && typeof value === 'object') {
      // "one of these keys": {required: [stream]} | {required: [webhook]}
      const keys = branches.flatMap((b) => (b.required as string[] | undefined) ?? []);
      const present = keys.filter((k) => k in (value as Record<string, unknown>));
      if (present.length > 1) {
        add(
          codes.invalidValue,
          src.keyPos([...path, present[1] as string]),
          [...path, present[1] as string],
          `${label} takes only one of ${keys.join(', ')}, not ${present.join(' and ')}`,
        );
      } else {
        add(codes.missingKey, src.keyPos(path), path, `${label} needs one of ${keys.map((k) => show(k)).join(', ')}`);
      }
    } else if (variants.length) {
      keep = discriminatedBranch(branches, value);
      if (keep < 0) {
        if (!value || typeof value !== 'object' || Array.isArray(value)) {
          add(
            codes.wrongType,
            src.valuePos(path),
            path,
            `${label} must be a mapping with a type (one of ${variants.join(', ')}), got ${gotText(value, src.rawText(path))}`,
          );
        } else if (!('type' in value)) {
          add(
            codes.unknownVariant,
            src.keyPos(path),
            [...path, 'type'],
            `${label} needs a type: one of ${variants.join(', ')}`,
          );
        } else {
          const t = (value as Record<string, unknown>).type;
          const hint = typeof t === 'string' ? suggestion(t, variants, '') : '';
          const what = path[path.length - 1] === undefined ? 'type' : `${String(path[path.length - 1])} type`;
          add(
            codes.unknownVariant,
            src.valuePos([...path, 'type']),
            [...path, 'type'],
            `${what} ${show(t)} is not one of ${variants.join(', ')}${hint}`,
          );
        }
      }
    } else {
      const matching = branches.map((b, i) => (typeAccepts(b, value) ? i : -1)).filter((i) => i >= 0);
      if (matching.length === 1) keep = matching[0] as number;
      else {
        add(
          codes.wrongType,
          src.valuePos(path),
          path,
          `${label} must be ${describeSchema({ anyOf: branches })}, got ${gotText(value, src.rawText(path))}`,
        );
      }
    }
    if (keep < 0) suppressed.push({ inst: e.instancePath, prefix: `${e.schemaPath}/` });
    else {
      for (let i = 0; i < branches.length; i++) {
        if (i !== keep) suppressed.push({ inst: e.instancePath, prefix: `${e.schemaPath}/${i}/` });
      }
    }
  }

  for (const e of errors) {
    if (handled.has(e) || isSuppressed(e)) continue;
    const path = toPath(e.instancePath, data);
    const label = path.length ? formatPath(path) : 'the top level';
    const value = dataAt(data, path);
    const raw = src.rawText(path);
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const parent = schemaAt(root, e.schemaPath.replace(/\/additionalProperties$/, '')) ?? {};
        const allowed = Object.keys((parent.properties ?? {}) as Record<string, unknown>);
        let msg = path.length ? `unknown key ${show(key)} in ${label}` : `unknown top-level key ${show(key)}`;
        const hint = suggestion(key, allowed);
        if (hint) msg += hint;
        else {
          const other = otherBranchOwning(root, e.schemaPath, key);
          if (other) msg += `; it belongs to type ${other}`;
          else if (allowed.length <= 14) msg += `; expected one of ${allowed.join(', ')}`;
        }
        add(codes.unknownKey, src.keyPos([...path, key]), [...path, key], msg);
        break;
      }
      case 'required': {
        const key = String(params.missingProperty);
        const msg = path.length
          ? `${label} is missing required key ${show(key)}`
          : `missing required top-level key ${show(key)}`;
        add(codes.missingKey, src.keyPos(path), [...path, key], msg);
        break;
      }
      case 'type': {
        const s = schemaAt(root, e.schemaPath.replace(/\/type$/, '')) ?? {};
        let msg = `${label} must be ${describeSchema(s)}, got ${gotText(value, raw)}`;
        const t = Array.isArray(s.type) ? s.type : [s.type];
        if (t.includes('string') && (typeof value === 'number' || typeof value === 'boolean')) {
          msg += ` (quote it: "${raw ?? String(value)}")`;
        }
        add(codes.wrongType, src.valuePos(path), path, msg);
        break;
      }
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]).map((v) => (v === null ? 'null' : String(v)));
        const hint = typeof value === 'string' ? suggestion(value, allowed, '') : '';
        add(
          codes.badEnum,
          src.valuePos(path),
          path,
          `${label} ${show(value)} is not one of ${allowed.join(', ')}${hint}`,
        );
        break;
      }
      case 'const':
        add(
          codes.badEnum,
          src.valuePos(path),
          path,
          `${label} must be ${JSON.stringify(params.allowedValue)}, got ${show(value)}`,
        );
        break;
      case 'pattern': {
        const pattern = String(params.pattern);
        const hint = PATTERN_HINTS[pattern];
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          `${label} ${show(value)} ${hint ?? `does not match the pattern ${pattern}`}`,
        );
        break;
      }
      case 'format':
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          `${label} ${show(value)} is not a valid ${String(params.format)}`,
        );
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          `${label} must be ${String(params.comparison)} ${String(params.limit)}, got ${show(value)}`,
        );
        break;
      case 'minLength':
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          params.limit === 1
            ? `${label} must not be empty`
            : `${label} must be at least ${String(params.limit)} characters long`,
        );
        break;
      case 'maxLength':
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          `${label} must be at most ${String(params.limit)} characters long`,
        );
        break;
      case 'minItems':
        add(
          codes.invalidValue,
          src.valuePos(path),
          path,
          `${label} must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`,
        );
        break;
      default:
        add(codes.invalidValue, src.valuePos(path), path, `${label} ${e.message ?? 'is invalid'}`);
    }
  }
}

/** For an unknown key inside a oneOf branch: the other branch types that do accept it. */
function otherBranchOwning(root: Schema, schemaPath: string, key: string): string | undefined {
  const m = /^(.*\/oneOf)\/(\d+)\/additionalProperties$/.exec(schemaPath);
  if (!m) return undefined;
  const branches = (schemaAt(root, m[1] as string) ?? []) as unknown as Schema[];
  const owners = branches
    .filter((b, i) => i !== Number(m[2]) && key in ((b.properties ?? {}) as Record<string, unknown>))
    .map((b) => (b.properties as Record<string, Schema>).type?.const)
    .filter((c): c is string => typeof c === 'string');
  return owners.length ? owners.join(' or ') : undefined;
}
