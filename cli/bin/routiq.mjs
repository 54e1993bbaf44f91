#!/usr/bin/env node
// Runs the CLI compiled by cli/build.mjs (cli/dist), after checking that no source file changed since that build
// (a stat per file; contents hashed only when a stat differs). Stale or missing: rebuild first (esbuild, well under a
// second), and if that is impossible, run the TypeScript sources through tsx. ROUTIQ_FROM_SOURCE=1 always uses tsx.
// So `routiq` starts fast and never runs code older than the sources next to it.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = new URL('../dist/', import.meta.url);

/** URL of the current build's entry module, or undefined when there is none or a source changed since. */
async function currentBuild() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('manifest.json', DIST), 'utf8'));
  } catch {
    return undefined;
  }
  const entry = new URL(manifest.entry, DIST);
  if (!statSync(entry, { throwIfNoEntry: false })) return undefined;
  let createHash;
  for (const [file, [size, mtimeMs, sha1]] of Object.entries(manifest.inputs)) {
    const st = statSync(ROOT + file, { throwIfNoEntry: false });
    if (!st || st.size !== size) return undefined;
    if (st.mtimeMs === mtimeMs) continue;
    // Touched (git checkout, COPY into an image) but perhaps not changed: compare contents.
    createHash ??= (await import('node:crypto')).createHash;
    const digest = createHash('sha1')
      .update(readFileSync(ROOT + file))
      .digest('hex');
    if (digest !== sha1) return undefined;
  }
  return entry.href;
}

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  return import('../src/main.ts');
}

async function load() {
  if (process.env.ROUTIQ_FROM_SOURCE === '1') return fromSource();
  // Stack traces (RQ6002) name the TypeScript sources, not the bundle.
  process.setSourceMapsEnabled(true);
  const built = await currentBuild();
  if (built) return import(built);
  let buildError;
  try {
    const { buildCli } = await import('../build.mjs');
    return await import(await buildCli());
  } catch (e) {
    buildError = e;
  }
  // No esbuild (production install) or the sources do not compile: tsx runs them, or reports why they do not.
  try {
    return await fromSource();
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes("'tsx'")) throw e;
    process.stderr.write(
      `RQ6002 cli/dist is missing or older than the sources, and neither esbuild nor tsx is installed to fix it (${buildError?.message ?? buildError})\n` +
        '  hint: run `npm run build` where the development dependencies are installed.\n',
    );
    process.exit(70);
  }
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));
