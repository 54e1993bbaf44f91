/**
 * Generated reference docs. `generateDocs()` is deterministic (same schemas and registry → same bytes);
 * `checkDocs(root)` lists the files whose content on disk differs, for `npm run docs:check` in CI.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configurationDoc } from './configuration-doc.ts';
import { connectorSpecDoc } from './connector-spec.ts';
import { errorsDoc } from './errors-doc.ts';

/** Repository-relative file → content. */
export function generateDocs(): Record<string, string> {
  return {
    'docs/configuration.md': configurationDoc(),
    'docs/connector-spec.md': connectorSpecDoc(),
    'docs/errors.md': errorsDoc(),
  };
}

/** The generated files (repository-relative) that are missing or differ from what generateDocs() produces. */
export function checkDocs(root: string): string[] {
  return Object.entries(generateDocs())
    .filter(([file, text]) => {
      const abs = path.join(root, file);
      return !existsSync(abs) || readFileSync(abs, 'utf8') !== text;
    })
    .map(([file]) => file);
}

/** Write every generated file under root; returns the files written. */
export function writeDocs(root: string): string[] {
  const docs = generateDocs();
  for (const [file, text] of Object.entries(docs)) {
    const abs = path.join(root, file);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, text);
  }
  return Object.keys(docs);
}
