/** `lintPaths`: find the YAML files under the given paths, decide what each is, and lint it. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { RoutiqError } from '../errors/registry.ts';
import { lintConfigText } from './config.ts';
import { type Finding, normalizeFindings } from './finding.ts';
import { type HookInfo, lintSpecText } from './spec.ts';

export interface LintPathsOptions {
  cwd?: string;
  /** Registered hooks (default: the @routiq/sdk registry). */
  hooks?: readonly HookInfo[];
}

export interface LintPathsResult {
  /** Files linted (relative to cwd, `/`-separated), sorted. */
  files: string[];
  findings: Finding[];
  /** YAML files that are neither a connector spec nor a config file (e.g. recorded test fixtures). */
  skipped: string[];
}

export type FileKind = 'spec' | 'config';

/**
 * A connector spec has a top-level `spec_version` (or is named connector.yaml, or names connector.schema.json
 * in its yaml-language-server modeline); a config file has `organizations`, `database` or `runner` at the top.
 * Decided on the text, so files that do not parse are still recognised.
 */
export function classifyYaml(file: string, text: string): FileKind | undefined {
  const modeline = /^#\s*yaml-language-server:\s*\$schema=\S*?([a-z]+)\.schema\.json/m.exec(text)?.[1];
  if (modeline === 'connector') return 'spec';
  if (modeline === 'config') return 'config';
  if (/^spec_version\s*:/m.test(text) || path.basename(file) === 'connector.yaml') return 'spec';
  if (/^(organizations|database|runner)\s*:/m.test(text)) return 'config';
  return undefined;
}

const isYaml = (f: string): boolean => /\.ya?ml$/i.test(f);

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      // Deliberately broken lint fixtures are linted only when named explicitly.
      if (entry.name === 'broken' && path.basename(dir) === 'fixtures') continue;
      walk(full, out);
    } else if (entry.isFile() && isYaml(entry.name)) out.push(full);
  }
}

export async function lintPaths(paths: string[], opts: LintPathsOptions = {}): Promise<LintPathsResult> {
  const cwd = opts.cwd ?? process.cwd();
  const rel = (f: string): string => (path.relative(cwd, f) || f).split(path.sep).join('/');
  const files = new Set<string>();
  for (const p of paths) {
    const abs = path.resolve(cwd, p);
    if (!existsSync(abs)) throw new RoutiqError('RQ6001', `${p} does not exist`, { where: p });
    if (statSync(abs).isDirectory()) {
      const found: string[] = [];
      walk(abs, found);
      for (const f of found) files.add(f);
    } else files.add(abs);
  }
  const linted: string[] = [];
  const skipped: string[] = [];
  const findings: Finding[] = [];
  for (const abs of [...files].sort()) {
    const name = rel(abs);
    const text = readFileSync(abs, 'utf8');
    const kind = classifyYaml(abs, text);
    if (kind === 'spec') findings.push(...lintSpecText(text, name, opts.hooks ? { hooks: opts.hooks } : {}));
    else if (kind === 'config') {
      const connectorsDir = configConnectorsDir(text, cwd);
      findings.push(...lintConfigText(text, name, connectorsDir ? { connectorsDir } : {}));
    } else {
      skipped.push(name);
      continue;
    }
    linted.push(name);
  }
  return { files: linted.sort(), findings: normalizeFindings(findings), skipped: skipped.sort() };
}

/** The connectors folder a config file points at (like loadConfig: relative to cwd), if it exists. */
function configConnectorsDir(text: string, cwd: string): string | undefined {
  const m = /^connectors_dir\s*:\s*["']?([^"'#\n]+?)["']?\s*(#.*)?$/m.exec(text);
  const dir = path.resolve(cwd, m?.[1] ?? 'connectors');
  return existsSync(dir) && statSync(dir).isDirectory() ? dir : undefined;
}
