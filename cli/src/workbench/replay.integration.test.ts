import { existsSync } from 'node:fs';
import path from 'node:path';
import { listConnectors } from '@routiq/runner';
import { describe, expect, it } from 'vitest';
import { silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { runWorkbench } from '../commands/connector.ts';
import { fixturesFile, listTargets } from './targets.ts';

/**
 * Every shipped connector replays the fixtures recorded beside it (connectors/<name>/fixtures/workbench.json) on
 * loopback, offline: every request is in the recording, records are read and mapped without a failure.
 */
const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const config = testConfig(CONNECTORS, []);

describe.each(listConnectors(CONNECTORS))('%s fixtures replay', (name) => {
  it('has recorded fixtures', () => {
    expect(existsSync(fixturesFile(CONNECTORS, name)), `record them: routiq connector test ${name} --record`).toBe(
      true,
    );
  });
  it('replays offline: no unrecorded request, records in every stream read, no failure', async () => {
    const choice = listTargets(config, name).find((c) => c.kind === 'fixtures');
    if (!choice) throw new Error(`no fixtures for ${name}`);
    const report = await runWorkbench(config, silentLogger, name, choice, {
      maxPages: 3,
      maxPartitions: 3,
      samples: 2,
      incremental: false,
      record: false,
      write: false,
    });
    expect(report.warnings.filter((w) => ['RQ6102', 'RQ6105'].includes(w.code))).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.totals.failures).toBe(0);
    for (const s of report.streams.filter((x) => x.status !== 'skipped'))
      expect(s.records + (s.stream.endsWith('_deleted') ? 1 : 0), s.stream).toBeGreaterThan(0);
  });
});
