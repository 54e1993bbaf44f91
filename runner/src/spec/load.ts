import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { RoutiqError } from '../errors/registry.ts';
import { lintSpecText } from '../lint/index.ts';
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
  const spec = parseYamlSource(text, rel).value as ConnectorSpec;
  return { spec, file: rel };
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
