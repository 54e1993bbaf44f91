#!/usr/bin/env node
/**
 * Compiles the CLI (cli/src/main.ts and the workspace packages it imports) into JavaScript under cli/dist, so
 * `routiq` starts without compiling TypeScript at run time. Run by `npm run build`, by the root `prepare` script
 * (npm install / npm ci), and by cli/bin/routiq.mjs itself when a source changed since the last build.
 *
 * - ESM with code splitting: each command module stays a chunk loaded on demand (`routiq --help` loads main only).
 * - @routiq/* workspace packages are bundled; every other package (MikroORM, PGlite and its wasm, pino, jsonata …)
 *   stays external and loads from node_modules as usual.
 * - Each build goes to its own directory cli/dist/<id>/; cli/dist/manifest.json (written last, by rename) names the
 *   current one and fingerprints every source file that went into it. Concurrent builds and running processes
 *   that still load chunks of an older build never see a half-written directory.
 * - `--production`: @routiq/* packages that are only ever devDependencies (npm ci --omit=dev leaves them out) are
 *   not bundled; importing one throws ROUTIQ_DEV_ONLY, which the command that needs it reports.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI_DIR = import.meta.dirname;
const ROOT = path.dirname(CLI_DIR);
export const DIST_DIR = path.join(CLI_DIR, 'dist');
export const MANIFEST = path.join(DIST_DIR, 'manifest.json');
/** Older build directories are removed once this old: a process started from one may still load its chunks. */
const KEEP_OLD_BUILDS_MS = 15 * 60 * 1000;

const posix = (p) => p.split(path.sep).join('/');
const rel = (abs) => posix(path.relative(ROOT, abs));
const sha1 = (buf) => createHash('sha1').update(buf).digest('hex');
const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.js': 'js', '.mjs': 'js', '.json': 'json' };

/** [size, mtimeMs, sha1] of a file, stat'ed before it is read: an edit during the build makes it stale, never fresh. */
function fingerprint(abs, contents) {
  const st = statSync(abs);
  const buf = contents ?? readFileSync(abs);
  return { entry: [st.size, st.mtimeMs, sha1(buf)], buf };
}

function workspaceManifests() {
  const root = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return [path.join(ROOT, 'package.json'), ...root.workspaces.map((w) => path.join(ROOT, w, 'package.json'))];
}

/** @routiq/* packages that are devDependencies somewhere and dependencies nowhere: absent after `npm ci --omit=dev`. */
function devOnlyWorkspaces() {
  const prod = new Set();
  const dev = new Set();
  for (const file of workspaceManifests()) {
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    for (const name of Object.keys(pkg.dependencies ?? {})) prod.add(name);
    for (const name of Object.keys(pkg.devDependencies ?? {})) dev.add(name);
  }
  return new Set([...dev].filter((n) => n.startsWith('@routiq/') && !prod.has(n)));
}

/**
 * Bundled modules run from cli/dist/<id>/, not from their source file: `import.meta.url`, `.dirname` and `.filename`
 * are rewritten to the source file's own location (resolved at run time against the chunk's URL, so the checkout
 * can move), keeping paths such as schemas/index.ts's schema files and the docs command's repository root right.
 */
function importMetaRewrite(source, abs, outdir) {
  if (!source.includes('import.meta')) return source;
  const fileRel = JSON.stringify(posix(path.relative(outdir, abs)));
  const dirRel = JSON.stringify(posix(path.relative(outdir, path.dirname(abs))) || '.');
  let needsPath = false;
  const out = source.replace(/\bimport\.meta\b(\.\w+)?/g, (whole, prop) => {
    if (prop === '.url') return `new URL(${fileRel}, import.meta.url).href`;
    needsPath = true;
    if (prop === '.filename') return `__routiqFileURLToPath(new URL(${fileRel}, import.meta.url))`;
    if (prop === '.dirname') return `__routiqFileURLToPath(new URL(${dirRel}, import.meta.url))`;
    throw new Error(`${rel(abs)}: ${whole} is not supported in code bundled by cli/build.mjs (use .url or .dirname)`);
  });
  // Appended, not prepended: imports are hoisted and line numbers stay those of the source.
  return needsPath ? `${out}\nimport { fileURLToPath as __routiqFileURLToPath } from 'node:url';\n` : out;
}

function routiqPlugin({ outdir, production, inputs }) {
  const devOnly = production ? devOnlyWorkspaces() : new Set();
  return {
    name: 'routiq',
    setup(build) {
      // Bare specifiers: workspace packages are bundled, everything else (incl. node: built-ins) stays external.
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        const pkg = args.path.split('/').slice(0, 2).join('/');
        if (devOnly.has(pkg)) return { path: pkg, namespace: 'routiq-dev-only' };
        if (pkg.startsWith('@routiq/')) return undefined;
        return { path: args.path, external: true };
      });
      // CommonJS-shaped on purpose: named imports from it compile, and the throw happens when it is first loaded.
      build.onLoad({ filter: /.*/, namespace: 'routiq-dev-only' }, (args) => ({
        contents: `throw Object.assign(new Error(${JSON.stringify(
          `${args.path} is a development dependency and is not part of this build`,
        )}), { code: 'ROUTIQ_DEV_ONLY', package: ${JSON.stringify(args.path)} });\nmodule.exports = {};\n`,
        loader: 'js',
      }));
      build.onLoad({ filter: /\.(ts|mts|js|mjs|json)$/ }, (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const { entry, buf } = fingerprint(args.path);
        inputs.set(rel(args.path), entry);
        const loader = LOADERS[path.extname(args.path)];
        const contents = loader === 'json' ? buf : importMetaRewrite(buf.toString('utf8'), args.path, outdir);
        return { contents, loader };
      });
    },
  };
}

/** Builds into a new cli/dist/<id>/ and makes it current; returns the file URL of its entry module. */
export async function buildCli({ production = false } = {}) {
  const { build } = await import('esbuild');
  const id = `${Date.now().toString(36)}-${process.pid.toString(36)}`;
  const outdir = path.join(DIST_DIR, id);
  const inputs = new Map();
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: { main: path.join(CLI_DIR, 'src/main.ts') },
      outdir,
      entryNames: '[name]',
      chunkNames: '[name]-[hash]',
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20.19',
      // Class and function names stay as written (error names, stack traces, anything keyed on constructor.name).
      keepNames: true,
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [routiqPlugin({ outdir, production, inputs })],
    });
    // Whatever reached the bundle without our loader (none today) is fingerprinted all the same.
    for (const file of Object.keys(result.metafile.inputs)) {
      if (file.includes(':') || file.includes('node_modules/') || inputs.has(file)) continue;
      inputs.set(file, fingerprint(path.join(ROOT, file)).entry);
    }
  } catch (e) {
    rmSync(outdir, { recursive: true, force: true });
    throw e;
  }
  // The build recipe and the workspace manifests (package names, exports) decide the output too.
  for (const abs of [fileURLToPath(import.meta.url), ...workspaceManifests()]) {
    inputs.set(rel(abs), fingerprint(abs).entry);
  }
  const manifest = {
    entry: `${id}/main.js`,
    production,
    inputs: Object.fromEntries([...inputs].sort(([a], [b]) => a.localeCompare(b))),
  };
  const tmp = `${MANIFEST}.${id}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 1)}\n`);
  renameSync(tmp, MANIFEST);
  removeOldBuilds(id);
  return pathToFileURL(path.join(outdir, 'main.js')).href;
}

function removeOldBuilds(current) {
  const now = Date.now();
  for (const d of readdirSync(DIST_DIR, { withFileTypes: true })) {
    if (d.name === current || !(d.isDirectory() || d.name.endsWith('.tmp'))) continue;
    const abs = path.join(DIST_DIR, d.name);
    try {
      if (now - statSync(abs).mtimeMs > KEEP_OLD_BUILDS_MS) rmSync(abs, { recursive: true, force: true });
    } catch {
      // Removed meanwhile by a concurrent build.
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const production = process.argv.includes('--production');
  const started = performance.now();
  try {
    const entry = await buildCli({ production });
    const ms = Math.round(performance.now() - started);
    process.stderr.write(`built ${path.relative(process.cwd(), fileURLToPath(entry))} in ${ms} ms\n`);
  } catch (e) {
    if (e?.code === 'ERR_MODULE_NOT_FOUND' && process.env.npm_lifecycle_event === 'prepare') {
      // `npm ci --omit=dev`: no esbuild, so no build; the install must not fail for it (the Docker image builds in
      // its own stage). The bin says what to do if it is then run without a build.
      process.stderr.write('cli/build.mjs: esbuild is not installed (production install?): the CLI was not built\n');
    } else {
      const messages = e?.errors?.length
        ? (await import('esbuild')).formatMessagesSync(e.errors, { kind: 'error' })
        : [];
      process.stderr.write(`cli/build.mjs: build failed\n${messages.join('') || String(e?.stack ?? e)}\n`);
      process.exitCode = 1;
    }
  }
}
