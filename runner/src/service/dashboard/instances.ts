/**
 * The instances of `routiq serve` on one database: each registers in service_health (component `instance`) and
 * beats every 15 s with its load; a clean stop marks it `down`. One that stops beating is shown as lost; rows of
 * instances gone for a day are removed.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import { crossOrganization, safeMessage } from '../../db/tx.ts';

export const BEAT_MS = 15_000;

export interface InstanceLoad {
  version: string;
  activeJobs: number;
  concurrency: number;
  draining: boolean;
  queueRunning: boolean;
  /** The sync jobs it holds: a survivor fails them if it dies (recovery.ts). */
  syncJobs: string[];
}

export interface InstanceView {
  id: string;
  host: string;
  pid: number;
  version: string;
  /** ok, draining, stopped, lost (no heartbeat for 3 beats, or found dead by a survivor), degraded (its queue is not running). */
  health: 'ok' | 'draining' | 'stopped' | 'lost' | 'degraded';
  startedAt: string;
  lastSeenAt: string;
  secondsSinceBeat: number;
  activeJobs: number;
  concurrency: number;
  self: boolean;
}

export class InstanceRegistry {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly startedAt = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  private readonly db: Database;

  constructor(
    db: Database,
    private readonly load: () => InstanceLoad,
    private readonly log: Logger,
  ) {
    // Instance rows belong to no organization (''): only the cross-organization path reads and writes them.
    this.db = crossOrganization(db, 'service instances: heartbeat rows');
  }

  async beat(stopped = false): Promise<void> {
    const l = this.load();
    const status = stopped ? 'down' : !l.queueRunning ? 'degraded' : 'ok';
    const details = {
      host: hostname(),
      pid: process.pid,
      started_at: this.startedAt,
      version: l.version,
      active_jobs: l.activeJobs,
      concurrency: l.concurrency,
      draining: l.draining,
      sync_jobs: l.syncJobs,
    };
    await this.db.query(
      `insert into service_health (component, organization_id, connection, status, details, checked_at)
       values ('instance', '', ?, ?, ?::jsonb, now())
       on conflict (component, organization_id, connection) do update
         set status = excluded.status, details = excluded.details, checked_at = now()`,
      [this.id, status, JSON.stringify(details)],
    );
  }

  private beating: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  /**
   * Beat now, out of turn (a sync job was taken: its id must be published before the instance can die with it).
   * Beats never overlap, so a late write never replaces a newer load; calls during a beat coalesce into one more.
   */
  poke(): void {
    if (this.stopped) return;
    if (this.beating) {
      this.again = true;
      return;
    }
    this.beating = this.beat()
      .catch((err) => this.log.warn({ err: { message: safeMessage(err) } }, 'instance heartbeat failed'))
      .finally(() => {
        this.beating = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  start(): void {
    this.timer = setInterval(() => {
      this.poke();
      this.db
        .query("delete from service_health where component = 'instance' and checked_at < now() - interval '1 day'")
        .catch((err) => this.log.warn({ err: { message: safeMessage(err) } }, 'instance rows cleanup failed'));
    }, BEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    // The last word is `down`: an out-of-turn beat still writing must not land after it.
    this.again = false;
    this.stopped = true;
    await this.beating;
    await this.beat(true).catch(() => undefined);
  }
}

export async function listInstances(db: Database, selfId?: string): Promise<InstanceView[]> {
  const rows = await crossOrganization(db, 'service instances: heartbeat rows').query<{
    connection: string;
    status: string;
    details: unknown;
    checked_at: unknown;
    age: unknown;
  }>(
    `select connection, status, details, checked_at, extract(epoch from now() - checked_at)::float8 as age
     from service_health where component = 'instance' order by checked_at desc`,
  );
  return rows.map((r) => {
    const d = (typeof r.details === 'string' ? JSON.parse(r.details) : (r.details ?? {})) as Record<string, unknown>;
    const age = Number(r.age);
    const health: InstanceView['health'] =
      r.status === 'down'
        ? d.recovered_by
          ? 'lost'
          : 'stopped'
        : age > (3 * BEAT_MS) / 1000
          ? 'lost'
          : d.draining
            ? 'draining'
            : r.status === 'degraded'
              ? 'degraded'
              : 'ok';
    return {
      id: r.connection,
      host: String(d.host ?? ''),
      pid: Number(d.pid ?? 0),
      version: String(d.version ?? ''),
      health,
      startedAt: String(d.started_at ?? ''),
      lastSeenAt: new Date(r.checked_at as string).toISOString(),
      secondsSinceBeat: Math.round(age),
      activeJobs: Number(d.active_jobs ?? 0),
      concurrency: Number(d.concurrency ?? 0),
      self: r.connection === selfId,
    };
  });
}
