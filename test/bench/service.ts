/**
 * `npm run bench:service` (part of `npm run bench`): figures for `routiq serve` (issue #18), never asserted.
 *   (a) webhook → row visible: signed Chatwoot message_created deliveries posted open-loop at a steady rate (default
 *       500/s for 25 s) to an in-process Service; latency = from sending a delivery to the first poll of the messages
 *       table that sees its row (polls every ~20 ms, so figures are upper bounds within one poll); plus the HTTP
 *       answer time. Two loads one after the other, each on conversations and contacts of its own (20 organizations
 *       × 50 conversations, so each load's first 2 s meet 1,000 new contacts): "after start", from a service just
 *       started (one delivery per organization before it), and "steady", the same service right after the first.
 *       The load generator (a worker thread) builds and signs every delivery before sending. Embedded and PostgreSQL.
 *   (b) 1,000 organizations on one `routiq serve` process (one connection each, against a trivially fast local API,
 *       concurrency 2, interval 1 minute: five times the default schedule's load): lag = run start − slot start for
 *       every (organization, slot) after a first interval of warm-up, runs matched to slots one to one in order;
 *       distribution, and how many slots started later than one interval.
 * Options: BENCH_WEBHOOK_RATE (500), BENCH_WEBHOOK_SECONDS (25, each load), BENCH_WEBHOOK_CONVERSATIONS (50 per
 * organization), BENCH_SCHEDULE_ORGS (1000),
 * BENCH_SCHEDULE_MINUTES (3, observed), BENCH_SCHEDULE_INTERVAL (1, minutes), BENCH_SERVICE_PARTS (webhook,schedule),
 * BENCH_KINDS (embedded,postgres), BENCH_PG_URL ('' = embedded only). Results also go to
 * bench/results/<time>-service.json (the sync bench's convention).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createLogger, type Database, DEFAULT_SETTINGS, migrate, openDatabase, Service } from '@routiq/runner';
import { startChatwoot } from '@routiq/sandbox';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends, createTestDatabase } from '../helpers/db.ts';
import { connectorsDir, org, testConfig } from '../helpers/engine.ts';
import { itemsSpec } from '../helpers/specs.ts';
import { startTinyApi } from '../helpers/tiny-api.ts';
import { type Answered, delivery, type LoadInput, type Sent } from './service-load.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');
const MINUTE = 60_000;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Every wait of the bench is bounded: a step that does not finish in time fails the bench with what it waited for
 * (a hang once cost a whole session: an unanswered request, a database call or a process that never exited).
 */
async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`bench: ${what} did not finish within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
function dist(values: number[], digits = 0) {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number) => +x.toFixed(digits);
  return { n: s.length, p50: r(pct(s, 50)), p95: r(pct(s, 95)), p99: r(pct(s, 99)), max: r(s.at(-1) ?? Number.NaN) };
}

/** A real message_created body, as the Chatwoot simulator delivers it. */
async function messageCreatedTemplate(): Promise<{
  template: Record<string, unknown>;
  baseUrl: string;
  close(): Promise<void>;
}> {
  const sink = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const cw = await startChatwoot({ accounts: [{ accountId: 1, token: 't', webhookSecret: 's' }], seed: 3, scale: 0.2 });
  cw.webhooks.subscribe(1, {
    url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`,
    subscriptions: ['message_created'],
    secret: 's',
  });
  for (let i = 0; i < 50 && !cw.webhooks.deliveries.some((d) => d.event === 'message_created'); i++) {
    cw.mutate(1);
    await within('the simulator delivering a mutation', 30_000, cw.webhooks.idle());
  }
  const d = cw.webhooks.deliveries.find((x) => x.event === 'message_created');
  if (!d) throw new Error('the simulator delivered no message_created');
  return {
    template: JSON.parse(d.body) as Record<string, unknown>,
    baseUrl: cw.url,
    close: async () => {
      await cw.close();
      sink.close();
    },
  };
}

async function openBenchDb(kind: 'embedded' | 'postgres', dir: string, extraConnections: number, poolMax?: number) {
  const target = await createTestDatabase(kind, { dir: path.join(dir, 'db') });
  const db = await openDatabase({
    url: target.url,
    embeddedDir: target.embeddedDir,
    extraConnections,
    ...(poolMax ? { poolMax } : {}),
  });
  await migrate(db);
  return { db, target };
}

/** Debugging aid: counts the PostgreSQL statements of this process (all clients) and their round-trip time. */
async function countStatements() {
  // MikroORM has its own copy of pg.
  const { createRequire } = await import('node:module');
  const knexPg = createRequire(createRequire(import.meta.url).resolve('knex'))('pg') as {
    Client: { prototype: unknown };
  };
  const proto = knexPg.Client.prototype as { query: (...a: unknown[]) => unknown };
  const orig = proto.query;
  const by = new Map<string, { n: number; ms: number }>();
  proto.query = function (this: unknown, ...a: unknown[]) {
    const text = String(typeof a[0] === 'string' ? a[0] : ((a[0] as { text?: string })?.text ?? '')).replace(
      /\s+/g,
      ' ',
    );
    const key = text.slice(0, 70);
    const t = performance.now();
    const done = () => {
      const e = by.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += performance.now() - t;
      by.set(key, e);
    };
    const cb = a.at(-1);
    if (typeof cb === 'function')
      a[a.length - 1] = (...r: unknown[]) => {
        done();
        return (cb as (...x: unknown[]) => unknown)(...r);
      };
    const r = orig.apply(this, a);
    if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(done, done);
    return r;
  };
  return {
    report(deliveries: number) {
      proto.query = orig;
      return [...by]
        .sort((x, y) => y[1].n - x[1].n)
        .slice(0, 40)
        .map(([k, v]) => `${(v.n / deliveries).toFixed(2)}/delivery ${(v.ms / v.n).toFixed(1)}ms ${k}`);
    },
  };
}

/** The load generator's worker source: TypeScript too, so it registers tsx first (workers do not inherit the loader). */
function bootLoad(): string {
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./service-load.ts', import.meta.url).href)}); })`;
}

/** (a) webhook → row visible at a steady rate. */
export async function webhookLatency(
  kind: 'embedded' | 'postgres',
  o: {
    rate: number;
    seconds: number;
    orgs: number;
    conversationsPerOrg: number;
    webhookConcurrency?: number;
    poolMax?: number;
    /** Longest wait for the rows after the last send. */
    drainSeconds: number;
  },
) {
  const work = mkdtempSync(path.join(tmpdir(), 'routiq-bench-wh-'));
  const tpl = await messageCreatedTemplate();
  // pg-boss shares the embedded database through extra connections, as in `routiq serve`.
  const { db, target } = await openBenchDb(kind, work, 2, o.poolMax);
  const env: NodeJS.ProcessEnv = { CW_TOKEN: 't' };
  const orgs = Array.from({ length: o.orgs }, (_, i) => {
    env[`CW_SECRET_${i}`] = `secret-${i}`;
    return org(`org_wh_${i}`, [
      {
        connector: 'chatwoot',
        config: { base_url: tpl.baseUrl, account_id: 1000 + i },
        secrets: { api_token: '${CW_TOKEN}', webhook_secret: `\${CW_SECRET_${i}}` },
      },
    ]);
  });
  const config = testConfig(CONNECTORS_DIR, orgs, { deadlineSeconds: 300 });
  const service = new Service({
    db,
    config,
    // No scheduled sync during the bench: a cron that fires on 1 January only.
    settings: {
      ...DEFAULT_SETTINGS,
      host: '127.0.0.1',
      port: 0,
      ...(o.webhookConcurrency ? { webhookConcurrency: o.webhookConcurrency } : {}),
      schedules: Object.fromEntries(orgs.map((x) => [`${x.id}/chatwoot`, '0 0 1 1 *'])),
    },
    logger: createLogger('error'),
    env,
  });
  // The answer time inside the service (request headers parsed → answer sent), apart from the load generator's and the
  // kernel's queues: where an answer's time goes when the machine is short of CPU.
  const serverAnswer: number[] = [];
  const begunAt = new WeakMap<object, number>();
  service.app.addHook('onRequest', async (req) => {
    begunAt.set(req, performance.now());
  });
  service.app.addHook('onResponse', async (req) => {
    const t = begunAt.get(req);
    if (t !== undefined && req.url.startsWith('/webhooks/')) serverAnswer.push(performance.now() - t);
  });
  const { url } = await within('the service to start', 60_000, service.start());
  const input: LoadInput = {
    base: `${url}/webhooks/`,
    orgs: orgs.map((x, i) => ({ id: x.id, accountId: 1000 + i, secret: `secret-${i}` })),
    template: tpl.template,
    rate: o.rate,
    seconds: o.seconds,
    conversationsPerOrg: o.conversationsPerOrg,
    firstId: 50_000_000,
  };
  // One index probe per (organization, id): a poll must not take the CPU it measures (the same ids against every
  // organization's key range cost 20 probes per id, a few ms of the database's CPU forty times a second).
  const orgOf = (id: string, firstId: number) => input.orgs[(Number(id) - firstId) % input.orgs.length]!.id;
  const visibleIds = async (keys: Array<[org: string, id: string]>) =>
    new Set(
      (
        await within(
          'a poll of the messages table',
          600_000,
          db.query<{ external_id: string }>(
            `select m.external_id from unnest(string_to_array(?, ','), string_to_array(?, ',')) as k(org, id)
             join messages m on m.organization_id = k.org and m.source = 'chatwoot' and m.external_id = k.id`,
            [keys.map((k) => k[0]).join(','), keys.map((k) => k[1]).join(',')],
          ),
        )
      ).map((r) => r.external_id),
    );

  // Warm-up, not measured: one delivery per organization (sessions opened, organizations and contacts created).
  const warm = input.orgs.map((x, i) => delivery({ ...input, firstId: 40_000_000 }, i, x));
  await Promise.all(
    warm.map(async (d, i) => {
      const res = await fetch(`${input.base}${input.orgs[i]!.id}/chatwoot`, {
        method: 'POST',
        headers: d.headers,
        body: d.text,
        signal: AbortSignal.timeout(30_000),
      });
      if (res.status !== 202) throw new Error(`bench: warm-up delivery answered ${res.status}: ${await res.text()}`);
    }),
  );
  const warmIds = warm.map((d, i): [string, string] => [input.orgs[i]!.id, String(d.id)]);
  for (let t = now(); (await visibleIds(warmIds)).size < warmIds.length; await sleep(50))
    if (now() - t > 60_000) throw new Error('bench: the warm-up deliveries were not all visible within 60 s');
  /** One measured load: sends `input` open loop, polls until its rows are visible (or the bounds give up). */
  const measure = async (input: LoadInput, label: string) => {
    serverAnswer.length = 0;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    const pending = new Map<string, Sent>();
    const answers = new Map<number, Answered>();
    const sentAt = new Map<number, number>();
    const visible: number[] = [];
    const timeline: Array<[number, number]> = [];
    let sentCount = 0;
    let firstSend = Number.POSITIVE_INFINITY;
    let lastSend = 0;
    let lastVisible = 0;
    let done = false;
    const worker = new Worker(bootLoad(), { eval: true, workerData: input });
    worker.on('message', (m: { sent?: Sent[]; answered?: Answered[]; done?: boolean }) => {
      for (const s of m.sent ?? []) {
        pending.set(s.externalId, s);
        sentAt.set(s.n, s.sentAt);
        sentCount++;
        firstSend = Math.min(firstSend, s.sentAt);
        lastSend = Math.max(lastSend, s.sentAt);
      }
      for (const a of m.answered ?? []) answers.set(a.n, a);
      if (m.done) done = true;
    });
    // A load generator that dies or stalls must not keep the bench polling forever: its exit ends the sending.
    let workerError: string | undefined;
    worker.on('error', (e) => {
      workerError = e.message;
    });
    const workerExit = new Promise((r) =>
      worker.on('exit', (code) => {
        done = true;
        r(code);
      }),
    );
    const stmts = process.env.BENCH_DEBUG ? await countStatements() : undefined;
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const wall0 = now();
    loop.enable();
    let polls = 0;
    let pollMs = 0;
    let slowPolls = 0;
    let poll: { begun: number; result: Promise<Set<string>> } | undefined;
    // Poll until every sent delivery is visible; give up when nothing became visible for 30 s, or after drainSeconds.
    let progressAt = now();
    while (!done || pending.size) {
      if (done && (now() - progressAt > 30_000 || now() - lastSend > o.drainSeconds * 1000)) break;
      if (now() - wall0 > (o.seconds + o.drainSeconds + 60) * 1000) {
        workerError ??= 'the load did not finish in time (sending stalled)';
        await worker.terminate();
        break;
      }
      const ids = [...pending.keys()].slice(0, 5000).map((id): [string, string] => [orgOf(id, input.firstId), id]);
      if (ids.length || poll) {
        // A saturated database (the embedded one has a single backend, shared with the service's processing) answers
        // a poll late; the poll is awaited again rather than a new one queued behind it, and the loop's bounds hold.
        const begun = poll?.begun ?? now();
        poll ??= {
          begun,
          result: visibleIds(ids).catch((e: Error) => {
            workerError ??= e.message;
            return new Set<string>();
          }),
        };
        const seen = await Promise.race([poll.result, sleep(5_000).then(() => undefined)]);
        if (!seen) {
          slowPolls++;
          continue;
        }
        poll = undefined;
        // The row was visible by the time the answer came: an upper bound.
        const at = now();
        polls++;
        pollMs += at - begun;
        for (const id of seen) {
          const s = pending.get(id);
          if (!s) continue;
          visible.push(at - s.sentAt);
          if (process.env.BENCH_DEBUG) timeline.push([s.sentAt, at - s.sentAt]);
          pending.delete(id);
          lastVisible = at;
          progressAt = at;
        }
      }
      await sleep(20);
    }
    loop.disable();
    const elu = performance.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    const wall = now() - wall0;
    if (stmts) process.stderr.write(`statements: ${JSON.stringify(stmts.report(sentCount))}\n`);
    if (process.env.BENCH_DEBUG && timeline.length) {
      const t0 = Math.min(...timeline.map((x) => x[0]));
      const buckets = new Map<number, number[]>();
      for (const [at, ms] of timeline) {
        const b = Math.floor((at - t0) / 1000);
        buckets.set(b, [...(buckets.get(b) ?? []), ms]);
      }
      for (const [b, v] of [...buckets].sort((x, y) => x[0] - y[0]))
        process.stderr.write(`sent +${b}s: ${JSON.stringify(dist(v))}\n`);
    }
    // The load generator's requests time out (service-load.ts): it ends; if not, it is stopped.
    await within('the load generator to end', 60_000, workerExit).catch(async (e) => {
      workerError ??= (e as Error).message;
      await worker.terminate();
    });
    await within('in-line webhook processing to finish', 120_000, service.idle()).catch((e) => {
      workerError ??= (e as Error).message;
    });
    const answered = [...answers.values()];
    return {
      phase: label,
      sent: sentCount,
      ...(workerError ? { loadError: workerError } : {}),
      achievedSendRate: Math.round(sentCount / ((lastSend - firstSend) / 1000 || 1)),
      answers: Object.fromEntries(
        [...new Set(answered.map((a) => a.status))].map((s) => [
          String(s),
          answered.filter((a) => a.status === s).length,
        ]),
      ),
      httpAnswerMs: dist(answered.map((a) => a.answeredAt - (sentAt.get(a.n) ?? a.answeredAt))),
      serverAnswerMs: dist(serverAnswer),
      // Chatwoot waits 5 s for an answer and never retries: a later answer (or none) is a lost event there.
      answersOver5s: answered.filter((a) => a.status === 0 || a.answeredAt - (sentAt.get(a.n) ?? 0) > 5000).length,
      visibleMs: dist(visible),
      neverVisible: pending.size,
      // Rows made visible per second, from the first send to the last row seen.
      processedPerSecond: Math.round(visible.length / ((lastVisible - firstSend) / 1000 || 1)),
      pollEveryMs: +(20 + pollMs / Math.max(1, polls)).toFixed(1),
      pollsOver5s: slowPolls,
      // The main thread runs the service (HTTP, storing, processing; on embedded also the database) and the poller.
      mainThreadBusyPercent: Math.round(elu.utilization * 100),
      // The whole process, load generator thread included.
      processCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
      eventLoopDelayMs: {
        p50: Math.round(loop.percentile(50) / 1e6),
        p99: Math.round(loop.percentile(99) / 1e6),
        max: Math.round(loop.max / 1e6),
      },
    };
  };

  // Two measured loads, each on conversations and contacts of its own (each contact is met for the first time in
  // its load): the first from a service just started (code not yet compiled hot), the second from the same service
  // right after it, at the same rate.
  const phases = [
    await measure(input, 'after start'),
    await measure({ ...input, firstId: 60_000_000, conversationOffset: 10_000 }, 'steady'),
  ];
  // Teardown that overruns its bound is reported with the figures (they stand), not allowed to hang the bench.
  const teardown: string[] = [];
  const noted = (e: Error) => {
    teardown.push(e.message);
  };
  await within('the service to close', (DEFAULT_SETTINGS.shutdownTimeoutSeconds + 10) * 1000, service.close()).catch(
    noted,
  );
  const inbox = await within(
    'the inbox count',
    30_000,
    db.query<{ status: string; n: string }>(
      'select status, count(*)::text as n from webhook_inbox group by status order by status',
    ),
  ).catch(() => []);
  await within('the database to close', 30_000, db.close()).catch(noted);
  await within('the test database to be dropped', 60_000, target.drop()).catch(noted);
  await within('the simulator to close', 30_000, tpl.close()).catch(noted);
  rmSync(work, { recursive: true, force: true });
  return {
    kind,
    targetRate: o.rate,
    seconds: o.seconds,
    organizations: o.orgs,
    webhookConcurrency: o.webhookConcurrency ?? DEFAULT_SETTINGS.webhookConcurrency,
    poolMax: kind === 'embedded' ? 1 : (o.poolMax ?? 10),
    ...(teardown.length ? { teardownErrors: teardown } : {}),
    inbox: Object.fromEntries(inbox.map((r) => [r.status, Number(r.n)])),
    phases,
  };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The default schedule's offset of a pair in seconds (docs/service.md). */
function offsetOf(key: string, intervalSeconds: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % intervalSeconds;
}

/** (b) Many organizations on one `routiq serve` process. */
export async function scheduleLag(
  kind: 'embedded' | 'postgres',
  o: { orgs: number; intervalMinutes: number; minutes: number; concurrency: number },
) {
  const work = mkdtempSync(path.join(tmpdir(), 'routiq-bench-sched-'));
  const api = await startTinyApi({ items: 3 });
  const target = await createTestDatabase(kind, { dir: path.join(work, 'db') });
  const orgIds = Array.from({ length: o.orgs }, (_, i) => `org_s_${String(i).padStart(4, '0')}`);
  const configFile = path.join(work, 'routiq.yaml');
  // JSON is YAML.
  writeFileSync(
    configFile,
    JSON.stringify({
      ...(kind === 'embedded' ? { database: { embedded_dir: target.embeddedDir } } : {}),
      connectors_dir: connectorsDir({ tiny: itemsSpec('tiny') }),
      log: { level: 'warn' },
      service: { interval_minutes: o.intervalMinutes, concurrency: o.concurrency },
      organizations: orgIds.map((id) => ({
        id,
        name: id,
        connections: [{ connector: 'tiny', config: { base_url: api.url } }],
      })),
    }),
  );
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile, '--port', '0', '--json', '--migrate'], {
    env: { ...process.env, DATABASE_URL: target.url ?? '', ROUTIQ_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-20_000);
  });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  await within(
    'routiq serve to listen',
    180_000,
    new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (/"url":/.test(out)) resolve();
      });
      void exit.then((code) => reject(new Error(`routiq serve exited (${code}) before listening: ${stderr}`)));
    }),
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  const pid = child.pid!;
  // A service that dies during the observation ends the bench with its log, not with figures of nothing.
  const alive = async (ms: number) => {
    await Promise.race([sleep(ms), exit]);
    if (exited) throw new Error(`bench: routiq serve exited during the observation: ${stderr}`);
  };
  // The first interval is warm-up: the first (full) runs, and the slots of the minute before the start, which a
  // starting instance catches up on.
  const interval = o.intervalMinutes * MINUTE;
  const t0 = Date.now() + Math.max(5_000, interval);
  const t1 = t0 + o.minutes * MINUTE;
  await alive(t0 - Date.now());
  const cpu0 = cpuSeconds(pid);
  await alive(t1 - Date.now());
  const cpu1 = cpuSeconds(pid);
  // The last observed slots get their whole interval before the process stops.
  await alive(t1 + o.intervalMinutes * MINUTE - Date.now());
  child.kill('SIGTERM');
  // It exits 0 within service.shutdown_timeout_seconds; a process that does not is killed and reported.
  const code = await within(
    'routiq serve to exit after SIGTERM',
    (DEFAULT_SETTINGS.shutdownTimeoutSeconds + 15) * 1000,
    exit,
  ).catch(async () => {
    child.kill('SIGKILL');
    await exit;
    return 'killed: no exit within the shutdown bound' as const;
  });
  await api.close();

  const db: Database = await within(
    'the database to open',
    60_000,
    openDatabase({ url: target.url, embeddedDir: target.embeddedDir }),
  );
  const runs = await db.query<{ organization_id: string; started: string; seconds: string; status: string }>(
    `select organization_id, (extract(epoch from started_at) * 1000)::bigint::text as started,
            extract(epoch from finished_at - started_at)::text as seconds, status
     from sync_runs order by started_at`,
  );
  const jobs = await db.query<{ slot: string; created: string; started: string | null }>(
    `select data->>'slot' as slot, (extract(epoch from created_on) * 1000)::bigint::text as created,
            (extract(epoch from started_on) * 1000)::bigint::text as started
     from pgboss.job where name = 'routiq-sync' and data ? 'slot'`,
  );
  await within('the database to close', 30_000, db.close());
  await within('the test database to be dropped', 60_000, target.drop());
  rmSync(work, { recursive: true, force: true });

  // Match runs to slots one to one, per organization, in order: a slot's run is the first run not yet matched that
  // started at or after the slot. Slots from the service's start; figures for those in [t0, t1).
  const byOrg = new Map<string, number[]>();
  for (const r of runs) byOrg.set(r.organization_id, [...(byOrg.get(r.organization_id) ?? []), Number(r.started)]);
  const lags: number[] = [];
  let late = 0;
  let never = 0;
  let slotsObserved = 0;
  for (const id of orgIds) {
    const starts = byOrg.get(id) ?? [];
    let next = 0;
    const off = offsetOf(`${id}/tiny`, interval / 1000) * 1000;
    for (let m = Math.ceil((started - off) / interval) * interval + off; m < t1; m += interval) {
      while (next < starts.length && starts[next]! < m) next++;
      const run = starts[next];
      if (run !== undefined) next++;
      if (m < t0) continue;
      slotsObserved++;
      if (run === undefined) {
        never++;
        continue;
      }
      lags.push((run - m) / 1000);
      if (run - m >= interval) late++;
    }
  }
  const window = runs.filter((r) => Number(r.started) >= t0 && Number(r.started) < t1);
  const inWindow = jobs.filter((j) => Number(j.slot) >= t0 && Number(j.slot) < t1);
  return {
    kind,
    organizations: o.orgs,
    intervalMinutes: o.intervalMinutes,
    concurrency: o.concurrency,
    observedMinutes: o.minutes,
    slots: slotsObserved,
    lagSeconds: dist(lags, 1),
    laterThanOneInterval: late,
    neverRan: never,
    runsPerMinute: Math.round(window.length / o.minutes),
    runSeconds: dist(
      window.map((r) => Number(r.seconds)),
      3,
    ),
    failedRuns: window.filter((r) => r.status !== 'succeeded').length,
    // Where the lag comes from: slot → job created (the schedule check every 5 s), job created → run started.
    enqueueDelaySeconds: dist(
      inWindow.map((j) => (Number(j.created) - Number(j.slot)) / 1000),
      1,
    ),
    queueWaitSeconds: dist(
      inWindow.filter((j) => j.started !== null).map((j) => (Number(j.started) - Number(j.created)) / 1000),
      1,
    ),
    serveCpuPercent: Math.round(((cpu1 - cpu0) / ((t1 - t0) / 1000)) * 100),
    exitCode: code,
  };
}

async function main() {
  const parts = (process.env.BENCH_SERVICE_PARTS ?? 'webhook,schedule').split(',');
  const only = process.env.BENCH_KINDS?.split(',');
  const kinds = (process.env.BENCH_PG_URL === '' ? (['embedded'] as const) : await backends()).filter(
    (k) => !only || only.includes(k),
  );
  const results: Record<string, unknown> = { node: process.version, at: new Date().toISOString() };
  if (parts.includes('webhook')) {
    const wh = [];
    for (const k of kinds)
      wh.push(
        await webhookLatency(k, {
          rate: Number(process.env.BENCH_WEBHOOK_RATE ?? 500),
          seconds: Number(process.env.BENCH_WEBHOOK_SECONDS ?? 25),
          orgs: 20,
          conversationsPerOrg: Number(process.env.BENCH_WEBHOOK_CONVERSATIONS ?? 50),
          drainSeconds: Number(process.env.BENCH_WEBHOOK_DRAIN_SECONDS ?? 120),
          ...(process.env.BENCH_WEBHOOK_CONCURRENCY
            ? { webhookConcurrency: Number(process.env.BENCH_WEBHOOK_CONCURRENCY) }
            : {}),
          ...(process.env.BENCH_POOL_MAX ? { poolMax: Number(process.env.BENCH_POOL_MAX) } : {}),
        }),
      );
    results.webhookToRow = wh;
    process.stdout.write(`${JSON.stringify({ webhookToRow: wh }, null, 2)}\n`);
    for (const r of wh)
      for (const f of r.phases)
        process.stdout.write(
          `webhook → row visible (${r.kind}, ${f.phase}, ${r.targetRate}/s for ${r.seconds} s, achieved ${f.achievedSendRate}/s): p50 ${f.visibleMs.p50} ms, p95 ${f.visibleMs.p95} ms, p99 ${f.visibleMs.p99} ms, max ${f.visibleMs.max} ms; never visible ${f.neverVisible}${f.loadError ? ` (${f.loadError})` : ''} — target p99 < 1000 ms: ${f.visibleMs.p99 < 1000 && !f.neverVisible ? 'met' : 'MISSED'}\n`,
        );
  }
  if (parts.includes('schedule')) {
    const sc = [];
    for (const k of kinds)
      sc.push(
        await scheduleLag(k, {
          orgs: Number(process.env.BENCH_SCHEDULE_ORGS ?? 1000),
          intervalMinutes: Number(process.env.BENCH_SCHEDULE_INTERVAL ?? 1),
          minutes: Number(process.env.BENCH_SCHEDULE_MINUTES ?? 3),
          concurrency: Number(process.env.BENCH_SCHEDULE_CONCURRENCY ?? 2),
        }),
      );
    results.schedule = sc;
    process.stdout.write(`${JSON.stringify({ schedule: sc }, null, 2)}\n`);
    for (const r of sc)
      process.stdout.write(
        `schedule (${r.kind}, ${r.organizations} organizations, one instance, interval ${r.intervalMinutes} min, ${r.slots} slots): lag p50 ${r.lagSeconds.p50} s, p95 ${r.lagSeconds.p95} s, p99 ${r.lagSeconds.p99} s, max ${r.lagSeconds.max} s; later than one interval ${r.laterThanOneInterval}, never ran ${r.neverRan} — target none later than one interval: ${r.laterThanOneInterval === 0 && r.neverRan === 0 ? 'met' : 'MISSED'}\n`,
      );
  }
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${(results.at as string).replace(/:/g, '-')}-service.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`written to ${path.relative(process.cwd(), file)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
  // Nothing may keep a finished bench alive (a driver's idle timer, a simulator socket).
  process.exit(0);
}
