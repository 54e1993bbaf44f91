/**
 * Recovery of the work of an instance that died (SIGKILL, OOM, a lost host). pg-boss 10 has no job heartbeat: a
 * job stays `active` until its expiry, which must exceed the longest run (runner.deadline_seconds). Instead every
 * instance publishes the sync jobs it holds with its own heartbeat (service_health, every BEAT_MS); a job taken
 * since is found through its run (the active job of a pair whose dead run this instance had open). At every beat
 * each instance looks for dead ones:
 * - same host, its pid is gone: dead at once (found at the next beat, ≤ 15 s);
 * - another host: no beat for runner.stale_after_seconds + one beat (75 s by default), so that its runs' own
 *   heartbeats (every runner.heartbeat_seconds) are stale too by the rule every later run applies (runs.ts).
 * One survivor claims a dead instance (a conditional update to `down` with `recovered_by`, so exactly one does), closes its dead `running` sync
 * runs as `abandoned` (RQ6002, as a later run of the pair would) and fails its jobs, which pg-boss retries on a
 * survivor after SYNC_RETRY_SECONDS; the retried run resumes from the checkpoints. An instance wrongly thought dead
 * (a long stall) loses nothing: a run whose heartbeat is fresh is not closed, and the run lock makes the retry a
 * no-op (RQ4005) while it runs.
 */
import { hostname } from 'node:os';
import type { Database } from '../db/database.ts';
import { crossOrganization } from '../db/tx.ts';
import { isAlive } from '../engine/runs.ts';
import { BEAT_MS } from './dashboard/instances.ts';

/** The queue's side (queue.ts): which active sync jobs belong to runs, and failing jobs back to the queue. */
export interface DeadInstanceJobs {
  /** The active sync jobs of these (organization, connection) pairs: `<organization>/<connection>` singleton keys. */
  jobsOfPairs(keys: string[]): Promise<string[]>;
  /** Active sync jobs taken more than a few seconds ago that are not in `listed` (what live instances publish). */
  unlistedActiveJobs(listed: string[]): Promise<string[]>;
  failJobs(ids: string[], reason: string): Promise<void>;
}

export interface Recovered {
  instance: string;
  jobs: string[];
  runs: number;
}

export async function recoverDeadInstances(
  db: Database,
  selfId: string,
  staleAfterSeconds: number,
  queue: DeadInstanceJobs,
): Promise<Recovered[]> {
  // Instance rows and runs are read and closed on the cross-organization path (an app-role login has no other).
  const admin = crossOrganization(db, 'dead-instance recovery');
  const rows = await admin.query<{ connection: string; details: unknown; age: unknown }>(
    `select connection, details, extract(epoch from now() - checked_at)::float8 * 1000 as age
     from service_health where component = 'instance' and status <> 'down' and connection <> ?`,
    [selfId],
  );
  const me = hostname();
  const out: Recovered[] = [];
  for (const r of rows) {
    const d = (typeof r.details === 'string' ? JSON.parse(r.details) : (r.details ?? {})) as Record<string, unknown>;
    const pid = Number(d.pid);
    const gone = d.host === me && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid);
    if (!gone && Number(r.age) < staleAfterSeconds * 1000 + BEAT_MS) continue;
    const [claimed] = await admin.query<{ details: unknown }>(
      `update service_health set status = 'down',
         details = details || jsonb_build_object('recovered_by', ?::text, 'recovered_at', now())
       where component = 'instance' and connection = ? and status <> 'down' returning details`,
      [selfId, r.connection],
    );
    if (!claimed) continue; // another survivor got it
    const runs = await admin.query<{ pair: string }>(
      `update sync_runs set status = 'abandoned', finished_at = now(), error_code = 'RQ6002',
         error = 'the process running this sync stopped without finishing (crash or kill); closed by a surviving instance'
       where status = 'running' and host = ? and pid = ?
         and (? or heartbeat_at < now() - (? || ' seconds')::interval)
       returning organization_id || '/' || connection as pair`,
      [String(d.host ?? ''), pid, gone, String(staleAfterSeconds)],
    );
    const published = Array.isArray(d.sync_jobs) ? d.sync_jobs.map(String) : [];
    const cut = runs.length ? await queue.jobsOfPairs([...new Set(runs.map((x) => x.pair))]) : [];
    const jobs = [...new Set([...published, ...cut])];
    await queue.failJobs(jobs, `instance ${r.connection} died holding this job (recovered by ${selfId})`);
    out.push({ instance: r.connection, jobs, runs: runs.length });
  }
  if (out.length) {
    // A job the dead instance took just before it died may be neither published (its out-of-turn beat never
    // committed) nor tied to a run (none started yet): once a death is found, an active job that no live instance
    // lists is an orphan too (seen: two jobs left for pg-boss's expiry in the three-instance scale run).
    const live = await admin.query<{ details: unknown }>(
      "select details from service_health where component = 'instance' and status <> 'down'",
    );
    const listed = live.flatMap((l) => {
      const d = (typeof l.details === 'string' ? JSON.parse(l.details) : (l.details ?? {})) as Record<string, unknown>;
      return Array.isArray(d.sync_jobs) ? d.sync_jobs.map(String) : [];
    });
    const failed = new Set(out.flatMap((o) => o.jobs));
    const orphans = (await queue.unlistedActiveJobs(listed)).filter((id) => !failed.has(id));
    if (orphans.length) {
      await queue.failJobs(orphans, `no live instance holds this job (recovered by ${selfId})`);
      const last = out[out.length - 1] as Recovered;
      last.jobs = [...last.jobs, ...orphans];
    }
  }
  return out;
}
