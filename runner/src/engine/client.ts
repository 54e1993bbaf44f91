/** The HTTP client of one connection's run: TLS policy, retries, error rules and the spec's rate budgets. */
import { createHash } from 'node:crypto';
import { RoutiqError } from '../errors/registry.ts';
import { credentialFingerprint } from './breaker.ts';
import { type Bindings, renderString } from './expr.ts';
import { HttpClient, type HttpObserver } from './http.ts';
import { type Limiter, limiterFor } from './ratelimit.ts';
import { pgLimiterFor } from './ratelimit-pg.ts';
import type { Session } from './session.ts';

export interface RequestCounters {
  requests: number;
  rateLimited: number;
}

/** What the client needs of a session (the workbench reads without a database: in-process budgets then). */
export type ClientSession = Pick<Session, 'spec' | 'config' | 'conn' | 'org' | 'log' | 'secrets' | 'bindings'> & {
  db?: Session['db'] | undefined;
};

export async function createClient(
  session: ClientSession,
  counters: RequestCounters,
  observer?: HttpObserver,
): Promise<HttpClient> {
  const { spec, config, conn, org, log } = session;
  const b = session.bindings('connection');
  // Budget keys declared as templates (e.g. a group of connections sharing one Cliniko user) are rendered once.
  // Budget keys often are credentials (a Cliniko key): only a hash is used, in memory and in rate_limit_budgets.
  const budgets: Array<{ id: string; limit: number; windowMs: number; re: RegExp | undefined }> = [];
  for (const bd of spec.rate_limits?.budgets ?? []) {
    const scope = bd.scope;
    const key =
      scope === 'global'
        ? spec.name
        : scope === 'connection'
          ? `${org.id}/${conn.name}`
          : bd.key
            ? `${spec.name}:${fingerprint(await renderString(bd.key, b))}`
            : `${spec.name}:${credentialFingerprint(session.secrets)}`;
    budgets.push({
      id: `${spec.name}:${bd.name}:${key}`,
      limit: await renderNumber(bd.requests, b, `rate_limits.budgets[${bd.name}].requests`),
      windowMs: bd.per_seconds * 1000,
      re: bd.match?.path ? new RegExp(bd.match.path) : undefined,
    });
  }
  const dw = spec.rate_limits?.default_wait_ms;
  const defaultWaitMs = dw === undefined ? undefined : await renderNumber(dw, b, 'rate_limits.default_wait_ms');
  const minTls = conn.minTlsVersion ?? config.http.minTlsVersion;
  if (minTls !== config.http.minTlsVersion)
    log.warn({ min_tls_version: minTls }, 'TLS minimum lowered for this connection');
  if (conn.allowInsecureHttp) log.warn('plain http to non-loopback hosts is allowed for this connection');

  const db = session.db;
  const shared = db?.kind === 'postgres' && config.runner.sharedRateLimits;
  // Budgets are shared through PostgreSQL between processes on a server; in-process on the embedded database.
  const limiter = (id: string, limit: number, windowMs: number): Limiter =>
    shared && db ? pgLimiterFor(db, id, limit, windowMs) : limiterFor(id, limit, windowMs);
  return new HttpClient({
    minTlsVersion: minTls,
    allowInsecureHttp: conn.allowInsecureHttp,
    rules: spec.errors ?? [],
    ruleBindings: session.bindings('errors'),
    signals: {
      retryAfterHeader: spec.rate_limits?.retry_after_header,
      resetHeader: spec.rate_limits?.reset_header,
      defaultWaitMs,
    },
    retry: {
      maxRetries: spec.retry?.max_retries ?? config.runner.maxRetries,
      baseDelayMs: spec.retry?.base_delay_ms ?? 500,
      maxDelayMs: spec.retry?.max_delay_ms ?? 60_000,
    },
    deadline: Date.now() + config.runner.deadlineSeconds * 1000,
    retryWindowMs: config.runner.retryWindowSeconds * 1000,
    limitersFor: (p) => budgets.filter(({ re }) => !re || re.test(p)).map((x) => limiter(x.id, x.limit, x.windowMs)),
    onRequest: ({ status, failure }) => {
      counters.requests++;
      if (status === 429 || failure === 'rate_limited') counters.rateLimited++;
    },
    log,
    observer,
  });
}

/** The hash a budget key template's value is kept as (never the value: it is often a credential). */
export function fingerprint(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

async function renderNumber(v: number | string, b: Bindings, where: string): Promise<number> {
  const n = typeof v === 'number' ? v : Number(await renderString(v, b));
  if (!Number.isFinite(n) || n < 0) throw new RoutiqError('RQ1007', `${where} renders to "${String(n)}", not a number`);
  return n;
}
