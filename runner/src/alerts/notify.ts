/**
 * Alert channels: Slack incoming webhooks (got) and email over SMTP (nodemailer). Channel URLs are ${ENV_VAR}
 * references in the config file, resolved at sending time, never logged.
 */
import got from 'got';
import nodemailer from 'nodemailer';
import { notASecretVariable } from '../config/environment.ts';
import type { AlertsConfig } from '../config/types.ts';
import { RoutiqError } from '../errors/registry.ts';

export interface Notice {
  kind: 'firing' | 'resolved';
  rule: string;
  organizationId: string;
  organizationName: string;
  connection: string;
  summary: string;
  at: string;
}

const RULE_TITLES: Record<string, string> = {
  auth_failure: 'authentication failure',
  circuit_paused: 'connection paused by the circuit breaker',
  lag: 'sync lag over the threshold',
  dlq_growth: 'dead letters growing',
  run_failures: 'repeated run failures',
  webhook_signature: 'webhook signature failures',
};

export function subject(n: Notice): string {
  const what = RULE_TITLES[n.rule] ?? n.rule;
  return `${n.kind === 'firing' ? '[ALERT]' : '[RESOLVED]'} ${n.organizationName} / ${n.connection}: ${what}`;
}

export function text(n: Notice): string {
  return `${subject(n)}\n${n.summary}\norganization ${n.organizationId}, connection ${n.connection}, rule ${n.rule}, at ${n.at}`;
}

/** `${NAME}` → the variable's value; a clear error naming the variable (never the value) otherwise. */
export function resolveReference(ref: string, what: string, env: NodeJS.ProcessEnv): string {
  const m = /^\$\{([A-Z_][A-Z0-9_]*)\}$/.exec(ref);
  const name = m?.[1];
  if (!name) throw new RoutiqError('RQ1003', `${what} must be a \${ENV_VAR} reference`, { where: what });
  const why = notASecretVariable(name);
  if (why) throw new RoutiqError('RQ1003', `${what} references \${${name}}: ${why}`, { where: name });
  const v = env[name];
  if (!v) throw new RoutiqError('RQ1004', `${what} references \${${name}}, which is not set`, { where: name });
  return v;
}

export async function sendSlack(url: string, n: Notice): Promise<void> {
  // Retried only where nothing can have been posted (refused, throttled, 5xx): a Slack post is not idempotent.
  await got.post(url, {
    json: { text: text(n) },
    timeout: { request: 10_000 },
    retry: {
      limit: 2,
      methods: ['POST'],
      statusCodes: [429, 500, 502, 503, 504],
      errorCodes: ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'],
    },
  });
}

export async function sendEmail(smtpUrl: string, email: NonNullable<AlertsConfig['email']>, n: Notice): Promise<void> {
  const transport = nodemailer.createTransport(smtpUrl);
  try {
    await transport.sendMail({ from: email.from, to: email.to, subject: subject(n), text: text(n) });
  } finally {
    transport.close();
  }
}
