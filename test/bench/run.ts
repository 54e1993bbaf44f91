/**
 * `npm run bench`: throughput, CPU and memory of a full sync (printed and written to bench/results/, never asserted).
 * Per backend (PostgreSQL, embedded) and connector (Cliniko: patients and appointments; Chatwoot: messages):
 *   - full-sync records/s, and on PostgreSQL the raw batched insert of the same unified rows
 *     (`INSERT … SELECT unnest(…)`, 5,000 a statement, into copies of the tables with the same indexes) and the ratio
 *   - CPU per record: the runner (process.cpuUsage; the simulators run in a child process) and PostgreSQL (the
 *     utime+stime in /proc/<pid>/stat of the server backends connected to the bench database, sampled every 250 ms);
 *     the simulators' process too (not the product's cost, but it takes the same two cores)
 *   - per-stage wall time summed over calls (stage-clock.ts): HTTP + parse, mapping, validation, identity, write
 *   - peak RSS of the process during the sync, at the full and a smaller size
 *   - requests and rows written by an incremental pass over the unchanged source, then the time and runner CPU of
 *     an incremental pass after 50 random changes at the source (flat in the organization's size)
 * Options: BENCH_PATIENTS (default 20000: the issue's organization of 20,000 patients, ≈60,000 appointments,
 * 100,000 messages), BENCH_SMALL (default BENCH_PATIENTS/4, the second size), BENCH_BACKENDS (postgres,embedded),
 * BENCH_LABEL (file name tag), BENCH_PG_URL='' (embedded only), BENCH_RAW_DAYS (runner.raw_retention_days; 0 keeps
 * no raw payloads), BENCH_BATCH_SIZE (runner.batch_size; write-behind batches are 4× it), BENCH_CONCURRENCY (runner.concurrency), BENCH_CONNECTORS (cliniko,chatwoot), BENCH_NODE_ARGS (extra node flags for each sync's process, e.g. `--cpu-prof`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import '@routiq/sdk';
import { enableStageClock, readStageClock } from '@routiq/runner/testing';
import pg from 'pg';
import { connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb } from '../helpers/db.ts';

type Kind = 'embedded' | 'postgres';
type Connector = 'cliniko' | 'chatwoot';

const patients = Number(process.env.BENCH_PATIENTS ?? 20000);
const small = Number(process.env.BENCH_SMALL ?? Math.round(patients / 4));
const label = process.env.BENCH_LABEL ?? 'run';
const RESULTS = path.resolve(import.meta.dirname, '../../bench/results');
const TICK_MS = 10; // getconf CLK_TCK = 100 on Linux
/** Random changes at the source (the simulators' POST /__sandbox/mutate) before the last incremental pass. */
const CHANGE_STEPS = 50;

/** Cliniko: 40 patients per scale unit (≈3 appointments each); Chatwoot: ≈1,250 messages per scale unit. */
const scalesFor = (n: number) => ({ cliniko: n / 40, chatwoot: (n * 5) / 1250 });

async function startSims(n: number): Promise<{ urls: Record<Connector, string>; proc: ChildProcess }> {
  const s = scalesFor(n);
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'sims.ts'), String(s.chatwoot), String(s.cliniko)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`simulators exited (${code})`)));
    createInterface({ input: proc.stdout! }).once('line', resolve);
  });
  proc.removeAllListeners('exit');
  return { urls: JSON.parse(line) as Record<Connector, string>, proc };
}

async function requestsServed(url: string): Promise<number> {
  const r = await fetch(`${new URL(url).origin}/__sandbox/stats`);
  return ((await r.json()) as { requests: number }).requests;
}

function peakRss() {
  // memoryUsage.rss() alone: memoryUsage() also walks the heap spaces, ~1 ms a call on a busy machine (runner CPU).
  let rss = process.memoryUsage.rss();
  const t = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage.rss());
  }, 50);
  return () => {
    clearInterval(t);
    return Math.round(rss / 2 ** 20);
  };
}

function procTicks(pid: number): number | undefined {
  try {
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/** CPU of the server backends of one database (a backend that ends between samples loses < 250 ms of it). */
async function pgCpu(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const base = new Map<number, number>();
  const last = new Map<number, number>();
  const pids = async () =>
    (
      await c.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      )
    ).rows.map((r) => r.pid);
  for (const pid of await pids()) {
    const t = procTicks(pid);
    if (t !== undefined) base.set(pid, t);
  }
  const sample = async () => {
    for (const pid of await pids()) {
      const t = procTicks(pid);
      if (t !== undefined) last.set(pid, t);
    }
  };
  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(sample).catch(() => {});
  }, 250);
  return async () => {
    clearInterval(timer);
    await running;
    await sample();
    await c.end();
    let ticks = 0;
    for (const [pid, t] of last) ticks += t - (base.get(pid) ?? 0);
    return ticks * TICK_MS;
  };
}

/** Per table, after the full sync: sequential scans and rows they read, index scans, rows written (busiest first). */
async function tableActivity(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<Record<string, string>>(
      `select relname as table, seq_scan, seq_tup_read, idx_scan, n_tup_ins + n_tup_upd + n_tup_del as written
       from pg_stat_user_tables where seq_tup_read + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd > 0
       order by seq_tup_read desc limit 8`,
    );
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'table' ? v : Number(v)])));
  } finally {
    await c.end();
  }
}

const UNIFIED = [
  'patients',
  'patient_identities',
  'practitioners',
  'appointment_types',
  'conversations',
  'appointments',
  'messages',
  'attachments',
];

/** The yardstick: the unified rows the sync wrote, inserted again with `INSERT … SELECT unnest(…)`, 5,000 a statement. */
async function rawInsert(url: string, orgId: string): Promise<{ rows: number; ms: number; recordsPerSecond: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let rows = 0;
  let ms = 0;
  try {
    for (const t of UNIFIED) {
      const cols = (
        await c.query<{ name: string; type: string }>(
          `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
           where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by a.attnum`,
          [t],
        )
      ).rows;
      const data = await c.query<unknown[]>({
        text: `select ${cols.map((x) => `"${x.name}"::text`).join(', ')} from ${t} where organization_id = $1`,
        values: [orgId],
        rowMode: 'array',
      });
      if (!data.rows.length) continue;
      const copy = `bench_raw_${t}`;
      await c.query(`drop table if exists ${copy}`);
      await c.query(`create table ${copy} (like ${t} including all)`);
      const sql = `insert into ${copy} (${cols.map((x) => `"${x.name}"`).join(', ')})
        select * from unnest(${cols.map((x, i) => `$${i + 1}::text[]::${x.type}[]`).join(', ')})`;
      for (let i = 0; i < data.rows.length; i += 5000) {
        const chunk = data.rows.slice(i, i + 5000);
        const arrays = cols.map((_, j) => chunk.map((r) => r[j]));
        const t0 = performance.now();
        await c.query(sql, arrays);
        ms += performance.now() - t0;
      }
      rows += data.rows.length;
      await c.query(`drop table ${copy}`);
    }
  } finally {
    await c.end();
  }
  return { rows, ms: Math.round(ms), recordsPerSecond: Math.round(rows / (ms / 1000)) };
}

async function syncBench(kind: Kind, connector: Connector, url: string, n: number, simPid?: number) {
  const t = await openTestDb(kind);
  const orgId = `org_bench_${connector}`;
  try {
    const conn =
      connector === 'cliniko'
        ? {
            connector,
            config: { base_url: url, contact_email: 'b@routiq.example', requests_per_minute: 1_000_000 },
            secrets: { api_key: '${K}' },
          }
        : {
            connector,
            config: { base_url: url, account_id: 1, requests_per_minute: 1_000_000 },
            secrets: { api_token: '${K}' },
          };
    const r = connectorRunner(t.db, orgId, conn, { K: connector === 'cliniko' ? 'b-au1' : 'tok' });
    r.config.runner.deadlineSeconds = 3600;
    if (process.env.BENCH_RAW_DAYS) r.config.runner.rawRetentionDays = Number(process.env.BENCH_RAW_DAYS);
    if (process.env.BENCH_BATCH_SIZE) r.config.runner.batchSize = Number(process.env.BENCH_BATCH_SIZE);
    if (process.env.BENCH_CONCURRENCY) r.config.runner.concurrency = Number(process.env.BENCH_CONCURRENCY);
    global.gc?.();
    const stopRss = peakRss();
    const stopPg = t.url ? await pgCpu(t.url) : undefined;
    enableStageClock(true);
    const sim0 = simPid ? procTicks(simPid) : undefined;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const full = await r.sync();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const sim1 = simPid ? procTicks(simPid) : undefined;
    const stages = readStageClock();
    enableStageClock(false);
    const pgMs = stopPg ? await stopPg() : undefined;
    const rssMb = stopRss();
    // Where PostgreSQL's work went (sequential scans grow with the organization; index scans should not).
    const tableStats = t.url ? await tableActivity(t.url) : undefined;
    const records = full.streams.reduce((a, x) => a + x.records, 0);
    const byStream = Object.fromEntries(full.streams.filter((x) => x.records).map((x) => [x.stream, x.records]));
    const perRecordUs = (v: number) => +((v * 1000) / records).toFixed(1);
    const before = await requestsServed(url);
    const inc = await r.sync();
    const incRequests = (await requestsServed(url)) - before - 1;
    // An incremental pass after a few changes at the source: its cost should follow the change, not the
    // organization (the reconcile pass reads the neighbourhood of the identities written, not every identity).
    const mutated = await fetch(`${new URL(url).origin}/__sandbox/mutate?steps=${CHANGE_STEPS}`, { method: 'POST' });
    if (!mutated.ok) throw new Error(`mutate: ${mutated.status}`);
    const cpuC0 = process.cpuUsage();
    const tC0 = performance.now();
    const changed = await r.sync();
    const changedMs = performance.now() - tC0;
    const cpuC = process.cpuUsage(cpuC0);
    const yardstick = kind === 'postgres' && t.url ? await rawInsert(t.url, orgId) : undefined;
    const recordsPerSecond = Math.round(records / (ms / 1000));
    return {
      kind,
      connector,
      patients: n,
      records,
      byStream,
      written: full.streams.reduce((a, x) => a + x.inserted + x.updated, 0),
      requests: full.requests,
      status: `${full.status}/${inc.status}`,
      seconds: +(ms / 1000).toFixed(1),
      recordsPerSecond,
      ...(yardstick
        ? { rawInsert: yardstick, ratioToRawInsert: +(recordsPerSecond / yardstick.recordsPerSecond).toFixed(3) }
        : {}),
      cpuUsPerRecord: {
        runner: perRecordUs((cpu.user + cpu.system) / 1000),
        // Of which in the kernel (socket I/O to PostgreSQL and the platforms: on loopback, both ends' TCP work).
        runnerKernel: perRecordUs(cpu.system / 1000),
        ...(pgMs !== undefined ? { postgres: perRecordUs(pgMs) } : {}),
        // Not the product's cost, but it shares the machine's two cores with the runner and PostgreSQL.
        ...(sim0 !== undefined && sim1 !== undefined ? { simulators: perRecordUs((sim1 - sim0) * TICK_MS) } : {}),
      },
      stageUsPerRecord: {
        httpAndParse: perRecordUs(stages.http),
        mapping: perRecordUs(stages.mapping - stages.validation),
        validation: perRecordUs(stages.validation),
        identity: perRecordUs(stages.identity),
        write: perRecordUs(stages.write - stages.identity),
      },
      peakRssMb: rssMb,
      ...(full.reconcile ? { reconcile: full.reconcile } : {}),
      ...(tableStats ? { tableStats } : {}),
      incremental: {
        requests: incRequests,
        written: inc.streams.reduce((a, x) => a + x.inserted + x.updated, 0),
      },
      afterChanges: {
        steps: CHANGE_STEPS,
        status: changed.status,
        written: changed.streams.reduce((a, x) => a + x.inserted + x.updated, 0),
        writtenByStream: Object.fromEntries(
          changed.streams.filter((x) => x.inserted + x.updated).map((x) => [x.stream, x.inserted + x.updated]),
        ),
        ms: Math.round(changedMs),
        runnerCpuMs: Math.round((cpuC.user + cpuC.system) / 1000),
        ...(changed.reconcile ? { reconcile: changed.reconcile } : {}),
      },
    };
  } finally {
    await t.drop();
  }
}

async function machine() {
  const cpus = os.cpus();
  let postgres: string | undefined;
  if (process.env.BENCH_PG_URL !== '' && (await backends()).includes('postgres')) {
    const t = await openTestDb('postgres', { migrate: false });
    postgres = String((await t.db.query<{ v: string }>('select version() as v'))[0]?.v).split(' on ')[0];
    await t.drop();
  }
  return {
    cpu: cpus[0]?.model,
    cores: cpus.length,
    memoryGb: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    postgres,
    /** Other work on the machine: figures taken under load are lower (records/s) and noisier. */
    loadAverage1m: +(os.loadavg()[0] ?? 0).toFixed(1),
  };
}

/** One sync in a process of its own: its RSS and CPU are that sync's alone (the embedded database runs in it). */
async function runChild(kind: Kind, connector: Connector, url: string, n: number, simPid?: number) {
  // BENCH_NODE_ARGS: extra node flags for the sync process only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, ['--expose-gc', ...extra, '--import', 'tsx', import.meta.filename], {
    env: { ...process.env, BENCH_ONE: JSON.stringify({ kind, connector, url, n, simPid }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`bench run ${kind} ${connector} ${n} exited with ${code}`);
  return JSON.parse(out) as Awaited<ReturnType<typeof syncBench>>;
}

if (process.env.BENCH_ONE) {
  const o = JSON.parse(process.env.BENCH_ONE) as {
    kind: Kind;
    connector: Connector;
    url: string;
    n: number;
    simPid?: number;
  };
  process.stdout.write(JSON.stringify(await syncBench(o.kind, o.connector, o.url, o.n, o.simPid)));
  process.exit(0);
}

const wanted = (process.env.BENCH_BACKENDS ?? 'postgres,embedded').split(',') as Kind[];
const available = process.env.BENCH_PG_URL === '' ? ['embedded'] : await backends();
const kinds = wanted.filter((k) => available.includes(k));
const connectors = (process.env.BENCH_CONNECTORS ?? 'cliniko,chatwoot').split(',') as Connector[];
const results: Record<string, unknown> = {
  label,
  at: new Date().toISOString(),
  machine: await machine(),
  patients,
  runs: [] as unknown[],
};
const runs = results.runs as Array<Awaited<ReturnType<typeof syncBench>>>;
for (const n of [patients, small]) {
  const sims = await startSims(n);
  try {
    for (const kind of n === patients ? kinds : kinds.slice(0, 1))
      for (const c of connectors) {
        const r = await runChild(kind, c, sims.urls[c], n, sims.proc.pid);
        runs.push(r);
        process.stderr.write(
          `${kind} ${c} ${n} patients: ${r.records} records, ${r.recordsPerSecond}/s, ${r.peakRssMb} MB\n`,
        );
      }
  } finally {
    sims.proc.stdin?.end();
  }
}
mkdirSync(RESULTS, { recursive: true });
const file = path.join(RESULTS, `${results.at as string}-${label}.json`.replace(/:/g, '-'));
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.stderr.write(`written to ${path.relative(process.cwd(), file)}\n`);
