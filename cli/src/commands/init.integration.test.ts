import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { lintSpecText } from '@routiq/runner/lint';
import { loadConnectorTest, runConnectorTest } from '@routiq/runner/workbench';
import { getHook } from '@routiq/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../main.ts';

/**
 * `routiq init connector`: the scaffold lints clean, its data test passes through the engine, and its hooks.ts
 * registers by name. Made inside the checkout (.routiq/, ignored by git) so hooks.ts resolves @routiq/sdk.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
mkdirSync(path.join(ROOT, '.routiq'), { recursive: true });
const dir = mkdtempSync(path.join(ROOT, '.routiq/init-test-'));

describe('routiq init connector', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('scaffolds a folder that lints, tests and loads its hooks', async () => {
    const connectors = path.join(dir, 'connectors');
    mkdirSync(connectors);
    process.env.ROUTIQ_CONNECTORS_DIR = connectors;
    try {
      expect(await main(['init', 'connector', 'acme'])).toBe(0);
      expect(await main(['init', 'connector', 'acme'])).toBe(2); // exists: refuses without --force
    } finally {
      delete process.env.ROUTIQ_CONNECTORS_DIR;
    }
    const spec = path.join(connectors, 'acme/connector.yaml');
    const text = readFileSync(spec, 'utf8');
    expect(text.split('\n')[0]).toMatch(
      /^# yaml-language-server: \$schema=(\.\.\/)+.*schemas\/connector\.schema\.json$/,
    );
    expect(lintSpecText(text, spec)).toEqual([]);
    const file = path.join(connectors, 'acme/tests/contacts.yaml');
    expect(loadConnectorTest(file).stream).toBe('contacts');
    const r = await runConnectorTest(connectors, 'acme', file);
    expect(r.problems).toEqual([]);
    expect(getHook('acme.drop_test_records', 'after_fetch')?.([{ id: 1 }, { id: 2, test: true }], {} as never)).toEqual(
      [{ id: 1 }],
    );
  });
});
