import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Cassette, WorkbenchReport } from '@routiq/runner/workbench';
import { describe, expect, it } from 'vitest';

/**
 * `routiq connector test` off a terminal, as CI runs it: a typo in a `records` path fails --strict with a clear
 * warning; --record stores no credential and its recording replays offline. (Every shipped connector's replay runs
 * in-process in cli/src/workbench/replay.integration.test.ts.)
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const CONNECTORS = path.join(ROOT, 'connectors');

async function routiq(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const r = await promisify(execFile)(process.execPath, ['cli/bin/routiq.mjs', ...args], {
      cwd: ROOT,
      env: { ...process.env, ROUTIQ_LOG_LEVEL: 'silent', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** A copy of the shipped connectors (specs and fixtures) the test may change. */
function connectorsCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'routiq-wb-'));
  cpSync(CONNECTORS, dir, { recursive: true, filter: (src) => !src.includes('node_modules') });
  return dir;
}

describe('routiq connector test --json', () => {
  it('a typo in a records path: warning RQ6102 naming the key, exit 1 with --strict', async () => {
    const dir = connectorsCopy();
    const spec = path.join(dir, 'chatwoot/connector.yaml');
    writeFileSync(
      spec,
      readFileSync(spec, 'utf8')
        .replace('$schema=../../schemas/', `$schema=${path.join(ROOT, 'schemas')}/`)
        .replace('records: data.payload', 'records: data.paylod'),
    );
    const r = await routiq(
      ['connector', 'test', 'chatwoot', '--replay', '--json', '--strict', '--stream', 'conversations'],
      {
        ROUTIQ_CONNECTORS_DIR: dir,
      },
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as WorkbenchReport;
    expect(report.streams.find((s) => s.stream === 'conversations')?.records).toBe(0);
    expect(r.stderr).toContain('warning RQ6102 stream conversations: records path `data.paylod` selects nothing');
    expect(r.stderr).toContain('did you mean "data.payload"');
  });

  it('--record keeps credentials out of the fixtures, and the recording replays', async () => {
    const dir = connectorsCopy();
    const r = await routiq(
      ['connector', 'test', 'cliniko', '--target', 'simulator', '--record', '--json', '--pages', '1'],
      {
        ROUTIQ_CONNECTORS_DIR: dir,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(path.join(dir, 'cliniko/fixtures/workbench.json'), 'utf8');
    const cassette = JSON.parse(text) as Cassette;
    expect(cassette.exchanges.length).toBe((JSON.parse(r.stdout) as WorkbenchReport).totals.requests);
    // The simulator's key (cli/src/workbench/simulators.ts) and its Basic-auth form appear nowhere.
    expect(text).not.toContain('workbench-cliniko-key');
    expect(text).not.toContain(Buffer.from('workbench-cliniko-key-au1:').toString('base64').slice(0, 16));
    expect(
      cassette.exchanges.flatMap((e) => Object.keys(e.headers)).filter((h) => /authorization|token/i.test(h)),
    ).toEqual([]);
    expect(cassette.credentials?.headers).toContain('authorization');
    expect(cassette.connection?.config.base_url).toBe('{{BASE}}/v1');
    const replay = await routiq(['connector', 'test', 'cliniko', '--replay', '--json'], { ROUTIQ_CONNECTORS_DIR: dir });
    expect(replay.code, replay.stderr).toBe(0);
    expect((JSON.parse(replay.stdout) as WorkbenchReport).totals.records).toBeGreaterThan(0);
  });
});
