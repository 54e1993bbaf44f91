import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, migrate, openDatabase } from '@routiq/runner';
import { type Sandbox, sandboxCredentials, startChatwoot, startCliniko, startManyChat } from '@routiq/sandbox';
import { describe, expect, it } from 'vitest';
import { blank, iso } from '../helpers/connectors.ts';
import { createTestDatabase, postgresReachable } from '../helpers/db.ts';

/**
 * Issue #18, "several instances": three `routiq serve` processes on one PostgreSQL database share 200 organizations
 * × 3 connections (Chatwoot, Cliniko, ManyChat) on the simulators. Over several schedule intervals:
 *   - every (organization, connection) runs exactly once in each of its schedule slots (defined below);
 *   - the runs spread over all three processes;
 *   - one process is SIGKILLed in the middle of a run (the event: a 'running' sync_runs row with its pid), the
 *     others go on, and afterwards the database equals the simulators.
 * ManyChat has no history to poll: its connection enriches the subscribers pushed to the webhook endpoint, so the
 * simulator pushes External Requests (and Chatwoot its webhooks, which alone carry deletions) to instances 0 and 1,
 * never to the one killed.
 *
 * The interval is sized to the machine: "exactly once per interval" presumes the instances can run every pair
 * within an interval (docs/service.md: a slot refused while the pair's previous job still waits is dropped after a
 * minute, so an overloaded cluster skips slots by design). The instances start at 60 s; after the warm-up (every
 * pair's first, full sync) the test measures the mean incremental run and, if the two survivors of the kill would be
 * busy more than half of a 60 s interval, lengthens it (multiples of 15 s, at most 240 s) by rewriting the config
 * and sending SIGHUP, which is also the reload path under test. On an idle 2-core machine it stays at 60 s.
 *
 * Sizes (env): ROUTIQ_SOAK_ORGS (200), ROUTIQ_SOAK_INTERVAL_SECONDS (fixed interval instead of the sizing),
 * ROUTIQ_SOAK_INTERVALS (3, at least 3), ROUTIQ_SOAK_CONCURRENCY (3, service.concurrency).
 */
const ORGS = Number(process.env.ROUTIQ_SOAK_ORGS ?? 200);
const FIXED_INTERVAL = process.env.ROUTIQ_SOAK_INTERVAL_SECONDS ? Number(process.env.ROUTIQ_SOAK_INTERVAL_SECONDS) : 0;
const START_INTERVAL = FIXED_INTERVAL || 60;
const MAX_INTERVAL = Math.max(240, FIXED_INTERVAL);
/** Sync runs at once per instance (service.concurrency). */
const CONCURRENCY = Number(process.env.ROUTIQ_SOAK_CONCURRENCY ?? 3);
const INTERVALS = Math.max(3, Number(process.env.ROUTIQ_SOAK_INTERVALS ?? 3));
const CONNECTIONS = ['chatwoot', 'cliniko', 'manychat'] as const;
const MINUTE = 60_000;
const INSTANCES = 3;
const VICTIM = 2;
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');
/** Start-up and warm-up (the full syncs), the intervals, the last slot's runs, drain and the checks. */
const TIMEOUT_MS = INTERVALS * MAX_INTERVAL * 1000 + 15 * MINUTE;

const pgUp = await postgresReachable();

const orgId = (i: number) => `org_soak_${String(i).padStart(3, '0')}`;

/**
 * The default schedule of `routiq serve` (docs/service.md): a connection runs at the seconds s with
 * s mod interval = its offset, a hash of "<org>/<connection>". Restated here so the test checks the runs against the
 * documented schedule rather than against whatever the service decided.
 */
function offsetOf(org: string, conn: string, interval: number): number {
  return createHash('sha256').update(`${org}/${conn}`).digest().readUInt32BE(0) % interval;
}

type Sims = Pick<Sandbox, 'chatwoot' | 'cliniko' | 'manychat' | 'tenants' | 'close'>;

/**
 * The three simulators with `orgs` tenants, as startSandbox makes them, but with Chatwoot's WEBHOOK_TIMEOUT and
 * ManyChat's External Request timeout at 60 s.
 * The simulator sends every delivery of a mutation round at once (about 1,000 for 200 accounts, with no bound on
 * concurrency, where Chatwoot's Sidekiq sends a few at a time); with the default 5 s, two receiving instances on
 * this 2-core machine answer hundreds of them too late, and Chatwoot never retries. That burst capacity is the
 * webhook bench's subject (test/bench/service.ts); here a delivery is lost only if the service loses it.
 */
async function startSims(orgs: number): Promise<Sims> {
  const seed = 19;
  const creds = Array.from({ length: orgs }, (_, i) => sandboxCredentials(seed, i));
  const common = { seed, scale: 0.2 };
  const [chatwoot, cliniko, manychat] = await Promise.all([
    startChatwoot({
      ...common,
      accounts: creds.map((c) => ({
        accountId: c.chatwoot.accountId,
        token: c.chatwoot.token,
        webhookSecret: c.chatwoot.webhookSecret,
      })),
      webhookTimeoutMs: 60_000,
    }),
    startCliniko({ ...common, users: creds.map((c) => ({ apiKey: c.cliniko.apiKey })) }),
    // ManyChat's External Request waits 10 s: the first pushes arrive while three instances start their full syncs;
    // as for Chatwoot, answering fast under load is the bench's subject, here only losing a push fails.
    startManyChat({
      ...common,
      pages: creds.map((c) => ({ pageId: c.manychat.pageId, token: c.manychat.token })),
      externalRequestTimeoutMs: 60_000,
    }),
  ]);
  return {
    chatwoot,
    cliniko,
    manychat,
    tenants: creds.map((c, index) => ({
      index,
      chatwoot: { baseUrl: chatwoot.url, ...c.chatwoot },
      cliniko: { baseUrl: cliniko.url, ...c.cliniko },
      manychat: { baseUrl: manychat.url, ...c.manychat },
    })),
    close: async () => {
      await Promise.all([chatwoot.close(), cliniko.close(), manychat.close()]);
    },
  };
}

interface Instance {
  index: number;
  child: ChildProcess;
  pid: number;
  url: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startInstance(index: number, config: string, env: NodeJS.ProcessEnv, logFile: string): Promise<Instance> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--port', '0', '--json'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(logFile);
    child.stderr?.pipe(log);
    child.stdout?.pipe(log);
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on('exit', (code, signal) => r({ code, signal })),
    );
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      // The --json line names the URL and pid (log lines are JSON too).
      for (const line of out.split('\n')) {
        const m = /^\{"url":"([^"]+)","pid":(\d+)\}$/.exec(line.trim());
        if (m) resolve({ index, child, pid: Number(m[2]), url: m[1]!, exit });
      }
    });
    child.on('error', reject);
    void exit.then(({ code, signal }) =>
      reject(new Error(`instance ${index} exited (${code ?? signal}) before listening; see ${logFile}`)),
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function until<T>(
  what: string,
  deadline: number,
  probe: () => Promise<T | undefined>,
  everyMs = 250,
): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface RunRow {
  id: string;
  organization_id: string;
  connection: string;
  status: string;
  error_code: string | null;
  pid: number;
  started: number;
  finished: number | null;
}

async function runs(db: Database): Promise<RunRow[]> {
  const rows = await db.query<Omit<RunRow, 'started' | 'finished'> & { started: string; finished: string | null }>(
    `select id::text, organization_id, connection, status, error_code, pid,
            (extract(epoch from started_at) * 1000)::bigint::text as started,
            (extract(epoch from finished_at) * 1000)::bigint::text as finished
     from sync_runs order by started_at`,
  );
  return rows.map((r) => ({
    ...r,
    pid: Number(r.pid),
    started: Number(r.started),
    finished: r.finished === null ? null : Number(r.finished),
  }));
}

describe.skipIf(!pgUp)('three routiq serve instances on one PostgreSQL (issue #18)', () => {
  it(`${ORGS} organizations × 3 connections, over ${INTERVALS} schedule intervals: each slot runs exactly once, work spreads over the instances, a SIGKILL mid-run loses nothing`, {
    timeout: TIMEOUT_MS,
  }, async () => {
    const testDeadline = Date.now() + TIMEOUT_MS - 60_000;
    const began = Date.now();
    // Progress on stderr: where the time goes when the scenario is slow or fails.
    const note = (what: string) =>
      process.stderr.write(`serve soak +${Math.round((Date.now() - began) / 1000)}s: ${what}\n`);
    const work = mkdtempSync(path.join(tmpdir(), 'routiq-serve-soak-'));
    const target = await createTestDatabase('postgres');
    const db = await openDatabase({ url: target.url });
    let sandbox: Sims | undefined;
    let passed = false;
    const instances: Instance[] = [];
    try {
      await migrate(db);
      sandbox = await startSims(ORGS);
      const sb = sandbox;
      // Precondition: no record changed after the simulator's "now". A future updated_at becomes the incremental
      // cursor, and every later change before that time is behind it (some seeds generate such Cliniko patients,
      // e.g. seed 18: two patients created and updated 15 h after "now"; seed 19 has none).
      const clNow = Date.parse(sb.cliniko.snapshot().now);
      const future = sb.cliniko
        .snapshot()
        .users.flatMap((u) => [...u.patients, ...u.individual_appointments])
        .filter((r) => Date.parse(String(r.updated_at)) > clNow)
        .map((r) => String(r.id));
      expect(future, 'Cliniko records updated after the simulator clock').toEqual([]);
      // Cliniko hides patients and appointments deleted before the first sync: no row is expected for them.
      const hiddenAtStart = sb.cliniko.snapshot().users.map((u) => ({
        patients: new Set(u.patients.filter((p) => p.deleted_at).map((p) => String(p.id))),
        appointments: new Set(u.individual_appointments.filter((a) => a.deleted_at).map((a) => String(a.id))),
      }));

      const env: NodeJS.ProcessEnv = { DATABASE_URL: target.url, ROUTIQ_LOG_LEVEL: 'warn' };
      const orgs = sb.tenants.map((t, i) => {
        env[`CW_TOKEN_${i}`] = t.chatwoot.token;
        env[`CW_SECRET_${i}`] = t.chatwoot.webhookSecret;
        env[`CL_KEY_${i}`] = t.cliniko.apiKey;
        env[`MC_KEY_${i}`] = t.manychat.token;
        env[`MC_HOOK_${i}`] = `hook-${i}`;
        return {
          id: orgId(i),
          name: `Soak clinic ${i}`,
          connections: [
            {
              connector: 'chatwoot',
              config: { base_url: t.chatwoot.baseUrl, account_id: t.chatwoot.accountId },
              secrets: { api_token: `\${CW_TOKEN_${i}}`, webhook_secret: `\${CW_SECRET_${i}}` },
            },
            {
              connector: 'cliniko',
              config: { base_url: t.cliniko.baseUrl, contact_email: 'soak@routiq.example' },
              secrets: { api_key: `\${CL_KEY_${i}}` },
            },
            {
              connector: 'manychat',
              config: { base_url: t.manychat.baseUrl },
              secrets: { api_key: `\${MC_KEY_${i}}`, webhook_token: `\${MC_HOOK_${i}}` },
            },
          ],
        };
      });
      const config = path.join(work, 'routiq.yaml');
      // JSON is YAML.
      const writeConfig = (intervalSeconds: number) =>
        writeFileSync(
          config,
          JSON.stringify({
            log: { level: 'warn' },
            service: { concurrency: CONCURRENCY, interval_minutes: intervalSeconds / 60, drain_seconds: 20 },
            organizations: orgs,
          }),
        );
      writeConfig(START_INTERVAL);

      for (let i = 0; i < INSTANCES; i++)
        instances.push(await startInstance(i, config, env, path.join(work, `instance-${i}.log`)));
      const pids = instances.map((x) => x.pid);
      note(`instances ${pids.join(', ')} listening`);
      for (const [i, t] of sb.tenants.entries()) {
        // A load balancer in front of the survivors (the victim takes no pushes: a push it never answers is the
        // sender's to retry, which Chatwoot does not).
        const hooks = instances[i % VICTIM]!.url;
        sb.chatwoot.webhooks.subscribe(t.chatwoot.accountId, {
          url: `${hooks}/webhooks/${orgId(i)}/chatwoot`,
          subscriptions: [
            'message_created',
            'message_updated',
            'conversation_created',
            'conversation_updated',
            'conversation_status_changed',
            'contact_created',
            'contact_updated',
          ],
          secret: t.chatwoot.webhookSecret,
        });
        sb.manychat.setAutomation(t.manychat.pageId, {
          url: `${hooks}/webhooks/${orgId(i)}/manychat`,
          headers: { 'X-Routiq-Token': `hook-${i}` },
          template: 'full_contact',
        });
      }
      const subscribers = sb.manychat.snapshot().pages.map((p) => p.subscribers.map((s) => String(s.id)));
      const push = async (round: number) => {
        for (const [i, t] of sb.tenants.entries()) {
          const ids = subscribers[i] ?? [];
          const sub = ids[(round * 2 + i) % ids.length];
          if (sub === undefined) continue;
          await sb.manychat.simulateInbound({ pageId: t.manychat.pageId, subscriberId: sub, text: `round ${round}` });
        }
      };
      await push(0);

      // Warm-up: the first run of every pair is a full sync (most of the work, longer than an interval). The window
      // starts once every pair has synced once and the schedule has caught up (no sync job waiting longer than
      // 10 s, twice in a row), so its intervals hold the steady, incremental load.
      await until(
        'the first run of every pair',
        testDeadline,
        async () => {
          const [r] = await db.query<{ pairs: string }>(
            "select count(distinct (organization_id, connection))::text as pairs from sync_runs where status = 'succeeded'",
          );
          return Number(r?.pairs) === ORGS * CONNECTIONS.length ? true : undefined;
        },
        1000,
      );
      note('every pair synced once');
      // Size the interval (see the top): the mean incremental run while the instances catch up (all workers busy).
      let INTERVAL = START_INTERVAL;
      if (!FIXED_INTERVAL) {
        const mean = await until(
          'incremental runs to measure',
          testDeadline,
          async () => {
            const [r] = await db.query<{ n: string; mean: string | null }>(
              `select count(*)::text as n, avg(extract(epoch from finished_at - started_at))::text as mean
               from (select *, row_number() over (partition by organization_id, connection order by started_at) as k
                     from sync_runs) r
               where k > 1 and status = 'succeeded' and finished_at > now() - interval '120 seconds'`,
            );
            return Number(r?.n) >= Math.min(60, (ORGS * CONNECTIONS.length) / 2) ? Number(r?.mean) : undefined;
          },
          2000,
        );
        const survivors = CONCURRENCY * (INSTANCES - 1);
        const busy = (ORGS * CONNECTIONS.length * mean) / survivors;
        INTERVAL = Math.min(MAX_INTERVAL, Math.max(START_INTERVAL, Math.ceil((2 * busy) / 15) * 15));
        note(
          `mean incremental run ${mean.toFixed(2)} s: ${survivors} workers need ${Math.round(busy)} s an interval; interval ${INTERVAL} s`,
        );
        if (INTERVAL !== START_INTERVAL) {
          writeConfig(INTERVAL);
          for (const x of instances) x.child.kill('SIGHUP');
          // The reload is synchronous after reading the file; the schedule check runs every 5 s.
          await sleep(6_000);
        }
      }
      const SLOT_MS = INTERVAL * 1000;
      let caughtUp = 0;
      await until(
        'the schedule to catch up',
        testDeadline,
        async () => {
          const [r] = await db.query<{ waiting: string }>(
            `select count(*)::text as waiting from pgboss.job where name = 'routiq-sync'
               and state in ('created', 'retry') and created_on < now() - interval '10 seconds'`,
          );
          caughtUp = r?.waiting === '0' ? caughtUp + 1 : 0;
          return caughtUp >= 2 ? true : undefined;
        },
        5000,
      );
      note('the schedule caught up');
      // The observed window: INTERVALS whole intervals from the next whole second.
      const t0 = Math.ceil((Date.now() + 5_000) / 1000) * 1000;
      const t1 = t0 + INTERVALS * SLOT_MS;
      const slots: Array<{ org: string; connection: string; slot: number }> = [];
      for (const o of orgs)
        for (const c of CONNECTIONS) {
          const off = offsetOf(o.id, c, INTERVAL) * 1000;
          for (let s = Math.ceil((t0 - off) / SLOT_MS) * SLOT_MS + off; s < t1; s += SLOT_MS)
            slots.push({ org: o.id, connection: c, slot: s });
        }
      expect(slots.length).toBe(ORGS * CONNECTIONS.length * INTERVALS);

      // The sources change during the first intervals (never in the last one, whose runs must see the end state).
      const changes = (async () => {
        for (let k = 0; k < INTERVALS - 1; k++) {
          await sleep(t0 + k * SLOT_MS + SLOT_MS / 2 - Date.now());
          sb.chatwoot.mutate(1);
          sb.cliniko.mutate(1);
          await push(k + 1);
          await sb.chatwoot.webhooks.idle();
        }
      })();

      // SIGKILL the victim in the middle of a run: the first of its Chatwoot runs seen 'running' half-way into
      // interval 1, right after the sources changed (so the run has something to write).
      await sleep(t0 + SLOT_MS / 2 - Date.now());
      const victim = instances[VICTIM]!;
      const cut = await until(
        'a running sync on the victim',
        testDeadline,
        async () => {
          const r = await db.query<{ id: string }>(
            "select id::text from sync_runs where status = 'running' and pid = ? and connection = 'chatwoot' limit 1",
            [victim.pid],
          );
          return r[0];
        },
        20,
      );
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      note(`SIGKILLed instance ${VICTIM} during run ${cut.id}`);
      expect((await victim.exit).signal).toBe('SIGKILL');
      await changes;

      // Let the window end, then wait for every pair's run of its last slot to finish.
      await sleep(t1 - Date.now());
      const lastSlot = new Map<string, number>();
      for (const s of slots)
        lastSlot.set(`${s.org}/${s.connection}`, Math.max(lastSlot.get(`${s.org}/${s.connection}`) ?? 0, s.slot));
      await until(
        'the runs of the last slots',
        testDeadline,
        async () => {
          const done = new Set(
            (await runs(db))
              .filter(
                (r) =>
                  r.status !== 'running' &&
                  r.started >= (lastSlot.get(`${r.organization_id}/${r.connection}`) ?? Infinity),
              )
              .map((r) => `${r.organization_id}/${r.connection}`),
          );
          return done.size === lastSlot.size ? true : undefined;
        },
        1000,
      );

      note('every last slot ran');
      // SIGTERM the survivors: they drain and exit 0.
      for (const x of instances) if (x !== victim) x.child.kill('SIGTERM');
      for (const x of instances)
        if (x !== victim) expect(await x.exit, `instance ${x.index} (see ${work})`).toEqual({ code: 0, signal: null });

      // ---- Exactly once per slot. A slot of a pair is the interval [slot start, next slot start); the pair's runs
      // are bucketed by started_at. Each slot holds exactly one run, 'succeeded' — except the slots whose job the
      // victim held when it died. A survivor finds the dead instance at its next beat (same host: its pid is gone),
      // closes its runs as 'abandoned' (RQ6002) and fails its jobs, which pg-boss retries once on a survivor 10 s
      // later (docs/service.md, recovery.ts). Such a slot holds the victim's cut run — or none, when the victim had
      // taken the job but not started its run yet — and the retry's run, wherever it starts, is that slot's
      // recovery: it must succeed on a survivor within a minute of the kill. No job is left 'active' for pg-boss's
      // expiry (an hour by default).
      const stranded = await db.query<{ id: string }>(
        "select id::text from pgboss.job where name = 'routiq-sync' and state = 'active'",
      );
      expect(stranded, 'jobs left active after the survivors drained').toEqual([]);
      const recovered = await db.query<{ key: string; slot: string | null; started: string; state: string }>(
        `select singleton_key as key, data->>'slot' as slot, state,
                (extract(epoch from started_on) * 1000)::bigint::text as started
         from pgboss.job where name = 'routiq-sync' and retry_count > 0`,
      );
      expect(recovered.length, 'jobs the victim held').toBeLessThanOrEqual(CONCURRENCY);
      for (const j of recovered)
        expect({ state: j.state, afterKill: Number(j.started) > killedAt }).toEqual({
          state: 'completed',
          afterKill: true,
        });
      const strandedSlots = new Set(recovered.map((j) => `${j.key}@${j.slot}`));
      const everyRun = await runs(db);
      // The recovery runs: a retried job's run is the first of its pair starting from the retry (a second at most
      // for the start of the run row).
      const recoveryRuns = recovered.map((j) => {
        const r = everyRun.find(
          (x) => x.organization_id + '/' + x.connection === j.key && x.started >= Number(j.started) - 1000,
        );
        expect(r, `the run of the retried job of ${j.key}`).toBeDefined();
        return r!;
      });
      for (const r of recoveryRuns) {
        expect({ status: r.status, survivor: pids.slice(0, VICTIM).includes(r.pid) }).toEqual({
          status: 'succeeded',
          survivor: true,
        });
        expect(r.started - killedAt, 'recovery of a job the victim held').toBeLessThan(MINUTE);
      }
      const all = everyRun.filter((r) => !recoveryRuns.includes(r));
      const byPair = new Map<string, RunRow[]>();
      for (const r of all) {
        const k = `${r.organization_id}/${r.connection}`;
        byPair.set(k, [...(byPair.get(k) ?? []), r]);
      }
      const wrong: string[] = [];
      let strandedInWindow = 0;
      for (const s of slots) {
        const k = `${s.org}/${s.connection}`;
        const inSlot = (byPair.get(k) ?? []).filter((r) => r.started >= s.slot && r.started < s.slot + SLOT_MS);
        const ok = strandedSlots.has(`${k}@${s.slot}`)
          ? inSlot.length === 0 || (inSlot.length === 1 && inSlot[0]?.status === 'abandoned')
          : inSlot.length === 1 && inSlot[0]?.status === 'succeeded';
        if (strandedSlots.has(`${k}@${s.slot}`)) strandedInWindow++;
        if (!ok)
          wrong.push(
            `${k} @ ${new Date(s.slot).toISOString()}: ${inSlot.length} runs ${inSlot.map((r) => r.status).join(',')}`,
          );
      }
      expect(wrong.slice(0, 20), `${wrong.length} of ${slots.length} slots`).toEqual([]);
      // The slots of a pair tile the time from its first slot on. Between t0 and it, at most the run of the slot
      // before t0 started (a few seconds after its slot).
      const firstSlot = new Map<string, number>();
      for (const s of slots)
        firstSlot.set(`${s.org}/${s.connection}`, Math.min(firstSlot.get(`${s.org}/${s.connection}`) ?? t1, s.slot));
      const early = new Map<string, number>();
      for (const r of all) {
        const k = `${r.organization_id}/${r.connection}`;
        if (r.started >= t0 && r.started < (firstSlot.get(k) ?? t0)) early.set(k, (early.get(k) ?? 0) + 1);
      }
      expect([...early].filter(([, n]) => n > 1)).toEqual([]);
      const windowRuns = all.filter((r) => {
        const first = firstSlot.get(`${r.organization_id}/${r.connection}`);
        const last = lastSlot.get(`${r.organization_id}/${r.connection}`);
        return first !== undefined && last !== undefined && r.started >= first && r.started < last + SLOT_MS;
      });
      expect(windowRuns.filter((r) => r.status === 'succeeded').length).toBe(slots.length - strandedInWindow);

      // ---- The kill: the cut runs are the victim's rows left 'running' when it died, each closed as abandoned.
      const abandoned = all.filter((r) => r.status === 'abandoned');
      expect(abandoned.map((r) => r.id)).toContain(cut.id);
      expect(abandoned.length).toBeLessThanOrEqual(recovered.length);
      for (const a of abandoned) {
        expect({ pid: a.pid, error_code: a.error_code, startedBeforeKill: a.started <= killedAt }).toEqual({
          pid: victim.pid,
          error_code: 'RQ6002',
          startedBeforeKill: true,
        });
        const next = everyRun.find(
          (r) => r.organization_id === a.organization_id && r.connection === a.connection && r.started > a.started,
        );
        expect(next?.status, `resumption of ${a.organization_id}/${a.connection}`).toBe('succeeded');
        expect(pids.slice(0, VICTIM)).toContain(next?.pid);
      }
      expect(windowRuns.filter((r) => r.status !== 'succeeded' && r.status !== 'abandoned')).toEqual([]);

      // ---- Spread: before the kill every instance ran a fair part of the window's runs (at least half its share).
      const beforeKill = windowRuns.filter((r) => r.started < killedAt);
      const share = pids.map((pid) => beforeKill.filter((r) => r.pid === pid).length);
      for (const n of share)
        expect(n, `runs per instance before the kill: ${share.join(', ')}`).toBeGreaterThanOrEqual(
          beforeKill.length / (2 * INSTANCES),
        );
      const after = pids.map((pid) => windowRuns.filter((r) => r.started > killedAt && r.pid === pid).length);
      expect(after[VICTIM]).toBe(0);

      process.stdout.write(
        `serve soak: ${slots.length} slots (${ORGS} orgs × 3 connections × ${INTERVALS} intervals of ${INTERVAL} s), runs per instance before the kill ${share.join('/')}, after ${after.join('/')}; ${abandoned.length} run(s) cut by the SIGKILL (${abandoned.map((a) => `${a.organization_id}/${a.connection}`).join(', ')}), resumed by the survivors; ${recovered.length} job(s) the victim held retried ${recoveryRuns.map((r) => `${Math.round((r.started - killedAt) / 1000)} s`).join(', ')} after the kill\n`,
      );

      // ---- The database equals the simulators.
      const answered = sb.chatwoot.webhooks.deliveries.map((d) => d.durationMs).sort((a, b) => a - b);
      const at = (q: number) => answered[Math.min(answered.length - 1, Math.floor(q * answered.length))] ?? 0;
      process.stdout.write(
        `serve soak: ${sb.chatwoot.webhooks.deliveries.length} Chatwoot deliveries answered in p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${answered.at(-1)} ms (${answered.filter((x) => x > 5000).length} over Chatwoot's default 5 s)\n`,
      );
      expect(sb.chatwoot.webhooks.deliveries.filter((d) => d.status === null || d.status >= 300)).toEqual([]);
      const mismatches = await compareWithSimulators(db, sb, hiddenAtStart);
      expect(mismatches.slice(0, 20), `${mismatches.length} differences`).toEqual([]);
      passed = true;
    } finally {
      for (const x of instances) if (x.child.exitCode === null && x.child.signalCode === null) x.child.kill('SIGKILL');
      await sandbox?.close();
      await db.close();
      // ROUTIQ_SOAK_KEEP=1 keeps a failed run's database and instance logs for a post-mortem.
      if (passed || !process.env.ROUTIQ_SOAK_KEEP) {
        await target.drop();
        rmSync(work, { recursive: true, force: true });
      } else process.stderr.write(`serve soak: kept ${target.url} and ${work}\n`);
    }
  });
});

/** Every organization's rows against its simulator tenants (the checks of test/e2e/{chatwoot,cliniko,manychat}). */
async function compareWithSimulators(
  db: Database,
  sb: Sims,
  hiddenAtStart: Array<{ patients: Set<string>; appointments: Set<string> }>,
): Promise<string[]> {
  const out: string[] = [];
  const diff = (where: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want))
      out.push(`${where}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const grouped = async <T extends { organization_id: string }>(sql: string) => {
    const m = new Map<string, T[]>();
    for (const r of await db.query<T>(sql)) m.set(r.organization_id, [...(m.get(r.organization_id) ?? []), r]);
    return m;
  };
  const byExt = <T extends { external_id: string }>(rows: T[] | undefined) =>
    new Map((rows ?? []).map((r) => [String(r.external_id), r]));

  // Chatwoot
  const cw = sb.chatwoot.snapshot();
  const convs = await grouped<{
    organization_id: string;
    external_id: string;
    status: string;
    last_activity_at: unknown;
  }>("select organization_id, external_id, status, last_activity_at from conversations where source = 'chatwoot'");
  const msgs = await grouped<{
    organization_id: string;
    external_id: string;
    conversation_external_id: string;
    content: unknown;
    deleted_at: unknown;
  }>(
    "select organization_id, external_id, conversation_external_id, content, deleted_at from messages where source = 'chatwoot'",
  );
  const cwIds = await grouped<{
    organization_id: string;
    external_id: string;
    email: unknown;
    phone: unknown;
    display_name: unknown;
  }>(
    "select organization_id, external_id, email, phone, display_name from patient_identities where source = 'chatwoot'",
  );
  for (const [i, acc] of cw.accounts.entries()) {
    const org = orgId(i);
    const c = byExt(convs.get(org));
    for (const conv of acc.conversations) {
      const row = c.get(String(conv.id));
      diff(`${org} conversation ${String(conv.id)}`, row && { status: row.status, last: iso(row.last_activity_at) }, {
        status: conv.status,
        last: iso(Number(conv.last_activity_at) * 1000),
      });
    }
    const live = new Set(acc.conversations.map((x) => String(x.id)));
    const m = byExt(msgs.get(org));
    let expected = 0;
    for (const [display, list] of Object.entries(acc.messages)) {
      if (!live.has(display)) continue;
      for (const msg of list) {
        expected++;
        const row = m.get(String(msg.id));
        const deleted = (msg.content_attributes as { deleted?: boolean } | undefined)?.deleted === true;
        diff(
          `${org} message ${String(msg.id)}`,
          row && { conversation: row.conversation_external_id, content: row.content, deleted: iso(row.deleted_at) },
          {
            conversation: display,
            content: blank(msg.content),
            deleted: deleted ? iso(Number(msg.created_at) * 1000) : null,
          },
        );
      }
    }
    diff(
      `${org} messages of live conversations`,
      (msgs.get(org) ?? []).filter((x) => live.has(String(x.conversation_external_id))).length,
      expected,
    );
    const ids = byExt(cwIds.get(org));
    const senders = new Set(acc.conversations.map((x) => String((x.meta as { sender?: { id?: number } }).sender?.id)));
    for (const contact of acc.contacts) {
      if (contact._hidden && !senders.has(String(contact.id))) continue;
      const row = ids.get(String(contact.id));
      diff(
        `${org} contact ${String(contact.id)}`,
        row && { email: row.email, phone: row.phone, name: row.display_name },
        {
          email: blank(contact.email),
          phone: blank(contact.phone_number),
          name: blank(contact.name),
        },
      );
    }
  }

  // Cliniko
  const cl = sb.cliniko.snapshot();
  const clIds = await grouped<{
    organization_id: string;
    external_id: string;
    first_name: unknown;
    last_name: unknown;
    archived_at: unknown;
    deleted_at: unknown;
  }>(
    "select organization_id, external_id, first_name, last_name, archived_at, deleted_at from patient_identities where source = 'cliniko'",
  );
  const appts = await grouped<{
    organization_id: string;
    external_id: string;
    starts_at: unknown;
    status: string;
    cancelled_at: unknown;
    deleted_at: unknown;
  }>('select organization_id, external_id, starts_at, status, cancelled_at, deleted_at from appointments');
  for (const [i, user] of cl.users.entries()) {
    const org = orgId(i);
    const ids = byExt(clIds.get(org));
    for (const p of user.patients) {
      const row = ids.get(String(p.id));
      if (p.deleted_at && hiddenAtStart[i]?.patients.has(String(p.id))) continue;
      diff(
        `${org} patient ${String(p.id)}`,
        row && {
          first: row.first_name,
          last: row.last_name,
          archived: iso(row.archived_at),
          deleted: iso(row.deleted_at),
        },
        {
          first: blank(p.first_name),
          last: blank(p.last_name),
          archived: iso(p.archived_at),
          deleted: iso(p.deleted_at),
        },
      );
    }
    const a = byExt(appts.get(org));
    for (const ap of user.individual_appointments) {
      const row = a.get(String(ap.id));
      if (ap.deleted_at && hiddenAtStart[i]?.appointments.has(String(ap.id))) continue;
      const status = ap.cancelled_at
        ? 'cancelled'
        : ap.did_not_arrive === true
          ? 'did_not_arrive'
          : ap.patient_arrived === true
            ? 'arrived'
            : 'booked';
      diff(
        `${org} appointment ${String(ap.id)}`,
        row && {
          starts: iso(row.starts_at),
          status: row.status,
          cancelled: iso(row.cancelled_at),
          deleted: iso(row.deleted_at),
        },
        { starts: iso(ap.starts_at), status, cancelled: iso(ap.cancelled_at), deleted: iso(ap.deleted_at) },
      );
    }
  }

  // ManyChat: one message per accepted push, and every pushed subscriber enriched from getInfo.
  const mc = sb.manychat.snapshot();
  const pageOrg = new Map(sb.tenants.map((t, i) => [t.manychat.pageId, orgId(i)]));
  const mcMsgs = await grouped<{ organization_id: string; external_id: string; content: unknown }>(
    "select organization_id, external_id, content from messages where source = 'manychat'",
  );
  const mcIds = await grouped<{ organization_id: string; external_id: string; first_name: unknown; email: unknown }>(
    "select organization_id, external_id, first_name, email from patient_identities where source = 'manychat'",
  );
  const want = new Map<string, Map<string, unknown>>();
  const pushedSubs = new Map<string, Set<string>>();
  for (const p of sb.manychat.externalRequests) {
    const org = pageOrg.get(p.pageId)!;
    if (p.status === null || p.status >= 300) {
      out.push(`${org} ManyChat push refused: ${p.status ?? p.error}`);
      continue;
    }
    const body = JSON.parse(p.requestBody) as Record<string, unknown>;
    const at = body.last_interaction as string;
    want.set(org, (want.get(org) ?? new Map()).set(`${p.subscriberId}:${Date.parse(at)}`, body.last_input_text));
    pushedSubs.set(org, (pushedSubs.get(org) ?? new Set()).add(p.subscriberId));
  }
  for (const [i, page] of mc.pages.entries()) {
    const org = orgId(i);
    const got = new Map((mcMsgs.get(org) ?? []).map((r) => [r.external_id, r.content]));
    diff(`${org} ManyChat messages`, [...got.entries()].sort(), [...(want.get(org) ?? new Map()).entries()].sort());
    const ids = byExt(mcIds.get(org));
    diff(`${org} ManyChat subscribers`, [...ids.keys()].sort(), [...(pushedSubs.get(org) ?? [])].sort());
    for (const s of page.subscribers) {
      const row = ids.get(String(s.id));
      if (row)
        diff(
          `${org} subscriber ${String(s.id)}`,
          { first: row.first_name, email: row.email },
          { first: blank(s.first_name) || null, email: blank(s.email) || null },
        );
    }
  }
  return out;
}
