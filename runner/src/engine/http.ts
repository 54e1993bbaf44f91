import http from 'node:http';
import https from 'node:https';
import got, { type Method } from 'got';
import pRetry from 'p-retry';
import type { ErrorAction, ErrorRule } from '../spec/types.ts';
import { type Bindings, evaluate } from './expr.ts';
import type { Limiter } from './ratelimit.ts';

export type FailureClass = 'transient' | 'rate_limited' | 'auth' | 'permanent';

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  searchParams: Array<[string, string]>;
  body?: unknown;
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bodyText: string;
  body: unknown;
  url: string;
}

const FAILURE_CODES: Record<FailureClass, string> = {
  transient: 'RQ3001',
  rate_limited: 'RQ3002',
  auth: 'RQ3003',
  permanent: 'RQ3004',
};

export class HttpFailure extends Error {
  readonly code: string;
  constructor(
    readonly failureClass: FailureClass,
    message: string,
    readonly status?: number,
    readonly waitMs?: number,
    code?: string,
    readonly responseBody?: string,
  ) {
    super(message);
    this.name = 'HttpFailure';
    this.code = code ?? FAILURE_CODES[failureClass];
  }
}

export interface RateLimitSignals {
  retryAfterHeader?: string | undefined;
  resetHeader?: { name: string; format: 'epoch_seconds' | 'seconds' | 'http_date' } | undefined;
  defaultWaitMs?: number | undefined;
}

export interface HttpClientOptions {
  minTlsVersion: 'TLSv1.2' | 'TLSv1.3';
  allowInsecureHttp: boolean;
  rules: ErrorRule[];
  /** The `errors` bindings of the connection (spec/bindings.ts); $response is added per response. */
  ruleBindings?: Bindings;
  signals: RateLimitSignals;
  retry: { maxRetries: number; baseDelayMs: number; maxDelayMs: number };
  /** Epoch ms after which no retry starts (the run deadline). */
  deadline: number;
  /** How long one request keeps being retried through an outage (ms). */
  retryWindowMs: number;
  /** Extra trusted CA certificates (PEM), e.g. a self-hosted Chatwoot behind a private CA. */
  ca?: string | undefined;
  /** Injectable clock and sleep (tests ride out a simulated 15-minute outage in virtual time). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Limiters to pass for a request path (declared budgets). */
  limitersFor: (path: string) => Limiter[];
  onRequest?: (info: {
    url: string;
    status: number | undefined;
    ms: number;
    failure?: FailureClass | undefined;
  }) => void;
  log?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Watches traffic without changing it (the connector workbench: live progress, recording). */
  observer?: HttpObserver | undefined;
}

/** One request as sent and its response as received (before classification). */
export interface HttpExchange {
  request: HttpRequest;
  /** The URL as sent, query parameters included. */
  sentUrl: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bodyText: string;
  ms: number;
}

export interface HttpObserver {
  onExchange?(x: HttpExchange): void;
  /** A failed attempt about to be retried after `waitMs` (rate-limited waits included). */
  onRetry?(x: {
    url: string;
    attempt: number;
    failure: FailureClass;
    status: number | undefined;
    waitMs: number;
  }): void;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 32 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 32 }),
};

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

export function isLoopback(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}

/** Plain http is refused unless the host is loopback or the connection explicitly allows it. */
export function assertTransportAllowed(url: URL, allowInsecureHttp: boolean): void {
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:')
    throw new HttpFailure(
      'permanent',
      `unsupported protocol ${url.protocol} in ${url.origin}`,
      undefined,
      undefined,
      'RQ3005',
    );
  if (!isLoopback(url.hostname) && !allowInsecureHttp) {
    throw new HttpFailure(
      'permanent',
      `plain http to ${url.host} is refused; use https or set allow_insecure_http on the connection`,
      undefined,
      undefined,
      'RQ3005',
    );
  }
}

export class HttpClient {
  constructor(private readonly o: HttpClientOptions) {}

  /** One logical request: paced by the budgets, retried with full-jitter backoff, honoring server wait hints. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    assertTransportAllowed(url, this.o.allowInsecureHttp);
    const now = this.o.now ?? Date.now;
    const sleep = this.o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const giveUpAt = Math.min(this.o.deadline, now() + this.o.retryWindowMs);
    let attempt = 0;
    const run = async (): Promise<HttpResponse> => {
      attempt++;
      for (const l of this.o.limitersFor(url.pathname)) await l.acquire();
      return this.once(req);
    };
    return pRetry(run, {
      retries: this.o.retry.maxRetries,
      // Our own delays (full jitter + server hints) are awaited in onFailedAttempt; the give-up time is ours too.
      minTimeout: 0,
      maxTimeout: 0,
      randomize: false,
      shouldConsumeRetry: ({ error }) => !(error instanceof HttpFailure && error.failureClass === 'rate_limited'),
      shouldRetry: ({ error }) =>
        error instanceof HttpFailure &&
        (error.failureClass === 'transient' || error.failureClass === 'rate_limited') &&
        now() < giveUpAt,
      onFailedAttempt: async ({ error }) => {
        if (!(error instanceof HttpFailure)) return;
        if (error.failureClass !== 'transient' && error.failureClass !== 'rate_limited') return;
        let wait: number;
        if (error.failureClass === 'rate_limited') {
          wait = error.waitMs ?? this.o.signals.defaultWaitMs ?? 1000 * 2 ** Math.min(attempt, 6);
          // Everyone on these budgets waits, not only this request.
          for (const l of this.o.limitersFor(url.pathname)) l.pauseUntil(now() + wait);
        } else {
          // Full jitter: uniformly random up to the exponential cap.
          const cap = Math.min(this.o.retry.maxDelayMs, this.o.retry.baseDelayMs * 2 ** (attempt - 1));
          wait = Math.random() * cap;
        }
        wait = Math.max(0, Math.min(wait, giveUpAt - now()));
        this.o.log?.debug(
          {
            url: redactUrl(req.url),
            attempt,
            failure: error.failureClass,
            status: error.status,
            waitMs: Math.round(wait),
          },
          'retrying request',
        );
        this.o.observer?.onRetry?.({
          url: redactUrl(req.url),
          attempt,
          failure: error.failureClass,
          status: error.status,
          waitMs: Math.round(wait),
        });
        await sleep(wait);
      },
    });
  }

  private async once(req: HttpRequest): Promise<HttpResponse> {
    const started = Date.now();
    let status: number | undefined;
    try {
      // Params are appended to the URL's own query: a followed next-link keeps its parameters.
      const target = new URL(req.url);
      for (const [k, v] of req.searchParams) target.searchParams.append(k, v);
      const res = await got(target, {
        method: req.method as Method,
        headers: req.headers,
        ...(req.body !== undefined ? { json: req.body } : {}),
        timeout: { request: req.timeoutMs },
        throwHttpErrors: false,
        followRedirect: false,
        retry: { limit: 0 },
        https: { minVersion: this.o.minTlsVersion, ...(this.o.ca ? { certificateAuthority: this.o.ca } : {}) },
        agent: agents,
        responseType: 'text',
      });
      status = res.statusCode;
      this.o.observer?.onExchange?.({
        request: req,
        sentUrl: target.toString(),
        status,
        headers: res.headers,
        bodyText: res.body,
        ms: Date.now() - started,
      });
      const response: HttpResponse = {
        status,
        headers: res.headers,
        bodyText: res.body,
        body: undefined,
        url: res.url,
      };
      const ctype = String(res.headers['content-type'] ?? '');
      let parsed: unknown;
      let parseError: string | undefined;
      if (res.body.length && (ctype.includes('json') || /^\s*[[{]/.test(res.body))) {
        try {
          parsed = JSON.parse(res.body);
        } catch (e) {
          parseError = (e as Error).message;
        }
      }
      response.body = parsed;
      const verdict = await this.classify(response, parseError);
      this.o.onRequest?.({ url: req.url, status, ms: Date.now() - started, failure: verdict.failure });
      if (verdict.failure) {
        throw new HttpFailure(
          verdict.failure,
          verdict.message,
          status,
          verdict.waitMs,
          verdict.code,
          res.body.slice(0, 2000),
        );
      }
      if (verdict.ignore) response.body = undefined;
      return response;
    } catch (err) {
      if (err instanceof HttpFailure) throw err;
      const e = err as NodeJS.ErrnoException & { name?: string };
      this.o.onRequest?.({ url: req.url, status, ms: Date.now() - started, failure: 'transient' });
      // TLS below the minimum, or a certificate we do not trust: retrying cannot help, a person must decide.
      if (/^ERR_SSL_|^ERR_TLS_|CERT|^EPROTO$|UNABLE_TO_VERIFY|SELF_SIGNED/.test(String(e.code ?? ''))) {
        throw new HttpFailure('permanent', `TLS: ${e.code}: ${e.message}`, undefined, undefined, 'RQ3005');
      }
      // Timeouts, resets, refused connections, truncated chunked bodies: all transient.
      throw new HttpFailure('transient', `${e.code ?? e.name ?? 'network error'}: ${e.message}`);
    }
  }

  private async classify(
    res: HttpResponse,
    parseError: string | undefined,
  ): Promise<{ failure?: FailureClass; message: string; waitMs?: number; code?: string; ignore?: boolean }> {
    let action: ErrorAction | undefined;
    let message: string | undefined;
    const b: Bindings = {
      ...this.o.ruleBindings,
      response: { status: res.status, headers: res.headers, body: res.body },
    };
    for (const rule of this.o.rules) {
      if (!(await ruleMatches(rule, res, b))) continue;
      action = rule.action;
      if (rule.message && res.body !== undefined) {
        const m = await evaluate(rule.message, res.body, b).catch(() => undefined);
        if (m !== undefined && m !== null) message = String(m);
      }
      break;
    }
    action ??= defaultAction(res.status);
    // Only failures are described: summarizing a successful page rewrote its whole body (a regex over every byte).
    const text = () => message ?? summarize(res);
    switch (action) {
      case 'success':
        if (parseError)
          return { failure: 'transient', message: `response body is not valid JSON (${parseError})`, code: 'RQ3006' };
        return { message: '' };
      case 'ignore':
        return { message: '', ignore: true };
      case 'rate_limited': {
        const waitMs = this.waitHint(res);
        return {
          failure: 'rate_limited',
          message: `rate limited (HTTP ${res.status}): ${text()}`,
          ...(waitMs !== undefined ? { waitMs } : {}),
        };
      }
      default:
        return { failure: action, message: `HTTP ${res.status}: ${text()}` };
    }
  }

  private waitHint(res: HttpResponse): number | undefined {
    const s = this.o.signals;
    const header = (name: string) => {
      const v = res.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    };
    if (s.resetHeader) {
      const v = header(s.resetHeader.name);
      if (v) {
        const ms =
          s.resetHeader.format === 'epoch_seconds'
            ? Number(v) * 1000 - Date.now()
            : s.resetHeader.format === 'seconds'
              ? Number(v) * 1000
              : Date.parse(v) - Date.now();
        if (Number.isFinite(ms)) return Math.max(ms, 0) + 50;
      }
    }
    const ra = header(s.retryAfterHeader ?? 'retry-after');
    if (ra) {
      const secs = Number(ra);
      const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(ra) - Date.now();
      if (Number.isFinite(ms)) return Math.max(ms, 0);
    }
    return undefined;
  }
}

async function ruleMatches(rule: ErrorRule, res: HttpResponse, b: Bindings): Promise<boolean> {
  if (rule.status !== undefined) {
    const st = rule.status;
    const ok = Array.isArray(st)
      ? st.includes(res.status)
      : typeof st === 'number'
        ? st === res.status
        : String(res.status)[0] === st[0];
    if (!ok) return false;
  }
  if (rule.body_contains !== undefined && !res.bodyText.includes(rule.body_contains)) return false;
  if (rule.body !== undefined) {
    if (res.body === undefined) return false;
    const v = await evaluate(rule.body, res.body, b).catch(() => undefined);
    if (!v) return false;
  }
  return true;
}

export function defaultAction(status: number): ErrorAction {
  if (status >= 200 && status < 300) return 'success';
  if (status === 429) return 'rate_limited';
  if (status >= 500 || status === 408) return 'transient';
  if (status === 401 || status === 403) return 'auth';
  return 'permanent';
}

function summarize(res: HttpResponse): string {
  const b = res.body as Record<string, unknown> | undefined;
  const msg = b && typeof b === 'object' ? (b.message ?? b.error ?? b.errors) : undefined;
  if (msg !== undefined) return typeof msg === 'string' ? msg : JSON.stringify(msg);
  return res.bodyText.replace(/\s+/g, ' ').slice(0, 200) || '(empty body)';
}

/** Never log credentials that some APIs take in the query string. */
export function redactUrl(u: string): string {
  return u.replace(/([?&](?:api_key|token|access_token|api_access_token|key)=)[^&]*/gi, '$1***');
}
