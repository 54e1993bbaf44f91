/**
 * The import graph of the repository, for the boundaries test: every import of every source file, resolved to a
 * file of this repository (relative paths, or `@routiq/*` specifiers through the target package's `exports` map),
 * and the three checks run on it. Parsed with the TypeScript compiler, so comments and strings never count.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface Workspace {
  /** Directory relative to the repository root, `''` for the root package. */
  dir: string;
  name: string;
  exports: Record<string, string>;
  dependencies: string[];
}

export interface Project {
  /** Repository-relative path (forward slashes) → source text. */
  files: Map<string, string>;
  /** The workspaces of the root package.json, and the root package itself (dir `''`). */
  workspaces: Workspace[];
}

export interface ImportRef {
  specifier: string;
  line: number;
  /** `import()` (loaded on demand) rather than a static import or re-export. */
  dynamic: boolean;
  /** `import type` / `export type`: erased at compile time, no edge at run time. */
  typeOnly: boolean;
}

export interface ResolvedImport extends ImportRef {
  from: string;
  /** Repository-relative file, or undefined for packages outside the repository (node:, npm). */
  to: string | undefined;
  relative: boolean;
}

const SOURCE = /\.(ts|tsx|mts|mjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', 'fixtures']);

export const isTestFile = (file: string): boolean => /\.test\.tsx?$/.test(file);

function listFiles(root: string): string[] {
  try {
    // Tracked files and new ones not yet added (but not ignored ones): a new file is checked before its commit.
    const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter((f) => SOURCE.test(f) && existsSync(path.join(root, f)));
  } catch {
    // Not a git checkout (an unpacked tarball): every source file outside dependency and build directories.
    const found: string[] = [];
    const walk = (rel: string) => {
      for (const d of readdirSync(path.join(root, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) {
          if (!SKIP_DIRS.has(d.name) && !d.name.startsWith('.')) walk(child);
        } else if (SOURCE.test(d.name)) found.push(child);
      }
    };
    walk('');
    return found;
  }
}

function readWorkspace(root: string, dir: string): Workspace {
  const pkg = JSON.parse(readFileSync(path.join(root, dir, 'package.json'), 'utf8')) as {
    name: string;
    exports?: string | Record<string, unknown>;
    dependencies?: Record<string, string>;
  };
  const exports: Record<string, string> = {};
  const raw = typeof pkg.exports === 'string' ? { '.': pkg.exports } : (pkg.exports ?? {});
  for (const [key, target] of Object.entries(raw)) {
    // Only plain string targets are used in this repository; a conditional one takes its `import`/`default`.
    const t = typeof target === 'string' ? target : (target as { import?: string; default?: string });
    const value = typeof t === 'string' ? t : (t.import ?? t.default);
    if (value) exports[key] = value;
  }
  return { dir, name: pkg.name, exports, dependencies: Object.keys(pkg.dependencies ?? {}) };
}

export function loadProject(root: string): Project {
  const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
  const workspaces = [readWorkspace(root, ''), ...rootPkg.workspaces.map((w) => readWorkspace(root, w))];
  const files = new Map<string, string>();
  for (const f of listFiles(root)) files.set(f, readFileSync(path.join(root, f), 'utf8'));
  return { files, workspaces };
}

export function parseImports(file: string, source: string): ImportRef[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false);
  const refs: ImportRef[] = [];
  const line = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      // `import { type A } from` stays a (side-effect) import under verbatimModuleSyntax: only `import type` is erased.
      const typeOnly = node.importClause?.isTypeOnly ?? false;
      refs.push({ specifier: node.moduleSpecifier.text, line: line(node), dynamic: false, typeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      refs.push({ specifier: node.moduleSpecifier.text, line: line(node), dynamic: false, typeOnly: node.isTypeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      refs.push({ specifier: node.arguments[0].text, line: line(node), dynamic: true, typeOnly: false });
    } else if (ts.isImportTypeNode(node)) {
      // `typeof import('x')` in a type position: compile time only.
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

/** The workspace a repository-relative path belongs to: the one with the longest matching directory. */
export function workspaceOf(project: Project, file: string): Workspace {
  let best: Workspace | undefined;
  for (const w of project.workspaces) {
    if (w.dir === '' || file === w.dir || file.startsWith(`${w.dir}/`)) {
      if (!best || w.dir.length > best.dir.length) best = w;
    }
  }
  return best!;
}

function resolveFile(project: Project, rel: string): string {
  if (project.files.has(rel)) return rel;
  for (const candidate of [`${rel}.ts`, `${rel}/index.ts`]) if (project.files.has(candidate)) return candidate;
  // Not a source file (JSON, or missing): the path itself, which still tells which package it is in.
  return rel;
}

function resolveExport(project: Project, specifier: string): string | undefined {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const w = project.workspaces.find((x) => x.name === name && x.dir !== '');
  if (!w) return undefined;
  const sub = `.${specifier.slice(name.length)}`;
  let target = w.exports[sub];
  if (!target) {
    for (const [key, value] of Object.entries(w.exports)) {
      if (key.endsWith('*') && sub.startsWith(key.slice(0, -1))) target = value.replace('*', sub.slice(key.length - 1));
    }
  }
  return target ? resolveFile(project, path.posix.join(w.dir, target)) : undefined;
}

export function resolveImports(project: Project): ResolvedImport[] {
  const all: ResolvedImport[] = [];
  for (const [from, source] of project.files) {
    for (const ref of parseImports(from, source)) {
      const relative = ref.specifier.startsWith('.');
      const to = relative
        ? resolveFile(project, path.posix.normalize(path.posix.join(path.posix.dirname(from), ref.specifier)))
        : resolveExport(project, ref.specifier);
      all.push({ ...ref, from, to, relative });
    }
  }
  return all;
}

const where = (i: ResolvedImport) => `${i.from}:${i.line}`;

/**
 * (a) A relative import may not leave its workspace package: other packages are used through their `exports`.
 * Test files may import the shared test helpers (test/helpers/) of the root package.
 */
export function boundaryViolations(project: Project, imports = resolveImports(project)): string[] {
  const out: string[] = [];
  for (const i of imports) {
    if (!i.relative || i.to === undefined) continue;
    const from = workspaceOf(project, i.from);
    const to = workspaceOf(project, i.to);
    if (from === to) continue;
    if (isTestFile(i.from) && to.dir === '' && i.to.startsWith('test/helpers/')) continue;
    out.push(
      `${where(i)} imports '${i.specifier}', inside ${to.name} (${to.dir || 'root'}) from ${from.name}` +
        `${to.dir === '' ? '' : `: use an export of ${to.name}`}`,
    );
  }
  return out;
}

/** Value edges (static imports and re-exports that stay at run time) between the given files. */
function valueEdges(nodes: Set<string>, imports: ResolvedImport[]): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const n of nodes) edges.set(n, []);
  for (const i of imports) {
    if (i.dynamic || i.typeOnly || i.to === undefined || !nodes.has(i.from) || !nodes.has(i.to)) continue;
    const list = edges.get(i.from)!;
    if (!list.includes(i.to)) list.push(i.to);
  }
  return edges;
}

/**
 * (b) Import cycles among the non-test modules of the given workspaces (directories), on value imports only:
 * `import type` is erased and cannot make a module see another half-initialised. One cycle per strongly
 * connected component, as the list of modules along it (first = last).
 */
export function findCycles(project: Project, dirs: string[], imports = resolveImports(project)): string[][] {
  const nodes = new Set(
    [...project.files.keys()].filter((f) => !isTestFile(f) && dirs.includes(workspaceOf(project, f).dir)),
  );
  const edges = valueEdges(nodes, imports);
  // Tarjan's strongly connected components (recursive: the graph is a few hundred modules).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)!) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges.get(v)!.includes(v)) components.push(component);
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) connect(v);
  // A concrete cycle through each component: shortest path from its first module back to itself.
  return components.map((component) => {
    const inside = new Set(component);
    const start = component.sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of edges.get(v)!) {
        if (!inside.has(w) || previous.has(w)) continue;
        previous.set(w, v);
        if (w === start) queue.length = 0;
        else queue.push(w);
      }
    }
    const cycle = [start];
    for (let v = previous.get(start)!; v !== start; v = previous.get(v)!) cycle.push(v);
    cycle.push(start);
    return cycle.reverse();
  });
}

export interface DevOnlyRules {
  /** Workspace packages for development only (absent from a production install). */
  devPackages: string[];
  /** Other modules for tests only (`@routiq/runner/testing`). */
  devModules: string[];
  /** Workspaces that make up a production install. */
  productionDirs: string[];
  /** Files a production install runs directly (besides package exports), e.g. the CLI's entry module. */
  entries: string[];
  /**
   * Modules that may load a development package statically because their caller imports them on demand and
   * reports its absence (a dev-only command such as `routiq demo`).
   */
  devOnlyCommands: string[];
}

/**
 * (c) What a production install loads never needs a development package: no production workspace lists one in
 * `dependencies`, and no module statically reachable from a production entry (the package exports, the listed
 * entries, and every module a production module imports on demand) is one. Development packages are loaded with
 * `import()` where a missing package can be reported.
 */
export function devOnlyViolations(project: Project, rules: DevOnlyRules, imports = resolveImports(project)): string[] {
  const out: string[] = [];
  const production = project.workspaces.filter((w) => rules.productionDirs.includes(w.dir));
  for (const w of production) {
    for (const dep of w.dependencies) {
      if (rules.devPackages.includes(dep)) out.push(`${w.dir}/package.json lists ${dep} in dependencies (dev only)`);
    }
  }
  const isDev = (file: string) =>
    rules.devModules.includes(file) || rules.devPackages.includes(workspaceOf(project, file).name);
  const isProduction = (file: string) => rules.productionDirs.includes(workspaceOf(project, file).dir);
  const entries = new Set(rules.entries);
  for (const w of production) {
    for (const [key, target] of Object.entries(w.exports)) {
      const file = path.posix.join(w.dir, target);
      if (!key.includes('*') && !isDev(file)) entries.add(file);
    }
  }
  for (const i of imports) {
    if (i.dynamic && i.to && !isTestFile(i.from) && isProduction(i.from) && !isDev(i.to)) entries.add(i.to);
  }
  const edges = new Map<string, ResolvedImport[]>();
  for (const i of imports) {
    if (i.dynamic || i.typeOnly || i.to === undefined) continue;
    edges.set(i.from, [...(edges.get(i.from) ?? []), i]);
  }
  for (const entry of [...entries].sort()) {
    if (rules.devOnlyCommands.includes(entry)) continue;
    const via = new Map<string, string>([[entry, '']]);
    const queue = [entry];
    while (queue.length) {
      const v = queue.shift()!;
      for (const i of edges.get(v) ?? []) {
        const w = i.to!;
        if (via.has(w) || rules.devOnlyCommands.includes(w)) continue;
        via.set(w, v);
        if (isDev(w)) {
          const chain = [w];
          for (let x = v; x; x = via.get(x)!) chain.unshift(x);
          out.push(`${where(i)} statically imports '${i.specifier}' (dev only), loaded by ${chain.join(' → ')}`);
        } else queue.push(w);
      }
    }
  }
  return [...new Set(out)];
}
