import { type Database, migrate, openDatabase, syncConnection } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@routiq/sdk';
import { connectorsDir, org, silentLogger, testConfig } from '../helpers/engine.ts';
import { type PrivatePg, privatePgAvailable, startPrivatePg } from '../helpers/private-pg.ts';
import { threadsSpec } from '../helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../helpers/tiny-api.ts';

/** Issue #6: PostgreSQL restarted mid-sync → the run recovers or fails cleanly, the next run completes, nothing is left 'running'. */
const SPEC = threadsSpec();

describe.skipIf(!privatePgAvailable())('PostgreSQL restarted mid-sync', () => {
  let pg: PrivatePg;
  let api: TinyApi;
  let db: Database;
  beforeAll(async () => {
    pg = startPrivatePg();
    api = await startTinyApi({ items: 120, notesPerItem: 6 });
    db = await openDatabase({ url: pg.url, poolMax: 4 });
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close().catch(() => {});
    await api?.close();
    pg?.stop();
  });

  it('the interrupted run ends cleanly and the next run completes exactly', { timeout: 180_000 }, async () => {
    const o = org('org_pg_restart', [{ connector: 'threads', config: { base_url: api.url } }]);
    const config = testConfig(connectorsDir({ threads: SPEC }), [o]);
    const run = () => syncConnection({ db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
    // Restart while the sync is under way: when the API gets the 60th of the ~250 requests a full sync needs.
    const midway = new Promise<void>((resolve) => {
      let n = 0;
      const stop = api.onRequest(() => {
        if (++n === 60) {
          stop();
          resolve();
        }
      });
    });
    const first = run().catch((e: Error) => ({ status: 'threw', error: e.message }) as const);
    await midway;
    pg.restart();
    const interrupted = await first;
    expect(['failed', 'partial', 'succeeded', 'threw']).toContain(interrupted.status);

    const second = await run();
    expect(second.status, JSON.stringify(second)).toBe('succeeded');
    const msgs = await db.query<{ n: string }>(
      "select count(*)::text as n from messages where organization_id = 'org_pg_restart'",
    );
    expect(Number(msgs[0]?.n)).toBe(api.notes.length);
    const convs = await db.query<{ n: string }>(
      "select count(*)::text as n from conversations where organization_id = 'org_pg_restart'",
    );
    expect(Number(convs[0]?.n)).toBe(api.items.length);
    const running = await db.query<{ n: string }>("select count(*)::text as n from sync_runs where status = 'running'");
    expect(running[0]?.n).toBe('0');
    const runs = await db.query<{ status: string }>(
      "select status from sync_runs where organization_id = 'org_pg_restart' order by started_at",
    );
    expect(runs.at(-1)?.status).toBe('succeeded');
    expect(runs.length).toBeGreaterThanOrEqual(2);
  });
});
