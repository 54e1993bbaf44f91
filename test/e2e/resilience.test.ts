import { type ChatwootSim, type ClinikoSim, startChatwoot, startCliniko } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';

/**
 * Issue #6 (tests, not timings): 5% injected faults of every kind over a ~20k-record sync, and a 429 storm.
 * The database must end equal to the source: nothing lost, nothing duplicated, no dead letters for transient faults.
 */
const kinds = await backends();

describe.each(kinds)('resilience against faulty simulators (%s)', (kind) => {
  let t: TestDb;
  let cw: ChatwootSim;
  let cl: ClinikoSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    cw = await startChatwoot({
      accounts: [{ accountId: 1, token: 'tok' }],
      seed: 3,
      scale: 16,
      faults: { rate: 0.05, seed: 11, timeoutHoldMs: 5000 },
      rateLimit: { perIp: { limit: 6000, windowMs: 60_000 } },
    });
    cl = await startCliniko({
      users: [{ apiKey: 'k1-au1' }],
      seed: 3,
      scale: 10,
      faults: { rate: 0.05, seed: 12, timeoutHoldMs: 5000 },
    });
  });
  afterAll(async () => {
    await cw?.close();
    await cl?.close();
    await t?.drop();
  });

  it('5% faults of every kind over ~20k records: final database equals the source, no loss, no duplicates, no dead letters', {
    timeout: 300_000,
  }, async () => {
    const http = { timeoutMs: 1500 };
    const chat = connectorRunner(
      t.db,
      'org_chaos',
      {
        connector: 'chatwoot',
        config: { base_url: cw.url, account_id: 1, requests_per_minute: 6000, rate_limit_wait_ms: 200 },
        secrets: { api_token: '${T}' },
      },
      { T: 'tok' },
    );
    chat.config.http.timeoutMs = http.timeoutMs;
    chat.config.runner.concurrency = 6;
    const r1 = await chat.sync();
    expect(r1.status, JSON.stringify(r1.streams)).toBe('succeeded');
    const faults = cw.stats.faults;
    for (const k of ['5xx', 'timeout', 'reset', '429', 'truncated']) expect(faults[k], `fault ${k}`).toBeGreaterThan(0);

    const snap = cw.snapshot().accounts[0]!;
    const live = new Set(snap.conversations.map((c) => String(c.id)));
    const expected = Object.entries(snap.messages)
      .filter(([d]) => live.has(d))
      .flatMap(([, list]) => list.map((m) => `${String(m.id)}|${String(m.content ?? '')}`))
      .sort();
    expect(expected.length).toBeGreaterThan(18_000);
    const rows = await t.db.query<{ k: string }>(
      "select external_id || '|' || coalesce(content, '') as k from messages where organization_id = 'org_chaos' order by 1",
    );
    expect(rows.map((r) => r.k)).toEqual(expected);
    const convs = await t.db.query<{ n: string }>(
      "select count(*)::text as n from conversations where organization_id = 'org_chaos'",
    );
    expect(Number(convs[0]?.n)).toBe(snap.conversations.length);
    const dead = await t.db.query<{ n: string }>(
      "select count(*)::text as n from sync_errors where organization_id = 'org_chaos'",
    );
    expect(dead[0]?.n).toBe('0');

    const clin = connectorRunner(
      t.db,
      'org_chaos',
      {
        connector: 'cliniko',
        config: { base_url: cl.url, contact_email: 'ops@routiq.example' },
        secrets: { api_key: '${K}' },
      },
      { K: 'k1-au1' },
    );
    clin.config.http.timeoutMs = http.timeoutMs;
    const r2 = await clin.sync();
    expect(r2.status, JSON.stringify(r2.streams)).toBe('succeeded');
    const c = cl.snapshot().users[0]!;
    const appts = await t.db.query<{ n: string }>(
      "select count(*)::text as n from appointments where organization_id = 'org_chaos' and source = 'cliniko'",
    );
    expect(Number(appts[0]?.n)).toBe(c.individual_appointments.filter((a) => !a.deleted_at).length);
    const pats = await t.db.query<{ n: string }>(
      "select count(*)::text as n from patient_identities where organization_id = 'org_chaos' and source = 'cliniko'",
    );
    expect(Number(pats[0]?.n)).toBe(c.patients.filter((p) => !p.deleted_at).length);
    const dead2 = await t.db.query<{ n: string }>(
      "select count(*)::text as n from sync_errors where organization_id = 'org_chaos'",
    );
    expect(dead2[0]?.n).toBe('0');
  });

  it('a 429 storm slows the runner down; it finishes without loss and reports the 429s', {
    timeout: 180_000,
  }, async () => {
    // The platform allows 3 requests per second; the connection is (mis)configured to pace at 100/s, so it is
    // throttled again and again and must slow down on the X-RateLimit-Reset it gets back.
    const sim = await startCliniko({
      users: [{ apiKey: 'storm-au1' }],
      seed: 4,
      scale: 12,
      rateLimit: { limit: 3, windowMs: 1000 },
    });
    try {
      const r = connectorRunner(
        t.db,
        'org_storm',
        {
          connector: 'cliniko',
          config: { base_url: sim.url, contact_email: 'ops@routiq.example', requests_per_minute: 6000 },
          secrets: { api_key: '${K}' },
        },
        { K: 'storm-au1' },
      );
      const res = await r.sync();
      expect(res.status, JSON.stringify(res.streams)).toBe('succeeded');
      expect(sim.stats.rateLimited).toBeGreaterThan(0);
      expect(res.rateLimited).toBe(sim.stats.rateLimited);
      const snap = sim.snapshot().users[0]!;
      const n = await t.db.query<{ n: string }>(
        "select count(*)::text as n from appointments where organization_id = 'org_storm'",
      );
      expect(Number(n[0]?.n)).toBe(snap.individual_appointments.filter((a) => !a.deleted_at).length);
      const p = await t.db.query<{ n: string }>(
        "select count(*)::text as n from patient_identities where organization_id = 'org_storm'",
      );
      expect(Number(p[0]?.n)).toBe(snap.patients.filter((x) => !x.deleted_at).length);
      const runs = await t.db.query<{ counts: unknown }>(
        "select counts from sync_runs where organization_id = 'org_storm'",
      );
      const counts = typeof runs[0]?.counts === 'string' ? JSON.parse(runs[0].counts as string) : runs[0]?.counts;
      expect((counts as { rate_limited: number }).rate_limited).toBe(res.rateLimited);
    } finally {
      await sim.close();
    }
  });
});
