import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSchema, UNIFIED_TARGETS } from '@routiq/schemas';
import { afterAll, describe, expect, it } from 'vitest';
import { codes } from '../errors/registry.ts';
import { SPEC_TYPES_FILE } from '../spec/generate-types.ts';
import { checkDocs, generateDocs, generateFiles, writeDocs } from './index.ts';
import { slug } from './markdown.ts';

const repo = path.resolve(import.meta.dirname, '../../..');
const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe('generateDocs', () => {
  const docs = generateDocs();
  const spec = docs['docs/connector-spec.md'] as string;
  const errors = docs['docs/errors.md'] as string;

  it('produces the two files, byte-identical on every call', () => {
    expect(Object.keys(docs)).toEqual(['docs/configuration.md', 'docs/connector-spec.md', 'docs/errors.md']);
    expect(generateDocs()).toEqual(docs);
  });

  it('starts each file with the generated-file header', () => {
    for (const text of Object.values(docs)) {
      expect(text.split('\n')[0]).toMatch(/^> Generated from .* by `npm run docs:gen`; do not edit\.$/);
      expect(text.endsWith('\n') && !text.endsWith('\n\n')).toBe(true);
    }
  });

  it('documents every key of the connector schema, every strategy variant and every unified target', () => {
    const root = loadSchema('connector.schema.json');
    for (const key of Object.keys(root.properties as object)) expect(spec).toContain(`| \`${key}\` |`);
    for (const h of [
      '### `auth` — type `api_key`',
      '#### `streams[].pagination` — type `next_link`',
      '#### `streams[].pagination` — type `id_window`',
      '#### `webhooks.verify` — type `hmac_sha256`',
      '### `streams[].incremental`',
      '### `connection.properties.<name>`',
      '#### `webhooks.events[].map[]`',
    ]) {
      expect(spec).toContain(`\n${h}\n`);
    }
    expect(spec).toContain('| `size` | integer (≥ 1) | yes |  | Page size to ask for');
    expect(spec).toContain('| `method` | one of `GET`, `POST` |  | `"GET"` |');
    for (const t of UNIFIED_TARGETS) expect(spec).toContain(`\n### \`${t}\`\n`);
    expect(spec).toContain('| `sender_type` | one of `patient`, `agent`, `bot`, `system` | yes |');
  });

  it('links only to anchors that exist', () => {
    const anchors = new Set([...spec.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1] as string)));
    const links = [...spec.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(20);
    for (const l of links) expect(anchors, l).toContain(l);
  });

  it('lists every registered code with its name, title and hint', () => {
    for (const [c, info] of Object.entries(codes)) {
      expect(errors).toContain(`\n### ${c}\n`);
      expect(errors).toContain(info.name);
      expect(errors).toContain(info.hint);
    }
    expect(errors).toContain('`spec.no_incremental` (warning)');
  });
});

describe('checkDocs', () => {
  const all = ['docs/configuration.md', 'docs/connector-spec.md', 'docs/errors.md', SPEC_TYPES_FILE];

  it('the committed generated files are up to date (run `npm run docs:gen` if this fails)', async () => {
    expect(await checkDocs(repo)).toEqual([]);
  });

  it('reports missing and changed files', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'routiq-docs-'));
    tmp.push(root);
    expect(await checkDocs(root)).toEqual(all);
    expect(await writeDocs(root)).toEqual(all);
    expect(await checkDocs(root)).toEqual([]);
    writeFileSync(path.join(root, 'docs/errors.md'), `${generateDocs()['docs/errors.md']}\nhand edit\n`);
    expect(await checkDocs(root)).toEqual(['docs/errors.md']);
  });

  it('notices drift against a copy of the repository docs and spec types', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'routiq-docs-'));
    tmp.push(root);
    for (const f of all) {
      mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      cpSync(path.join(repo, f), path.join(root, f));
    }
    expect(await checkDocs(root)).toEqual([]);
    writeFileSync(path.join(root, 'docs/connector-spec.md'), 'stale\n');
    // A hand edit of the generated types: a defaulted property made optional again.
    const types = path.join(root, SPEC_TYPES_FILE);
    writeFileSync(
      types,
      readFileSync(types, 'utf8').replace("  mode: 'upsert' | 'patch';", "  mode?: 'upsert' | 'patch';"),
    );
    expect(await checkDocs(root)).toEqual(['docs/connector-spec.md', SPEC_TYPES_FILE]);
  });
});

describe('generateFiles', () => {
  it('is the docs plus the generated spec types, which start with the do-not-edit banner', async () => {
    const files = await generateFiles();
    expect(Object.keys(files)).toEqual([...Object.keys(generateDocs()), SPEC_TYPES_FILE]);
    expect(files[SPEC_TYPES_FILE]?.split('\n')[0]).toMatch(/^\/\/ Generated from schemas\/connector\.schema\.json by/);
    expect(await generateFiles()).toEqual(files);
  });
});
