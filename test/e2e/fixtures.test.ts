import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableCounts } from '../fixtures/counts.ts';
import { type Cassette, startReplay } from '../helpers/cassette.ts';
import { CONNECTORS_DIR, connectorRunner } from '../helpers/connectors.ts';
import { openTestDb, type TestDb } from '../helpers/db.ts';

/**
 * Offline connector tests: each connector's recorded cassette (connectors/<name>/fixtures/cassette.json, made by
 * test/fixtures/record.ts) is replayed by a local server; the engine must issue exactly the recorded requests and
 * end with the recorded row counts, after the full and after the incremental sync.
 */
const CASES: Record<string, (base: string) => Parameters<typeof connectorRunner>[2]> = {
  chatwoot: (base) => ({
    connector: 'chatwoot',
    config: { base_url: base, account_id: 1 },
    secrets: { api_token: '${T}' },
  }),
  cliniko: (base) => ({
    connector: 'cliniko',
    config: { base_url: base, contact_email: 'fixtures@routiq.example' },
    secrets: { api_key: '${K}' },
  }),
};

describe.each(Object.keys(CASES))('%s cassette replay (offline)', (connector) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb('embedded');
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('full then incremental sync reproduce the recorded results with no unrecorded request', async () => {
    const cassette = JSON.parse(
      readFileSync(path.join(CONNECTORS_DIR, connector, 'fixtures/cassette.json'), 'utf8'),
    ) as Cassette;
    const replay = await startReplay(cassette);
    try {
      const org = `org_replay_${connector}`;
      const r = connectorRunner(t.db, org, CASES[connector]!(replay.url), { T: 'fixture-token', K: 'fixture-key-au1' });
      const full = await r.sync();
      expect(full.status, JSON.stringify(full.streams)).toBe('succeeded');
      expect(await tableCounts(t.db, org)).toEqual(cassette.expected.full);
      replay.setPhase('incremental');
      const inc = await r.sync();
      expect(inc.status, JSON.stringify(inc.streams)).toBe('succeeded');
      expect(await tableCounts(t.db, org)).toEqual(cassette.expected.incremental);
      expect(replay.misses).toEqual([]);
      expect(full.requests + inc.requests).toBe(cassette.exchanges.length);
    } finally {
      await replay.close();
    }
  });
});
