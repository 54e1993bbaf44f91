import path from 'node:path';
import { listConnectors } from '@routiq/runner';
import { listConnectorTests, runConnectorTest } from '@routiq/runner/workbench';
import '@routiq/sdk';
import { describe, expect, it } from 'vitest';

/**
 * Every connector's data tests (connectors/<name>/tests/*.yaml: records or a response in, unified rows out),
 * through the engine's own mapping and validation. No database, no network. docs/adding-a-connector.md.
 */
const DIR = import.meta.dirname;

describe.each(listConnectors(DIR))('connector %s', (connector) => {
  const files = listConnectorTests(DIR, connector);
  it('has data tests', () => {
    expect(files.length, `add connectors/${connector}/tests/*.yaml (docs/adding-a-connector.md)`).toBeGreaterThan(0);
  });
  it.each(files.map((f) => path.basename(f)))('%s maps to the expected rows', async (file) => {
    const r = await runConnectorTest(DIR, connector, path.join(DIR, connector, 'tests', file));
    expect(r.problems).toEqual([]);
  });
});
