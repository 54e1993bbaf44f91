import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbedded } from './embedded.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'routiq-embedded-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every mode under (and including) dir, as `d700` / `f600` → count. */
function modes(dir: string, out = new Map<string, number>()): Map<string, number> {
  const add = (k: string) => out.set(k, (out.get(k) ?? 0) + 1);
  if (out.size === 0) add(`d${(statSync(dir).mode & 0o777).toString(8)}`);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    add(`${e.isDirectory() ? 'd' : 'f'}${(statSync(p).mode & 0o777).toString(8)}`);
    if (e.isDirectory()) modes(p, out);
  }
  return out;
}

describe('embedded database files are private', () => {
  it('a fresh data directory is 0700 with 0600 files, whatever the umask; the umask is restored', {
    timeout: 60_000,
  }, async () => {
    const before = process.umask(0o022);
    try {
      const dir = path.join(tmp, 'fresh', 'db');
      const db = await startEmbedded(dir);
      try {
        expect(process.umask()).toBe(0o022);
        expect((statSync(`${dir}.lock`).mode & 0o777).toString(8)).toBe('600');
        expect((statSync(path.dirname(dir)).mode & 0o777).toString(8)).toBe('700');
        const m = modes(dir);
        expect([...m.keys()].sort()).toEqual(['d700', 'f600']);
        expect(m.get('f600')).toBeGreaterThan(100);
      } finally {
        await db.close();
      }
      expect([...modes(dir).keys()].sort()).toEqual(['d700', 'f600']);
    } finally {
      process.umask(before);
    }
  });

  it('an existing world-readable directory (an earlier version) is tightened when opened', {
    timeout: 60_000,
  }, async () => {
    const dir = path.join(tmp, 'old');
    const first = await startEmbedded(dir);
    await first.close();
    chmodSync(dir, 0o755);
    mkdirSync(path.join(dir, 'extra'), { mode: 0o777 });
    chmodSync(path.join(dir, 'extra'), 0o777);
    writeFileSync(path.join(dir, 'extra', 'f'), 'x', { mode: 0o644 });
    chmodSync(path.join(dir, 'extra', 'f'), 0o644);
    const db = await startEmbedded(dir);
    try {
      expect([...modes(dir).keys()].sort()).toEqual(['d700', 'f600']);
    } finally {
      await db.close();
    }
  });
});
