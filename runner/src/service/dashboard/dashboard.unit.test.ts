import { describe, expect, it } from 'vitest';
import type { StatusView } from './data.ts';
import { classify } from './data.ts';
import { esc, liveSection, runsChart } from './render.ts';
import { csrfToken, issueSession, SESSION_SECONDS, sessionOf, sessionValid } from './session.ts';

describe('status page sessions', () => {
  const key = 'k'.repeat(64);
  it('accepts its own cookie until it expires; refuses a tampered one, another key, garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const s = issueSession(key, now);
    expect(sessionValid(key, s, now + 1000)).toBe(true);
    expect(sessionValid(key, s, now + SESSION_SECONDS * 1000 + 1)).toBe(false);
    const [v, exp, mac] = s.split('.');
    expect(sessionValid(key, `${v}.${Number(exp) + 3600}.${mac}`, now)).toBe(false);
    expect(sessionValid('other-key', s, now)).toBe(false); // the token was rotated: every session ends
    expect(sessionValid(undefined, s, now)).toBe(false);
    for (const bad of ['', 'v1', 'v1.1.', 'x.y.z', `${s}x`]) expect(sessionValid(key, bad, now)).toBe(false);
  });
  it("keeps a JWT user's organization in its session, ends it with the token, refuses a changed organization", () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const user = (org: string, expiresAt?: number) =>
      ({ kind: 'user', actor: { type: 'user', id: 'user_2a' }, organizationId: org, expiresAt }) as const;
    const s = issueSession(key, now, user('org.a/b', now + 90_000));
    expect(sessionOf(key, s, now)).toMatchObject({ kind: 'user', organizationId: 'org.a/b', actor: { id: 'user_2a' } });
    expect(sessionOf(key, s, now + 91_000)).toBeUndefined(); // the JWT expired: so did the session
    const long = issueSession(key, now, user('org_a'));
    expect(sessionValid(key, long, now + SESSION_SECONDS * 1000 - 1000)).toBe(true);
    const [v, exp, , sub, mac] = s.split('.');
    const other = Buffer.from('org_b').toString('base64url');
    expect(sessionOf(key, `${v}.${exp}.${other}.${sub}.${mac}`, now)).toBeUndefined();
    expect(sessionOf(key, issueSession(key, now), now)).toMatchObject({ kind: 'service_token' });
  });
  it('derives one CSRF token per session', () => {
    const a = issueSession(key, 0);
    const b = issueSession(key, 5000);
    expect(csrfToken(key, a)).toBe(csrfToken(key, a));
    expect(csrfToken(key, a)).not.toBe(csrfToken(key, b));
  });
});

describe('connection health at a glance', () => {
  const base = { enabled: true, breaker: null, lastRun: null, lagSeconds: 60, lagLimit: 3600 };
  const run = (status: string) =>
    ({ status, errorCode: status === 'failed' ? 'RQ2001' : null, error: 'boom' }) as never;
  const breaker = (status: string, paused: boolean) => ({
    status,
    paused,
    pausedUntil: '2026-01-01T00:00:00Z',
    lastErrorCode: 'RQ3003',
    lastError: 'HTTP 401',
  });
  it.each([
    ['ok', base],
    ['lagging', { ...base, lagSeconds: 3601 }],
    ['lagging', { ...base, lagSeconds: null }],
    ['lagging', { ...base, lastRun: run('partial') }],
    ['failing', { ...base, lastRun: run('failed') }],
    ['failing', { ...base, breaker: breaker('down', true) }],
    ['paused', { ...base, breaker: breaker('paused', true) }],
    ['failing', { ...base, breaker: breaker('paused', false), lastRun: run('failed') }],
    ['paused', { ...base, enabled: false, lastRun: run('failed') }],
  ])('%s', (want, x) => {
    expect(classify(x).health).toBe(want);
  });
});

describe('rendering', () => {
  it('escapes everything it echoes', () => {
    expect(esc(`<script>alert("x")</script>&'`)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  });
  it('draws a chart with a text alternative and marks failed runs', () => {
    const svg = runsChart(
      [
        { startedAt: '2026-01-01T00:00:00Z', status: 'succeeded', records: 10, deadLetters: 0, streams: {} },
        { startedAt: '2026-01-01T00:05:00Z', status: 'failed', records: 0, deadLetters: 0, streams: {} },
      ],
      'Runs of x',
    );
    expect(svg).toContain('role="img" aria-label="Runs of x: 2 runs, 10 records, 1 failed, 0 dead letters"');
    expect(svg.match(/class="err"/g)).toHaveLength(1);
  });
  it('shows a running run with its progress, and escapes names from the config', () => {
    const started = new Date(Date.now() - 90_000).toISOString();
    const view: StatusView = {
      generatedAt: new Date().toISOString(),
      alerts: [],
      instances: [],
      organizations: [
        {
          id: 'org_1',
          name: 'Clinic <b>',
          connections: [
            {
              organizationId: 'org_1',
              connection: 'cliniko',
              connector: 'cliniko',
              enabled: true,
              health: 'ok',
              why: 'synced',
              lastSuccessAt: null,
              lagSeconds: null,
              lastRun: null,
              running: [
                {
                  id: 'r1',
                  status: 'running',
                  correlationId: 'c',
                  startedAt: started,
                  finishedAt: null,
                  durationMs: 45_000,
                  heartbeatAt: started,
                  host: 'web-1',
                  pid: 1,
                  fullRefresh: false,
                  specVersion: null,
                  requests: 12,
                  records: 3400,
                  written: 3000,
                  deadLetters: 0,
                  errorCode: null,
                  error: null,
                  stale: false,
                },
              ],
              runs: [],
              streams: [],
              failedRuns24h: 0,
              openDeadLetters: 0,
              latestDeadLetters: [],
              webhooks: { accepted: 0, rejected: 0, duplicate: 0 },
              rate: { requests: 0, rateLimited: 0, budgets: null },
              alerts: [],
            },
          ],
        },
      ],
    };
    const html = liveSection(view, 'csrf');
    expect(html).toContain(
      '<li data-run="r1"><progress aria-label="run in progress"></progress> 3,400 records, 12 requests, for 45 s on web-1</li>',
    );
    expect(html).toContain('Clinic &lt;b&gt;');
    expect(html).not.toContain('Clinic <b>');
  });
});
