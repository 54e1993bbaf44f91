/**
 * Package boundaries, import cycles and development-only packages, checked over every source file of the
 * repository (see imports.ts). The first block runs the checks on small made-up projects, so a check that can no
 * longer see a violation fails here rather than passing silently on the real tree.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  boundaryViolations,
  type DevOnlyRules,
  devOnlyViolations,
  findCycles,
  loadProject,
  type Project,
  parseImports,
  resolveImports,
} from './imports.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Runner, sdk, cli, schemas, migrations: the packages a production install runs. */
const CYCLE_FREE = ['runner', 'sdk', 'cli', 'schemas', 'migrations'];

const DEV_ONLY: DevOnlyRules = {
  devPackages: ['@routiq/sandbox'],
  devModules: ['runner/src/testing.ts'],
  productionDirs: ['schemas', 'sdk', 'migrations', 'runner', 'connectors', 'cli'],
  entries: ['cli/src/main.ts'],
  // Imported on demand; a missing @routiq/sandbox is reported (cli/src/main.ts, cli/src/workbench/targets.ts).
  devOnlyCommands: ['cli/src/commands/demo.ts', 'cli/src/workbench/simulators.ts'],
};

describe('the checks themselves', () => {
  const project = (files: Record<string, string>): Project => ({
    files: new Map(Object.entries(files)),
    workspaces: [
      { dir: '', name: 'root', exports: {}, dependencies: [] },
      { dir: 'a', name: '@x/a', exports: { '.': './src/index.ts', './sub': './src/sub.ts' }, dependencies: [] },
      { dir: 'b', name: '@x/b', exports: { '.': './src/index.ts' }, dependencies: ['@x/dev'] },
      { dir: 'dev', name: '@x/dev', exports: { '.': './src/index.ts' }, dependencies: [] },
    ],
  });

  it('parses static, dynamic, re-export and type-only imports, not strings or comments', () => {
    const refs = parseImports(
      'f.ts',
      [
        "import type { A } from './types.ts';",
        "import { type B, c } from './c.ts';",
        "export { d } from './d.ts';",
        "export type { E } from './e.ts';",
        "// import x from './comment.ts';",
        'const s = "import y from \'./string.ts\'";',
        "type M = typeof import('./type-position.ts');",
        "const m = await import('./lazy.ts');",
      ].join('\n'),
    );
    expect(refs.map((r) => [r.specifier, r.dynamic, r.typeOnly])).toEqual([
      ['./types.ts', false, true],
      ['./c.ts', false, false],
      ['./d.ts', false, false],
      ['./e.ts', false, true],
      ['./lazy.ts', true, false],
    ]);
  });

  it('reports a relative import into another package, and allows test helpers in tests only', () => {
    const p = project({
      'a/src/index.ts': "import { x } from '../../b/src/internal.ts';\nimport { y } from './sub.ts';",
      'a/src/sub.ts': "import { h } from '../../test/helpers/db.ts';",
      'a/src/sub.unit.test.ts': "import { h } from '../../test/helpers/db.ts';",
      'b/src/index.ts': "import { s } from '@x/a/sub';",
      'b/src/internal.ts': '',
      'test/helpers/db.ts': "import { i } from '../../a/src/sub.ts';",
    });
    expect(boundaryViolations(p)).toEqual([
      "a/src/index.ts:1 imports '../../b/src/internal.ts', inside @x/b (b) from @x/a: use an export of @x/b",
      "a/src/sub.ts:1 imports '../../test/helpers/db.ts', inside root (root) from @x/a",
      "test/helpers/db.ts:1 imports '../../a/src/sub.ts', inside @x/a (a) from root: use an export of @x/a",
    ]);
  });

  it('finds a value cycle across packages and reports its path; type-only and dynamic imports do not count', () => {
    const p = project({
      'a/src/index.ts': "import { s } from './sub.ts';",
      'a/src/sub.ts': "import { b } from '@x/b';",
      'b/src/index.ts': "import { t } from './two.ts';",
      'b/src/two.ts': "import { a } from '@x/a';\nimport type { T } from './three.ts';",
      'b/src/three.ts': "import { t } from './two.ts';\nconst l = () => import('./four.ts');",
      'b/src/four.ts': "import './three.ts';",
    });
    expect(findCycles(p, ['a', 'b'])).toEqual([
      ['a/src/index.ts', 'a/src/sub.ts', 'b/src/index.ts', 'b/src/two.ts', 'a/src/index.ts'],
    ]);
    expect(findCycles(p, ['b'])).toEqual([]);
  });

  it('reports a development package in dependencies or reachable from a production entry', () => {
    const p = project({
      'a/src/index.ts': "import { s } from './sub.ts';\nconst l = () => import('./lazy.ts');",
      'a/src/sub.ts': "import type { D } from '@x/dev';",
      'a/src/lazy.ts': "import { d } from '@x/dev';",
      'a/src/command.ts': "import { d } from '@x/dev';",
      'b/src/index.ts': "const d = () => import('@x/dev');",
      'dev/src/index.ts': '',
    });
    const rules: DevOnlyRules = {
      devPackages: ['@x/dev'],
      devModules: [],
      productionDirs: ['a', 'b'],
      entries: [],
      devOnlyCommands: ['a/src/command.ts'],
    };
    expect(devOnlyViolations(p, rules)).toEqual([
      'b/package.json lists @x/dev in dependencies (dev only)',
      "a/src/lazy.ts:1 statically imports '@x/dev' (dev only), loaded by a/src/lazy.ts → dev/src/index.ts",
    ]);
  });
});

describe('this repository', () => {
  const project = loadProject(ROOT);
  const imports = resolveImports(project);

  it('sees the sources', () => {
    expect(project.files.size).toBeGreaterThan(150);
    expect(project.files.has('runner/src/index.ts')).toBe(true);
    expect(imports.filter((i) => i.to?.startsWith('sdk/')).length).toBeGreaterThan(10);
  });

  it('has no relative import that leaves its package (use the package exports)', () => {
    expect(boundaryViolations(project, imports)).toEqual([]);
  });

  it('exports only files that exist', () => {
    const missing = project.workspaces.flatMap((w) =>
      Object.entries(w.exports)
        .filter(([key, target]) => !key.includes('*') && !existsSync(path.join(ROOT, w.dir, target)))
        .map(([key, target]) => `${w.dir || '.'}/package.json exports "${key}": ${target}, which does not exist`),
    );
    expect(project.workspaces.find((w) => w.dir === 'cli')?.exports['.']).toBe('./src/main.ts');
    expect(missing).toEqual([]);
  });

  it(`has no import cycle among the modules of ${CYCLE_FREE.join(', ')}`, () => {
    expect(findCycles(project, CYCLE_FREE, imports).map((c) => c.join(' → '))).toEqual([]);
  });

  it('loads development packages only on demand, and never lists them as dependencies', () => {
    expect(devOnlyViolations(project, DEV_ONLY, imports)).toEqual([]);
  });
});
