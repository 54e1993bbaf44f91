import { createHash } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { RoutiqError } from '../errors/registry.ts';

/**
 * Circuit breaker per connection, kept in service_health so every process sees it: after `threshold`
 * consecutive failed runs the connection is paused (its runs are skipped with RQ3008) for a cool-down that
 * doubles with each further failure (max 6 h); other connections keep running. A success closes it.
 * An authentication failure pauses at once: retrying a dead credential helps nobody (and can lock the account).
 */
export interface BreakerPolicy {
  threshold: number;
  cooldownSeconds: number;
}

const MAX_COOLDOWN_MS = 6 * 3600_000;
/** Auth failures wait for new credentials, checked again after a day at the latest. */
const AUTH_PAUSE_MS = 24 * 3600_000;

export function credentialFingerprint(secrets: Record<string, string>): string {
  return createHash('sha256')
    .update(JSON.stringify(Object.entries(secrets).sort()))
    .digest('hex')
    .slice(0, 16);
}

interface Health {
  status: string;
  details: {
    consecutive_failures?: number;
    paused_until?: string;
    last_error?: string;
    last_error_code?: string;
    /** For auth pauses: which credentials failed (a hash); new credentials close the circuit at once. */
    credential?: string;
  };
}

async function read(db: Database, org: string, conn: string): Promise<Health | undefined> {
  const rows = await db.query<{ status: string; details: Health['details'] | string }>(
    "select status, details from service_health where component = 'connection' and organization_id = ? and connection = ?",
    [org, conn],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { status: r.status, details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details };
}

/** Throws RQ3008 while the connection's circuit is open. */
export async function assertCircuitClosed(
  db: Database,
  org: string,
  conn: string,
  credential: string,
  now = Date.now(),
): Promise<void> {
  const h = await read(db, org, conn);
  const until = h?.details.paused_until ? Date.parse(h.details.paused_until) : 0;
  if (h?.status === 'down' && h.details.credential !== credential) return; // the secret was fixed
  if (h && (h.status === 'paused' || h.status === 'down') && until > now) {
    throw new RoutiqError(
      'RQ3008',
      `connection ${org}/${conn} is paused until ${new Date(until).toISOString()} after ${h.details.consecutive_failures ?? '?'} failed run(s): ${h.details.last_error_code ?? ''} ${h.details.last_error ?? ''}`.trim(),
    );
  }
}

export async function recordRunOutcome(
  db: Database,
  org: string,
  conn: string,
  outcome: { ok: boolean; errorCode?: string | undefined; error?: string | undefined; credential: string },
  policy: BreakerPolicy,
  now = Date.now(),
): Promise<{ status: string; pausedUntil?: string }> {
  const prev = await read(db, org, conn);
  let status = 'ok';
  const details: Health['details'] = {};
  if (!outcome.ok) {
    const failures = (prev?.details.consecutive_failures ?? 0) + 1;
    details.consecutive_failures = failures;
    if (outcome.error) details.last_error = outcome.error.slice(0, 500);
    if (outcome.errorCode) details.last_error_code = outcome.errorCode;
    const auth = outcome.errorCode === 'RQ3003';
    if (auth) details.credential = outcome.credential;
    if (auth || failures >= policy.threshold) {
      const ms = auth
        ? AUTH_PAUSE_MS
        : Math.min(MAX_COOLDOWN_MS, policy.cooldownSeconds * 1000 * 2 ** (failures - policy.threshold));
      details.paused_until = new Date(now + ms).toISOString();
      status = auth ? 'down' : 'paused';
    } else {
      status = 'degraded';
    }
  }
  await db.query(
    `insert into service_health (component, organization_id, connection, status, details, checked_at) values ('connection', ?, ?, ?, ?::jsonb, now())
     on conflict (component, organization_id, connection) do update set status = excluded.status, details = excluded.details, checked_at = now()`,
    [org, conn, status, JSON.stringify(details)],
  );
  return { status, ...(details.paused_until ? { pausedUntil: details.paused_until } : {}) };
}
