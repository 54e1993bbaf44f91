/**
 * Generated files: the reference docs and the spec's TypeScript types. `generateFiles()` is deterministic (same
 * schemas and registry → same bytes); `checkDocs(root)` lists the files whose content on disk differs, for
 * `npm run docs:check` in CI.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SPEC_TYPES_FILE, specTypesSource } from '../spec/generate-types.ts';
import { configurationDoc } from './configuration-doc.ts';
import { connectorSpecDoc } from './connector-spec.ts';
import { errorsDoc } from './errors-doc.ts';

/** The reference docs (Markdown): repository-relative file → content. */
export function generateDocs(): Record<string, string> {
  return {
    'docs/configuration.md': configurationDoc(),
    'docs/connector-spec.md': connectorSpecDoc(),
    'docs/errors.md': errorsDoc(),
  };
}

/** Every generated file: the reference docs and runner/src/spec/types.gen.ts. */
export async function generateFiles(): Promise<Record<string, string>> {
  return { ...generateDocs(), [SPEC_TYPES_FILE]: await specTypesSource() };
}

/** The generated files (repository-relative) that are missing or differ from what generateFiles() produces. */
export async function checkDocs(root: string): Promise<string[]> {
  return Object.entries(await generateFiles())
    .filter(([file, text]) => {
      const abs = path.join(root, file);
      return !existsSync(abs) || readFileSync(abs, 'utf8') !== text;
    })
    .map(([file]) => file);
}

/** Write every generated file under root; returns the files written. */
export async function writeDocs(root: string): Promise<string[]> {
  const docs = await generateFiles();
  for (const [file, text] of Object.entries(docs)) {
    const abs = path.join(root, file);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, text);
  }
  return Object.keys(docs);
}
