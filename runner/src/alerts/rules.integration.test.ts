import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { type Receiver, startSlackReceiver } from '../../../test/helpers/receivers.ts';
import type { AlertsConfig, RoutiqConfig } from '../config/types.ts';
import { insertDeadLetter } from '../engine/bookkeeping.ts';
import { recordRunOutcome } from '../engine/breaker.ts';
import { recordRejected } from '../service/inbox.ts';
import { AlertMonitor } from './monitor.ts';
import { evaluateRules } from './rules.ts';
import { activeAlerts } from './state.ts';

/**
 * Every alert rule against the rows the engine and the service write (breaker, runs, dead letters, rejected
 * webhooks), on both databases; and two instances evaluating at once send one notice between them.
 */
const kinds = await backends();
const ORG = 'org_rules';
const ALERTS: AlertsConfig = {
  slackWebhookUrl: '${RULES_SLACK}',
  rules: ['auth_failure', 'circuit_paused', 'lag', 'dlq_growth', 'run_failures', 'webhook_signature'],
  lagMinutes: 30,
  dlqGrowth: 3,
  runFailures: 2,
  webhookRejections: 2,
  windowMinutes: 60,
};
const POLICY = { threshold: 2, cooldownSeconds: 300 };

describe.each(kinds)('alert rules (%s)', (kind) => {
  let t: TestDb;
  let slack: Receiver<{ text: string }>;
  let config: RoutiqConfig;
  const o = org(ORG, [{ connector: 'cliniko' }, { connector: 'chatwoot' }]);
  o.alerts = ALERTS;

  beforeAll(async () => {
    t = await openTestDb(kind);
    slack = await startSlackReceiver();
    config = testConfig('connectors', [o]);
    await t.db.query("insert into organizations (id, name) values (?, 'Rules clinic')", [ORG]);
  });
  afterAll(async () => {
    await slack?.close();
    await t?.drop();
  });
  beforeEach(async () => {
    for (const table of ['sync_runs', 'sync_errors', 'webhook_inbox', 'service_health'])
      await t.db.query(`delete from ${table}`);
  });

  const holding = async () =>
    (await evaluateRules(t.db, o))
      .filter((c) => c.holds)
      .map((c) => `${c.connection}:${c.rule}`)
      .sort();
  const run = (connection: string, status: string, minutesAgo: number) =>
    t.db.query(
      `insert into sync_runs (organization_id, connector, connection, correlation_id, status, started_at, finished_at)
       values (?, ?, ?, 'c', ?, now() - ?::int * interval '1 minute', now() - ?::int * interval '1 minute')`,
      [ORG, connection, connection, status, minutesAgo, minutesAgo],
    );

  it('nothing holds for connections that are fine', async () => {
    await run('cliniko', 'succeeded', 1);
    expect(await holding()).toEqual([]);
  });

  it('auth_failure and circuit_paused follow the circuit breaker', async () => {
    const fail = { ok: false, errorCode: 'RQ3003', error: 'HTTP 401', credential: 'a' };
    await recordRunOutcome(t.db, ORG, 'cliniko', fail, POLICY);
    const other = { ok: false, errorCode: 'RQ2001', error: 'HTTP 503', credential: 'a' };
    await recordRunOutcome(t.db, ORG, 'chatwoot', other, POLICY);
    expect(await holding()).toEqual(['cliniko:auth_failure']);
    await recordRunOutcome(t.db, ORG, 'chatwoot', other, POLICY);
    expect(await holding()).toEqual(['chatwoot:circuit_paused', 'cliniko:auth_failure']);
    await recordRunOutcome(t.db, ORG, 'cliniko', { ok: true, credential: 'b' }, POLICY);
    expect(await holding()).toEqual(['chatwoot:circuit_paused']);
  });

  it('lag: an old last success, or no success long after the first run', async () => {
    await run('cliniko', 'succeeded', 45);
    await run('cliniko', 'failed', 5);
    await run('chatwoot', 'failed', 40);
    await run('chatwoot', 'partial', 2);
    expect(await holding()).toEqual(['chatwoot:lag', 'cliniko:lag']);
    await run('cliniko', 'succeeded', 0);
    expect(await holding()).toEqual(['chatwoot:lag']);
  });

  it('run_failures: the last N finished runs all failed', async () => {
    await run('cliniko', 'succeeded', 3);
    await run('cliniko', 'failed', 2);
    expect(await holding()).toEqual([]);
    await run('cliniko', 'failed', 1);
    expect(await holding()).toEqual(['cliniko:run_failures']);
  });

  it('dlq_growth: new open dead letters within the window', async () => {
    const letter = (key: string) =>
      insertDeadLetter(t.db.query.bind(t.db), {
        organizationId: ORG,
        connector: 'cliniko',
        connection: 'cliniko',
        stream: 'patients',
        runId: null,
        errorClass: 'validation',
        errorCode: 'RQ5002',
        message: 'bad',
        details: {},
        recordKey: key,
        payload: { id: key },
        specVersion: '1',
      });
    await letter('1');
    await letter('2');
    expect(await holding()).toEqual([]);
    await letter('3');
    expect(await holding()).toEqual(['cliniko:dlq_growth']);
    await t.db.query("update sync_errors set resolved = true where record_key = '1'");
    expect(await holding()).toEqual([]);
  });

  it('webhook_signature: rejected signatures or tokens within the window (not other refusals)', async () => {
    const reject = (reason: string) =>
      recordRejected(t.db, { organizationId: ORG, connection: 'chatwoot', headers: {}, reason });
    await reject('webhook rejected: signature does not match');
    await reject('HTTP 413: body too large');
    expect(await holding()).toEqual([]);
    await reject('webhook rejected: timestamp outside the window');
    expect(await holding()).toEqual(['chatwoot:webhook_signature']);
  });

  it('two instances evaluating at once send one notice between them, and one recovery', async () => {
    const env = { RULES_SLACK: slack.url };
    const monitors = [1, 2].map(() => new AlertMonitor({ db: t.db, config: () => config, logger: silentLogger, env }));
    const before = slack.received.length;
    await recordRunOutcome(t.db, ORG, 'cliniko', { ok: false, errorCode: 'RQ3003', credential: 'a' }, POLICY);
    const fired = (await Promise.all(monitors.map((m) => m.evaluate()))).flat();
    expect(fired.map((n) => `${n.kind}:${n.rule}`)).toEqual(['firing:auth_failure']);
    await recordRunOutcome(t.db, ORG, 'cliniko', { ok: true, credential: 'b' }, POLICY);
    const cleared = (await Promise.all(monitors.map((m) => m.evaluate()))).flat();
    expect(cleared.map((n) => `${n.kind}:${n.rule}`)).toEqual(['resolved:auth_failure']);
    await slack.waitFor(before + 2);
    expect(slack.received.slice(before).map((m) => m.text.split('\n')[0])).toEqual([
      '[ALERT] Org org_rules / cliniko: authentication failure',
      '[RESOLVED] Org org_rules / cliniko: authentication failure',
    ]);
  });

  it('an alert whose rule is switched off ends quietly (no recovery notice, not counted as firing)', async () => {
    const env = { RULES_SLACK: slack.url };
    let current = config;
    const m = new AlertMonitor({ db: t.db, config: () => current, logger: silentLogger, env });
    await recordRunOutcome(t.db, ORG, 'cliniko', { ok: false, errorCode: 'RQ3003', credential: 'a' }, POLICY);
    expect((await m.evaluate()).map((n) => n.kind)).toEqual(['firing']);
    expect(await activeAlerts(t.db)).toHaveLength(1);
    const before = slack.received.length;
    current = testConfig('connectors', [{ ...o, alerts: { ...ALERTS, rules: ['lag'] } }]);
    expect(await m.evaluate()).toEqual([]);
    expect(await activeAlerts(t.db)).toEqual([]);
    expect(slack.received.length).toBe(before);
  });
});
