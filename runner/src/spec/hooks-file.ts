/**
 * Connector-local hooks: `connectors/<name>/hooks.ts` (or hooks.mjs / hooks.js) default-exports `defineHooks({…})`
 * from @routiq/sdk. The engine imports it when it opens the connector and registers its hooks by name; lint reads
 * the names and kinds from the file's text, so a spec naming them lints clean without the SDK being edited.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type HookKind, registerConnectorHooks } from '@routiq/sdk';
import { RoutiqError } from '../errors/registry.ts';

const FILES = ['hooks.ts', 'hooks.mts', 'hooks.mjs', 'hooks.js'];
const KINDS: HookKind[] = ['before_request', 'after_fetch', 'after_map', 'match_identity'];

export function hooksFileIn(dir: string): string | undefined {
  return FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
}

/** Hook names and kinds a hooks file declares (`'<name>': { kind: '<kind>'`), read without running it. */
export function declaredHooks(dir: string): Array<{ name: string; kind: string }> {
  const file = hooksFileIn(dir);
  if (!file) return [];
  const text = readFileSync(file, 'utf8');
  const out: Array<{ name: string; kind: string }> = [];
  for (const m of text.matchAll(/['"]([\w.-]+)['"]\s*:\s*\{\s*kind:\s*['"](\w+)['"]/g))
    out.push({ name: m[1] as string, kind: m[2] as string });
  return out;
}

const loaded = new Map<string, Promise<string[]>>();

async function importHooks(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  try {
    return await import(url);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (!/\.m?ts$/.test(file) || (code !== 'ERR_UNKNOWN_FILE_EXTENSION' && code !== 'ERR_UNSUPPORTED_ESM_URL_SCHEME'))
      throw e;
  }
  // Plain Node (the compiled CLI) does not run TypeScript: tsx does, where it is installed.
  try {
    const { tsImport } = await import('tsx/esm/api');
    return await tsImport(url, import.meta.url);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new RoutiqError(
      'RQ2000',
      `${path.relative(process.cwd(), file)} is TypeScript and this installation has no tsx to load it: compile it to hooks.mjs beside the spec`,
    );
  }
}

/** Import and register a connector's hooks once (again when the file changes); the names registered. */
export function loadConnectorHooks(connectorsDir: string, name: string): Promise<string[]> {
  const file = hooksFileIn(path.join(connectorsDir, name));
  if (!file) return Promise.resolve([]);
  const st = statSync(file);
  const key = `${file}:${st.mtimeMs}:${st.size}`;
  let p = loaded.get(key);
  if (!p) {
    p = (async () => {
      const rel = path.relative(process.cwd(), file);
      let mod: unknown;
      try {
        mod = await importHooks(file);
      } catch (e) {
        if (e instanceof RoutiqError) throw e;
        throw new RoutiqError('RQ2000', `${rel} could not be loaded: ${(e as Error).message}`);
      }
      const hooks = (mod as { default?: unknown }).default;
      if (!hooks || typeof hooks !== 'object')
        throw new RoutiqError('RQ2000', `${rel} must \`export default defineHooks({ … })\` (from @routiq/sdk)`);
      for (const [n, h] of Object.entries(hooks as Record<string, { kind?: unknown; fn?: unknown }>)) {
        if (!KINDS.includes(h?.kind as HookKind) || typeof h?.fn !== 'function')
          throw new RoutiqError('RQ2000', `${rel}: hook "${n}" needs kind (${KINDS.join(', ')}) and fn (a function)`);
      }
      try {
        return registerConnectorHooks(name, file, hooks as Parameters<typeof registerConnectorHooks>[2]);
      } catch (e) {
        throw new RoutiqError('RQ2000', (e as Error).message);
      }
    })();
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}
