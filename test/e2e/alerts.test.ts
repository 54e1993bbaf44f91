import { type ChatwootSim, startChatwoot } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { type Mail, type Receiver, startSlackReceiver, startSmtpSink } from '../helpers/receivers.ts';
import { post, type RunningService, startService, until } from './serve-harness.ts';

/**
 * Issue #23, "Must show": alerts through real channels. `routiq serve` syncs a Chatwoot connection whose API token
 * is wrong: the run fails with RQ3003, the breaker marks the connection down, and the organization's alert rules
 * send exactly one Slack message (a local receiver of incoming-webhook posts) and one email (a local SMTP sink,
 * through nodemailer). Evaluating again while it still fails sends nothing more. After the secret is fixed the
 * next sync succeeds and exactly one recovery notice goes to each channel.
 */
const TOKEN = 'svc-token-alerts';
const CW = { account: 31, token: 'tok-alerts-right', secret: 'whsec-alerts' };
const ORG = 'org_alerts';
const kinds = await backends();

describe.each(kinds)('alerts to Slack and email (%s)', (kind) => {
  let cw: ChatwootSim;
  let slack: Receiver<{ text: string }>;
  let smtp: Receiver<Mail>;
  let svc: RunningService;
  const env: NodeJS.ProcessEnv = { CW_TOKEN: 'tok-alerts-WRONG', CW_SECRET: CW.secret };
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    cw = await startChatwoot({
      accounts: [{ accountId: CW.account, token: CW.token, webhookSecret: CW.secret }],
      seed: 5,
      scale: 1,
    });
    slack = await startSlackReceiver();
    smtp = await startSmtpSink();
    env.ALERT_SLACK_URL = slack.url;
    env.ALERT_SMTP_URL = smtp.url;
    const o = org(ORG, [
      {
        connector: 'chatwoot',
        config: { base_url: cw.url, account_id: CW.account },
        secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
        streams: ['contacts'],
      },
    ]);
    o.alerts = {
      slackWebhookUrl: '${ALERT_SLACK_URL}',
      email: { smtpUrl: '${ALERT_SMTP_URL}', from: 'routiq@example.test', to: ['ops@example.test'] },
      rules: ['auth_failure', 'circuit_paused', 'lag', 'dlq_growth', 'run_failures', 'webhook_signature'],
      lagMinutes: 60,
      dlqGrowth: 10,
      runFailures: 3,
      webhookRejections: 5,
      windowMinutes: 60,
    };
    svc = await startService(kind, testConfig(CONNECTORS_DIR, [o]), env, {
      token: TOKEN,
      pollingIntervalSeconds: 0.5,
    });
  });
  afterAll(async () => {
    await svc?.close();
    await cw?.close();
    await slack?.close();
    await smtp?.close();
  });

  const lastRun = () =>
    svc.db.query<{ id: string; status: string; error_code: string | null }>(
      "select id::text as id, status, error_code from sync_runs where organization_id = ? and status <> 'running' order by started_at desc limit 1",
      [ORG],
    );

  async function syncAndWait(
    after: string | undefined,
  ): Promise<{ id: string; status: string; error_code: string | null }> {
    const res = await post(`${svc.url}/api/syncs`, JSON.stringify({ organization_id: ORG }), auth);
    expect(res.status).toBe(202);
    return until(
      'the sync run to finish',
      async () => {
        const r = (await lastRun())[0];
        return r && r.id !== after ? r : undefined;
      },
      60_000,
    );
  }

  it('a forced auth failure sends exactly one Slack message and one email', async () => {
    const run = await syncAndWait(undefined);
    expect(run).toMatchObject({ status: 'failed', error_code: 'RQ3003' });
    const [posted] = await slack.waitFor(1);
    const [mailed] = await smtp.waitFor(1);
    expect(posted?.text).toContain('[ALERT] Org org_alerts / chatwoot: authentication failure');
    expect(mailed).toMatchObject({
      from: 'routiq@example.test',
      to: ['ops@example.test'],
      subject: '[ALERT] Org org_alerts / chatwoot: authentication failure',
    });
    expect(mailed?.data).toContain('RQ3003');
    // Still failing: further evaluations (every instance runs them) send nothing new.
    expect(await svc.service.alerts.evaluate()).toEqual([]);
    expect(await svc.service.alerts.evaluate()).toEqual([]);
    expect(slack.received).toHaveLength(1);
    expect(smtp.received).toHaveLength(1);
    const firing = await svc.db.query<{ component: string; status: string }>(
      "select component, status from service_health where component like 'alert:%' and status = 'down'",
    );
    expect(firing).toEqual([{ component: 'alert:auth_failure', status: 'down' }]);
  });

  it('after the secret is fixed, exactly one recovery notice per channel', async () => {
    const failed = (await lastRun())[0];
    env.CW_TOKEN = CW.token;
    const run = await syncAndWait(failed?.id);
    expect(run.status).toBe('succeeded');
    const posts = await slack.waitFor(2);
    const mails = await smtp.waitFor(2);
    expect(posts[1]?.text).toContain('[RESOLVED] Org org_alerts / chatwoot: authentication failure');
    expect(mails[1]?.subject).toBe('[RESOLVED] Org org_alerts / chatwoot: authentication failure');
    expect(await svc.service.alerts.evaluate()).toEqual([]);
    await syncAndWait(run.id);
    expect(await svc.service.alerts.evaluate()).toEqual([]);
    expect(slack.received).toHaveLength(2);
    expect(smtp.received).toHaveLength(2);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/routiq_alert_notifications_total\{channel="slack",kind="firing",outcome="sent"\} 1/);
    expect(metrics).toMatch(/routiq_alert_notifications_total\{channel="email",kind="resolved",outcome="sent"\} 1/);
    expect(metrics).toMatch(/routiq_alerts_firing 0/);
  });
});
