import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadSchema } from '@routiq/schemas';
import { Ajv, type ValidateFunction } from 'ajv';
import { RoutiqError } from '../errors/registry.ts';
import { lintSpecText } from '../lint/index.ts';
import { derefSchema } from '../lint/schema.ts';
import { parseYamlSource } from '../util/yaml-source.ts';
import type { ConnectorSpec } from './types.ts';

export interface LoadedSpec {
  spec: ConnectorSpec;
  file: string;
}

// Keyed by the file's mtime and size: a spec fixed on disk is picked up by the next load (e.g. before a DLQ replay).
const cache = new Map<string, { version: string; loaded: LoadedSpec }>();

/** Load and fully lint a spec; any error finding refuses it (a bad spec never half-runs). */
export function loadSpecFile(file: string): LoadedSpec {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new RoutiqError('RQ1006', `connector spec ${file} does not exist`, { where: file });
  const text = readFileSync(abs, 'utf8');
  const rel = path.relative(process.cwd(), abs) || abs;
  const errors = lintSpecText(text, rel).filter((f) => f.severity === 'error');
  if (errors.length) {
    const list = errors
      .slice(0, 10)
      .map((f) => `  ${f.file}:${f.line}:${f.col} ${f.code} ${f.message}`)
      .join('\n');
    const more = errors.length > 10 ? `\n  … and ${errors.length - 10} more (run routiq lint ${rel})` : '';
    throw new RoutiqError('RQ2000', `connector spec ${rel} has ${errors.length} error(s):\n${list}${more}`, {
      where: rel,
    });
  }
  const spec = parseYamlSource(text, rel).value;
  const fill = defaultsFiller();
  if (!fill(spec)) {
    // Lint validated this spec against the same schema, so this is a bug, not a user error.
    throw new RoutiqError(
      'RQ2000',
      `connector spec ${rel}: applying schema defaults failed: ${fill.errors?.[0]?.message}`,
      {
        where: rel,
      },
    );
  }
  return { spec, file: rel };
}

let filler: ValidateFunction<ConnectorSpec> | undefined;

/**
 * A validator that writes every schema `default` into the spec it checks (Ajv `useDefaults`), so the engine reads
 * defaults from the schema rather than restating them. Its own Ajv instance: lint keeps seeing specs as written.
 * Ajv applies no defaults inside a plain `oneOf`, so each `type:`-tagged oneOf gets a `discriminator` here: Ajv
 * then validates only the branch the tag names, and fills that branch's defaults (pagination, auth, verify).
 */
export function defaultsFiller(): ValidateFunction<ConnectorSpec> {
  if (!filler) {
    const schema = withDiscriminators(derefSchema(loadSchema('connector.schema.json'))) as Record<string, unknown>;
    const ajv = new Ajv({ useDefaults: true, discriminator: true, strict: false, validateFormats: false });
    filler = ajv.compile<ConnectorSpec>(schema);
  }
  return filler;
}

function withDiscriminators(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withDiscriminators);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = withDiscriminators(v);
  const tagged =
    Array.isArray(out.oneOf) &&
    out.oneOf.every(
      (b: { properties?: { type?: { const?: unknown } } }) => typeof b?.properties?.type?.const === 'string',
    );
  if (tagged) out.discriminator = { propertyName: 'type' };
  return out;
}

export function loadConnector(connectorsDir: string, name: string): LoadedSpec {
  const file = path.join(connectorsDir, name, 'connector.yaml');
  if (!existsSync(file)) {
    const known = listConnectors(connectorsDir);
    throw new RoutiqError(
      'RQ1006',
      `connector "${name}" does not exist in ${connectorsDir} (known: ${known.join(', ') || 'none'})`,
      { where: file },
    );
  }
  const st = statSync(file);
  const version = `${st.mtimeMs}:${st.size}`;
  const hit = cache.get(file);
  if (hit && hit.version === version) return hit.loaded;
  const loaded = loadSpecFile(file);
  cache.set(file, { version, loaded });
  return loaded;
}

export function listConnectors(connectorsDir: string): string[] {
  if (!existsSync(connectorsDir)) return [];
  return readdirSync(connectorsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(connectorsDir, d.name, 'connector.yaml')))
    .map((d) => d.name)
    .sort();
}
