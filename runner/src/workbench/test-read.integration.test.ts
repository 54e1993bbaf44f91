import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startCalendly, startChatwoot } from '@routiq/sandbox';
import '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import type { WorkbenchEvent } from './report.ts';
import { testRead } from './test-read.ts';

const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const TOKEN = 'wb-token-0123456789';

describe('testRead against the Chatwoot simulator (no database)', () => {
  let sim: Awaited<ReturnType<typeof startChatwoot>>;
  beforeAll(async () => {
    sim = await startChatwoot({
      accounts: [{ accountId: 1, token: TOKEN }],
      seed: 7,
      scale: 1,
      now: '2026-11-01T00:00:00Z',
    });
  });
  afterAll(async () => {
    await sim?.close();
  });
  const target = (dir: string) => {
    const o = org('org_wb', [
      { connector: 'chatwoot', config: { base_url: sim.url, account_id: 1 }, secrets: { api_token: '${T}' } },
    ]);
    return {
      config: testConfig(dir, [o]),
      target: {
        kind: 'simulator' as const,
        label: 'chatwoot simulator',
        org: o,
        conn: o.connections[0]!,
        env: { T: TOKEN },
      },
    };
  };

  it('reads every stream, maps rows, reports progress, cursors and the next run, and never shows the token', async () => {
    const events: WorkbenchEvent[] = [];
    const report = await testRead({
      ...target(CONNECTORS),
      logger: silentLogger,
      onEvent: (e) => events.push(e),
      maxPages: 2,
    });
    expect(report.ok, JSON.stringify(report.streams.map((s) => [s.stream, s.status, s.error]))).toBe(true);
    const by = Object.fromEntries(report.streams.map((s) => [s.stream, s]));
    expect(by.contacts!.records).toBeGreaterThan(0);
    expect(by.contacts!.rows.patient_identities).toBe(by.contacts!.records);
    expect(by.contacts!.samples[0]!.rows[0]!.target).toBe('patient_identities');
    expect(by.conversations!.cursor?.wouldSave).toEqual(expect.any(Number));
    expect(by.conversations!.nextRun[0]!.note).toContain('from cursor');
    // messages: partitions from the conversations read here, after=<newest id> next time
    expect(by.messages!.partitions.length).toBeGreaterThan(0);
    expect(by.messages!.rows.messages).toBeGreaterThan(0);
    expect(by.messages!.nextRun[0]!.url).toMatch(/after=\d+/);
    expect(report.totals.requests).toBe(events.filter((e) => e.type === 'request').length);
    expect(events.some((e) => e.type === 'page' && e.records > 0)).toBe(true);
    expect(JSON.stringify(report)).not.toContain(TOKEN);
    expect(JSON.stringify(events)).not.toContain(TOKEN);
    expect(report.warnings.filter((w) => w.code === 'RQ6102')).toEqual([]);
  });

  it('warns when a typo in `records` turns a non-empty response into 0 records', async () => {
    const yaml = readFileSync(path.join(CONNECTORS, 'chatwoot/connector.yaml'), 'utf8')
      .replace('$schema=../../schemas/', `$schema=${path.resolve(CONNECTORS, '../schemas')}/`)
      .replace('records: data.payload', 'records: data.payloads');
    const dir = connectorsDir({ chatwoot: yaml });
    const report = await testRead({ ...target(dir), logger: silentLogger, streams: ['conversations'] });
    const w = report.warnings.find((x) => x.code === 'RQ6102');
    expect(w?.stream).toBe('conversations');
    expect(w?.message).toContain('`data` has no key "payloads"');
    expect(w?.message).toContain('did you mean "data.payload"');
    expect(report.streams[0]!.records).toBe(0);
  });
});

describe('testRead against the Calendly simulator (a cursor the API cannot filter on)', () => {
  it('says that a client_filter stream still requests every page, and reads children of the events it read', async () => {
    const sim = await startCalendly({ orgs: [{ token: TOKEN }], seed: 7, now: '2026-11-01T00:00:00Z' });
    try {
      const organization = sim.snapshot().orgs[0]!.organization;
      const o = org('org_wb_calendly', [
        { connector: 'calendly', config: { base_url: sim.url, organization }, secrets: { api_token: '${T}' } },
      ]);
      const report = await testRead({
        config: testConfig(CONNECTORS, [o]),
        target: { kind: 'simulator', label: 'calendly simulator', org: o, conn: o.connections[0]!, env: { T: TOKEN } },
        logger: silentLogger,
        maxPages: 1,
        maxPartitions: 2,
      });
      expect(report.ok, JSON.stringify(report.streams.map((s) => [s.stream, s.status, s.error]))).toBe(true);
      const by = Object.fromEntries(report.streams.map((s) => [s.stream, s]));
      expect(by.scheduled_events!.records).toBe(sim.snapshot().orgs[0]!.scheduled_events.length);
      expect(by.scheduled_events!.nextRun[0]!.note).toContain('every page is still requested');
      expect(by.scheduled_events!.nextRun[0]!.url).not.toContain('min_start_time');
      expect(by.invitees!.partitions).toHaveLength(2);
      expect(by.invitees!.rows.patient_identities).toBe(by.invitees!.records);
    } finally {
      await sim.close();
    }
  });
});
