/**
 * `npm run bench`: prints throughput and memory figures (never asserted in tests).
 *   - full sync of a Chatwoot account (messages dominate) and a Cliniko practice, embedded and PostgreSQL
 *   - the incremental re-sync of an unchanged source (requests, writes, time)
 *   - peak heap/RSS at two dataset sizes (memory should stay flat: pages are not buffered)
 *   - JSONata mapping rate of the real Chatwoot message mapping
 * Options: BENCH_SCALE (default 16 ≈ 20k messages), BENCH_PG_URL (default the CI server when reachable).
 */
import { startChatwoot, startCliniko } from '@routiq/sandbox';
import '@routiq/sdk';
import { loadConnector } from '@routiq/runner';
import { mapRecords } from '@routiq/runner/testing';
import { CONNECTORS_DIR, connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb } from '../helpers/db.ts';

const scale = Number(process.env.BENCH_SCALE ?? 16);

function peakSampler() {
  let rss = 0;
  let heap = 0;
  const t = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 50);
  return {
    stop: () => {
      clearInterval(t);
      return { rssMb: Math.round(rss / 2 ** 20), heapMb: Math.round(heap / 2 ** 20) };
    },
  };
}

async function syncBench(kind: 'embedded' | 'postgres', s: number) {
  const t = await openTestDb(kind);
  const cw = await startChatwoot({
    accounts: [{ accountId: 1, token: 'tok' }],
    seed: 21,
    scale: s,
    rateLimit: { perIp: { enabled: false } },
  });
  try {
    const r = connectorRunner(
      t.db,
      'org_bench',
      {
        connector: 'chatwoot',
        config: { base_url: cw.url, account_id: 1, requests_per_minute: 100000 },
        secrets: { api_token: '${T}' },
      },
      { T: 'tok' },
    );
    r.config.runner.concurrency = 8;
    global.gc?.();
    const peak = peakSampler();
    const t0 = performance.now();
    const full = await r.sync();
    const fullMs = performance.now() - t0;
    const mem = peak.stop();
    const records = full.streams.reduce((a, x) => a + x.records, 0);
    const written = full.streams.reduce((a, x) => a + x.inserted + x.updated, 0);
    const before = cw.stats.requests;
    const t1 = performance.now();
    const inc = await r.sync();
    const incMs = performance.now() - t1;
    return {
      kind,
      scale: s,
      records,
      written,
      requests: full.requests,
      seconds: +(fullMs / 1000).toFixed(1),
      recordsPerSecond: Math.round(records / (fullMs / 1000)),
      peakRssMb: mem.rssMb,
      peakHeapMb: mem.heapMb,
      incremental: {
        requests: cw.stats.requests - before,
        written: inc.streams.reduce((a, x) => a + x.inserted + x.updated, 0),
        ms: Math.round(incMs),
      },
      status: `${full.status}/${inc.status}`,
    };
  } finally {
    await cw.close();
    await t.drop();
  }
}

async function clinikoBench(kind: 'embedded' | 'postgres') {
  const t = await openTestDb(kind);
  const sim = await startCliniko({ users: [{ apiKey: 'b-au1' }], seed: 21, scale: 40, rateLimit: { enabled: false } });
  try {
    const r = connectorRunner(
      t.db,
      'org_bench_cl',
      {
        connector: 'cliniko',
        config: { base_url: sim.url, contact_email: 'b@routiq.example', requests_per_minute: 100000 },
        secrets: { api_key: '${K}' },
      },
      { K: 'b-au1' },
    );
    const t0 = performance.now();
    const full = await r.sync();
    const ms = performance.now() - t0;
    const records = full.streams.reduce((a, x) => a + x.records, 0);
    const before = sim.stats.requests;
    await r.sync();
    return {
      kind,
      records,
      seconds: +(ms / 1000).toFixed(1),
      recordsPerSecond: Math.round(records / (ms / 1000)),
      incrementalRequests: sim.stats.requests - before,
      streams: full.streams.length,
      status: full.status,
    };
  } finally {
    await sim.close();
    await t.drop();
  }
}

async function mappingBench() {
  const { spec } = loadConnector(CONNECTORS_DIR, 'chatwoot');
  const stream = spec.streams.find((s) => s.name === 'messages')!;
  const cw = await startChatwoot({ accounts: [{ accountId: 1, token: 'tok' }], seed: 5, scale: 4 });
  const msgs = Object.values(cw.snapshot().accounts[0]!.messages).flat().slice(0, 5000);
  await cw.close();
  const t0 = performance.now();
  const out = await mapRecords(
    {
      stream: 'messages',
      maps: stream.map,
      primaryKey: stream.primary_key,
      bindings: {},
      afterMap: undefined,
      hookContext: () => ({}) as never,
    },
    msgs,
  );
  const ms = performance.now() - t0;
  return { records: msgs.length, rows: out.rows.length, recordsPerSecond: Math.round(msgs.length / (ms / 1000)) };
}

const kinds = process.env.BENCH_PG_URL === '' ? (['embedded'] as const) : await backends();
const results: Record<string, unknown> = { node: process.version, scale };
results.mapping = await mappingBench();
results.chatwoot = [];
for (const k of kinds) (results.chatwoot as unknown[]).push(await syncBench(k, scale));
results.memory = [
  await syncBench('embedded', Math.max(1, Math.round(scale / 4))),
  await syncBench('embedded', scale),
].map((r) => ({ scale: r.scale, records: r.records, peakRssMb: r.peakRssMb, peakHeapMb: r.peakHeapMb }));
results.cliniko = [];
for (const k of kinds) (results.cliniko as unknown[]).push(await clinikoBench(k));
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
