/**
 * Evaluates every organization's alert rules (on a timer, and soon after a run or a rejected webhook), starts and
 * clears alerts in the shared state, and sends each start and each clear once to the organization's channels.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { safeMessage } from '../db/tx.ts';
import { type Notice, resolveReference, sendEmail, sendSlack } from './notify.ts';
import { evaluateRules } from './rules.ts';
import { activeAlerts, clearAlert, startAlert } from './state.ts';

export interface AlertMonitorOptions {
  db: Database;
  /** The current configuration (it can be reloaded). */
  config: () => RoutiqConfig;
  logger: Logger;
  env?: NodeJS.ProcessEnv | undefined;
  /** Where `routiq_alert_notifications_total` and `routiq_alerts_firing` go. */
  registry?: Registry | undefined;
}

export class AlertMonitor {
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private poked: NodeJS.Timeout | undefined;
  /** Alerts holding after the last evaluation; unknown (-1) until the first one (rows may be left from before). */
  private lastFiring = -1;
  private readonly sent: Counter<'channel' | 'kind' | 'outcome'> | undefined;
  private readonly firing: Gauge | undefined;

  constructor(private readonly o: AlertMonitorOptions) {
    if (o.registry) {
      this.sent = new Counter({
        name: 'routiq_alert_notifications_total',
        help: 'Alert notices sent, by channel (slack, email), kind (firing, resolved) and outcome (sent, failed).',
        labelNames: ['channel', 'kind', 'outcome'] as const,
        registers: [o.registry],
      });
      this.firing = new Gauge({
        name: 'routiq_alerts_firing',
        help: 'Alert conditions holding now, across organizations.',
        registers: [o.registry],
      });
    }
  }

  /** Evaluate now (one evaluation at a time per process; the shared state dedups across processes). */
  evaluate(): Promise<Notice[]> {
    const p = this.chain.then(() => this.run());
    this.chain = p.catch(() => undefined);
    return p;
  }

  start(intervalMs = 60_000): void {
    this.timer = setInterval(() => this.evaluateLogged(), intervalMs);
    this.timer.unref();
  }

  /** Something happened (a run finished, a webhook was rejected): evaluate shortly, once for a burst. */
  poke(delayMs = 250): void {
    if (this.poked) return;
    this.poked = setTimeout(() => {
      this.poked = undefined;
      this.evaluateLogged();
    }, delayMs);
    this.poked.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.poked);
    this.poked = undefined;
    await this.chain;
  }

  private evaluateLogged(): void {
    this.evaluate().catch((err) =>
      this.o.logger.error({ err: { message: safeMessage(err) } }, 'alert evaluation failed'),
    );
  }

  private async run(): Promise<Notice[]> {
    const orgs = this.o.config().organizations;
    // Nothing configured and nothing left holding (the usual case without alerts): no queries at all.
    if (this.lastFiring === 0 && !orgs.some((x) => x.alerts)) return [];
    const notices: Notice[] = [];
    const evaluated = new Set<string>();
    for (const org of orgs) {
      if (!org.alerts) continue;
      for (const c of await evaluateRules(this.o.db, org)) {
        const key = { rule: c.rule, organizationId: org.id, connection: c.connection };
        evaluated.add(`${c.rule}|${org.id}|${c.connection}`);
        const changed = c.holds
          ? await startAlert(this.o.db, key, c.summary)
          : await clearAlert(this.o.db, key, c.summary);
        if (!changed) continue;
        const n: Notice = {
          kind: c.holds ? 'firing' : 'resolved',
          rule: c.rule,
          organizationId: org.id,
          organizationName: org.name,
          connection: c.connection,
          summary: c.summary,
          at: new Date().toISOString(),
        };
        this.o.logger.warn({ org: org.id, connection: c.connection, rule: c.rule, kind: n.kind }, n.summary);
        await this.deliver(org, n);
        notices.push(n);
      }
    }
    // A rule switched off, a connection or an organization's alerts removed from the config: the alert ends quietly
    // (nobody is told it recovered; nothing watches it any more).
    let firing = 0;
    for (const a of await activeAlerts(this.o.db)) {
      if (evaluated.has(`${a.rule}|${a.organizationId}|${a.connection}`)) firing++;
      else
        await clearAlert(
          this.o.db,
          { rule: a.rule, organizationId: a.organizationId, connection: a.connection },
          'no longer watched',
        );
    }
    this.firing?.set(firing);
    this.lastFiring = firing;
    return notices;
  }

  /** Each channel on its own: one failing does not keep the other from sending. Failures are logged and counted. */
  private async deliver(org: OrganizationConfig, n: Notice): Promise<void> {
    const a = org.alerts;
    if (!a) return;
    const env = this.o.env ?? process.env;
    const jobs: Array<[string, () => Promise<void>]> = [];
    const slack = a.slackWebhookUrl;
    if (slack)
      jobs.push([
        'slack',
        () => sendSlack(resolveReference(slack, `organizations[${org.id}].alerts.slack_webhook_url`, env), n),
      ]);
    const email = a.email;
    if (email)
      jobs.push([
        'email',
        () =>
          sendEmail(resolveReference(email.smtpUrl, `organizations[${org.id}].alerts.email.smtp_url`, env), email, n),
      ]);
    await Promise.all(
      jobs.map(async ([channel, send]) => {
        try {
          await send();
          this.sent?.inc({ channel, kind: n.kind, outcome: 'sent' });
        } catch (err) {
          this.sent?.inc({ channel, kind: n.kind, outcome: 'failed' });
          this.o.logger.error(
            { org: org.id, connection: n.connection, rule: n.rule, channel, err: { message: safeMessage(err) } },
            'alert notice could not be sent',
          );
        }
      }),
    );
  }
}
