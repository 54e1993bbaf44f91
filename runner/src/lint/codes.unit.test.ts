import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lintCodes, lintSeverity } from '../errors/lint-codes.ts';
import { codes } from '../errors/registry.ts';

const here = import.meta.dirname;
const repo = path.resolve(here, '../../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : sources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

describe('lint codes', () => {
  const used = new Set(
    sources(here).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/'(RQ\d{4})'/g)].map((m) => m[1] as string)),
  );

  it('every code used by the linter exists in the registry', () => {
    expect(used.size).toBeGreaterThan(20);
    for (const c of used) expect(codes[c], c).toBeDefined();
  });

  it('every code used by the linter is documented in docs/errors.md', () => {
    const doc = readFileSync(path.join(repo, 'docs/errors.md'), 'utf8');
    for (const c of [...used, ...Object.keys(codes)]) expect(doc, c).toContain(`### ${c}\n`);
  });

  it('lint codes are RQ2xxx, have a severity, unique names and do not clash with core codes', () => {
    const names = Object.values(codes).map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const [c, info] of Object.entries(lintCodes)) {
      expect(c).toMatch(/^RQ2\d{3}$/);
      expect(info.name).toMatch(/^spec\.[a-z_]+$/);
      expect(info.title.length && info.hint.length).toBeTruthy();
      expect(lintSeverity[c as keyof typeof lintSeverity]).toMatch(/^(error|warning)$/);
    }
    expect(Object.keys(lintSeverity).sort()).toEqual(Object.keys(lintCodes).sort());
  });
});
