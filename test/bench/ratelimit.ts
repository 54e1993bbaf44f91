/**
 * `node --import tsx test/bench/ratelimit.ts`: cost of the rate budget shared through PostgreSQL (never asserted).
 *   - cost per acquire as the budget grows (300, 3,000, 30,000 per minute; one process, 8 callers): acquisitions/s,
 *     round trips per acquire, rows read and written per acquire (pg_stat_user_tables deltas)
 *   - acquisitions/s with one and with two processes on one budget that does not bind (1,000,000 per minute)
 * Each scenario runs in worker processes (the real multi-process setting) on a fresh database.
 * Options: BENCH_PG_URL / ROUTIQ_TEST_PG_URL (default the CI server), BENCH_RL_SECONDS (default 6).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { migrate, openDatabase } from '@routiq/runner';
import { PgSlidingWindowLimiter } from '@routiq/runner/testing';
import pg from 'pg';
import { createTestDatabase } from '../helpers/db.ts';

interface WorkerResult {
  acquired: number;
  roundTrips: number;
  ms: number;
}

const seconds = Number(process.env.BENCH_RL_SECONDS ?? 6);
const callers = 8;

/** One process: `callers` concurrent acquirers on one budget until `max` acquisitions or the deadline. */
async function worker(url: string, limit: number, windowMs: number, max: number) {
  const db = await openDatabase({ url, poolMax: callers });
  let roundTrips = 0;
  db.orm.em
    .getConnection()
    .getKnex()
    .on('query', () => roundTrips++);
  const l = new PgSlidingWindowLimiter(db, 'bench:shared', limit, windowMs);
  // Started together: each worker says it is ready, the parent answers with the end time once all are.
  process.stdout.write('ready\n');
  const endAt = await new Promise<number>((r) => process.stdin.once('data', (d) => r(Number(String(d).trim()))));
  const t0 = performance.now();
  let started = 0;
  let acquired = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      // Counted before acquiring: a caller past the budget would wait out the window.
      while (started < max && Date.now() < endAt) {
        started++;
        await l.acquire();
        acquired++;
      }
    }),
  );
  const ms = performance.now() - t0;
  await db.close();
  const r: WorkerResult = { acquired, roundTrips, ms };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function startWorker(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'worker', ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let onReady: () => void;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n')) onReady();
  });
  const done = new Promise<WorkerResult>((resolve, reject) =>
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() as string) as WorkerResult);
    }),
  );
  return { ready, go: (endAt: number) => child.stdin.end(`${endAt}\n`), done };
}

type Stats = Record<'seq_scan' | 'seq_tup_read' | 'idx_scan' | 'idx_tup_fetch' | 'written', number>;

/** Summed over the limiter's tables (whatever this version calls them: every table whose name starts rate_limit). */
async function tableStats(url: string): Promise<Stats> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<Record<keyof Stats, string>>(
      `select coalesce(sum(seq_scan), 0) as seq_scan, coalesce(sum(seq_tup_read), 0) as seq_tup_read,
              coalesce(sum(idx_scan), 0) as idx_scan, coalesce(sum(idx_tup_fetch), 0) as idx_tup_fetch,
              coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) as written
       from pg_stat_user_tables where relname like 'rate\\_limit%'`,
    );
    const row = r.rows[0]!;
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)])) as Stats;
  } finally {
    await c.end();
  }
}

async function scenario(limit: number, windowMs: number, processes: number, max: number) {
  const target = await createTestDatabase('postgres');
  const url = target.url as string;
  try {
    const setup = await openDatabase({ url, poolMax: 1 });
    await migrate(setup);
    await setup.close();
    const before = await tableStats(url);
    const perProcess = Math.ceil(max / processes);
    const ws = Array.from({ length: processes }, () =>
      startWorker([url, String(limit), String(windowMs), String(perProcess)]),
    );
    await Promise.all(ws.map((w) => w.ready));
    const endAt = Date.now() + seconds * 1000;
    for (const w of ws) w.go(endAt);
    const rs = await Promise.all(ws.map((w) => w.done));
    // Backends flush their statistics when they exit; give the collector a moment.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await tableStats(url);
    const acquired = rs.reduce((a, r) => a + r.acquired, 0);
    const ms = Math.max(...rs.map((r) => r.ms));
    const per = (k: keyof Stats) => +((after[k] - before[k]) / acquired).toFixed(2);
    return {
      budget: `${limit}/${windowMs / 1000}s`,
      processes,
      acquired,
      acquisitionsPerSecond: Math.round(acquired / (ms / 1000)),
      roundTripsPerAcquire: +(rs.reduce((a, r) => a + r.roundTrips, 0) / acquired).toFixed(2),
      perAcquire: {
        seqScans: per('seq_scan'),
        rowsReadBySeqScan: per('seq_tup_read'),
        indexScans: per('idx_scan'),
        rowsFetchedByIndex: per('idx_tup_fetch'),
        rowsWritten: per('written'),
      },
    };
  } finally {
    await target.drop();
  }
}

if (process.argv[2] === 'worker') {
  const [url, limit, windowMs, max] = process.argv.slice(3);
  await worker(url as string, Number(limit), Number(windowMs), Number(max));
} else {
  const results: Record<string, unknown> = { node: process.version, seconds, callersPerProcess: callers };
  results.budgetSize = [];
  for (const n of [300, 3000, 30000]) (results.budgetSize as unknown[]).push(await scenario(n, 60_000, 1, n));
  results.processes = [];
  for (const p of [1, 2]) (results.processes as unknown[]).push(await scenario(1_000_000, 60_000, p, 1_000_000));
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}
