import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { recoverDeadInstances } from './recovery.ts';

const kinds = await backends();

/** A queue side that names each pair's active job `job-of-<pair>`, lists none unlisted, and records what it fails. */
function recording() {
  const failed: string[][] = [];
  const queue = {
    jobsOfPairs: async (keys: string[]) => keys.map((k) => `job-of-${k}`),
    unlistedActiveJobs: async (): Promise<string[]> => [],
    failJobs: async (ids: string[]) => {
      failed.push(ids);
    },
  };
  return { queue, failed };
}
const idle = { jobsOfPairs: async () => [], unlistedActiveJobs: async () => [], failJobs: async () => undefined };
const ORG = 'org_recovery';
const STALE = 60;

/** A pid that surely belonged to a process that has exited (a child, waited for). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid;
}

describe.each(kinds)('recovery of the work of a dead instance (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values (?, 'Recovery')", [ORG]);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const instance = async (id: string, d: Record<string, unknown>, ageSeconds = 0) =>
    t.db.query(
      `insert into service_health (component, organization_id, connection, status, details, checked_at)
       values ('instance', '', ?, 'ok', ?::jsonb, now() - (? || ' seconds')::interval)`,
      [id, JSON.stringify(d), String(ageSeconds)],
    );
  const run = async (connection: string, host: string, pid: number, heartbeatAgeSeconds = 0) => {
    const [r] = await t.db.query<{ id: string }>(
      `insert into sync_runs (organization_id, connector, connection, correlation_id, status, host, pid, heartbeat_at)
       values (?, 'tiny', ?, 'c', 'running', ?, ?, now() - (? || ' seconds')::interval) returning id::text`,
      [ORG, connection, host, pid, String(heartbeatAgeSeconds)],
    );
    return r!.id;
  };
  const status = async (id: string) =>
    (
      await t.db.query<{ status: string; error_code: string | null }>(
        'select status, error_code from sync_runs where id = ?::uuid',
        [id],
      )
    )[0];

  it('same host, pid gone: claimed by exactly one survivor, its runs abandoned and its jobs failed at once', async () => {
    const pid = deadPid();
    const jobs = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    await instance('dead-local', { host: hostname(), pid, sync_jobs: jobs });
    const cut = await run('a', hostname(), pid);
    const { queue, failed } = recording();
    const found = await recoverDeadInstances(t.db, 'survivor-1', STALE, queue);
    // The published jobs, and the active job of the pair of each dead run (taken after the last beat, perhaps).
    const all = [...jobs, `job-of-${ORG}/a`];
    expect(found).toEqual([{ instance: 'dead-local', jobs: all, runs: 1 }]);
    expect(failed).toEqual([all]);
    expect(await status(cut)).toEqual({ status: 'abandoned', error_code: 'RQ6002' });
    // Another survivor at its own beat: nothing left to claim.
    expect(await recoverDeadInstances(t.db, 'survivor-2', STALE, idle)).toEqual([]);
    const [row] = await t.db.query<{ status: string; details: Record<string, unknown> | string }>(
      "select status, details from service_health where component = 'instance' and connection = 'dead-local'",
    );
    const details = typeof row?.details === 'string' ? JSON.parse(row.details) : row?.details;
    expect({ status: row?.status, by: details?.recovered_by }).toEqual({ status: 'down', by: 'survivor-1' });
  });

  it('another host: only after stale_after_seconds + a beat without a beat, and a run with a fresh heartbeat stays', async () => {
    const jobs = ['00000000-0000-4000-8000-000000000003'];
    await instance('remote-fresh', { host: 'elsewhere', pid: 4242, sync_jobs: jobs }, STALE);
    const none = await recoverDeadInstances(t.db, 'survivor-1', STALE, idle);
    expect(none.map((x) => x.instance)).not.toContain('remote-fresh');

    await instance('remote-dead', { host: 'elsewhere', pid: 4343, sync_jobs: jobs }, STALE + 20);
    const stale = await run('b', 'elsewhere', 4343, STALE + 5);
    const fresh = await run('c', 'elsewhere', 4343, 1);
    const { queue, failed } = recording();
    const found = await recoverDeadInstances(t.db, 'survivor-1', STALE, queue);
    const all = [...jobs, `job-of-${ORG}/b`];
    expect(found).toEqual([{ instance: 'remote-dead', jobs: all, runs: 1 }]);
    expect(failed).toEqual([all]);
    expect(await status(stale)).toEqual({ status: 'abandoned', error_code: 'RQ6002' });
    // Stalled rather than dead, perhaps: its live run is left to it (the run lock keeps the retry off it).
    expect(await status(fresh)).toEqual({ status: 'running', error_code: null });
  });

  it('once a death is found, an active job no live instance lists is failed too (taken just before the kill)', async () => {
    await instance('dead-silent', { host: hostname(), pid: deadPid(), sync_jobs: [] });
    await instance('alive-peer', { host: hostname(), pid: process.pid, sync_jobs: ['job-held-by-peer'] });
    const failed: string[][] = [];
    let asked: string[] = [];
    const found = await recoverDeadInstances(t.db, 'survivor-3', STALE, {
      jobsOfPairs: async () => [],
      unlistedActiveJobs: async (listed) => {
        asked = listed;
        return ['job-held-by-peer', 'job-of-nobody'].filter((id) => !listed.includes(id));
      },
      failJobs: async (ids) => {
        failed.push(ids);
      },
    });
    expect(asked).toContain('job-held-by-peer');
    expect(found).toEqual([{ instance: 'dead-silent', jobs: ['job-of-nobody'], runs: 0 }]);
    expect(failed).toEqual([[], ['job-of-nobody']]);
    // No death found at a beat: nothing is swept (a live instance's job is never failed on a guess).
    let swept = false;
    await recoverDeadInstances(t.db, 'survivor-3', STALE, {
      ...idle,
      unlistedActiveJobs: async () => {
        swept = true;
        return ['job-of-nobody'];
      },
    });
    expect(swept).toBe(false);
  });

  it('never claims itself, a live process on this host, or an instance that stopped cleanly', async () => {
    await instance('me', { host: hostname(), pid: deadPid(), sync_jobs: ['00000000-0000-4000-8000-000000000004'] });
    await instance('alive-local', { host: hostname(), pid: process.ppid, sync_jobs: [] });
    await t.db.query(
      `insert into service_health (component, organization_id, connection, status, details, checked_at)
       values ('instance', '', 'stopped', 'down', ?::jsonb, now() - interval '1 hour')`,
      [JSON.stringify({ host: 'elsewhere', pid: 1, sync_jobs: ['00000000-0000-4000-8000-000000000005'] })],
    );
    const found = await recoverDeadInstances(t.db, 'me', STALE, idle);
    expect(found).toEqual([]);
  });
});
