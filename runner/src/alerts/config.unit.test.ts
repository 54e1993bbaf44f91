import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { lintConfigText } from '../lint/index.ts';
import { resolveReference, subject } from './notify.ts';

/** An organization's `alerts:` block is validated with the rest of the file: defaults, channels, no literal URL. */
function load(alerts: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'routiq-alerts-'));
  const file = path.join(dir, 'c.yaml');
  writeFileSync(file, `organizations:\n  - id: org_1\n    name: Clinic\n    alerts:\n${alerts}`);
  return { run: () => loadConfig({ file, cwd: dir, env: {} }), file };
}

function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('did not throw');
}

describe('alerts configuration', () => {
  it('fills defaults: every rule, 60 min lag, 10 dead letters, 3 failed runs, 5 rejections, a 60 min window', () => {
    const c = load('      slack_webhook_url: ${SLACK_URL}\n').run();
    expect(c.organizations[0]?.alerts).toEqual({
      slackWebhookUrl: '${SLACK_URL}',
      rules: ['auth_failure', 'circuit_paused', 'lag', 'dlq_growth', 'run_failures', 'webhook_signature'],
      lagMinutes: 60,
      dlqGrowth: 10,
      runFailures: 3,
      webhookRejections: 5,
      windowMinutes: 60,
    });
  });

  it('takes email settings and a subset of rules', () => {
    const c = load(
      '      email: { smtp_url: "${SMTP}", from: a@example.com, to: [b@example.com] }\n      rules: [auth_failure, lag]\n      lag_minutes: 15\n',
    ).run();
    expect(c.organizations[0]?.alerts).toMatchObject({
      email: { smtpUrl: '${SMTP}', from: 'a@example.com', to: ['b@example.com'] },
      rules: ['auth_failure', 'lag'],
      lagMinutes: 15,
    });
  });

  it('refuses a block without a channel, an unknown rule, a bad address, pointing at the line', () => {
    expect(thrown(load('      lag_minutes: 5\n').run)).toMatchObject({
      code: 'RQ1003',
      message: expect.stringMatching(/c\.yaml:4:5: organizations\[0\]\.alerts needs a channel/),
    });
    const e = thrown(
      load(
        '      slack_webhook_url: ${S}\n      rules: [lag, typo]\n      email: { smtp_url: "${M}", from: nope, to: [] }\n',
      ).run,
    );
    expect(e.code).toBe('RQ1003');
    expect(e.message).toMatch(/alerts\.rules\.1 must be one of "auth_failure"/);
    expect(e.message).toMatch(/alerts\.email\.from/);
    expect(e.message).toMatch(/alerts\.email\.to/);
  });

  it('refuses a literal Slack URL or SMTP password without repeating it (load and lint alike)', () => {
    const text =
      '      slack_webhook_url: https://hooks.slack.com/services/T1/B2/SEKRIT\n      email: { smtp_url: "smtp://u:PASSWORD@h:587", from: a@example.com, to: [b@example.com] }\n';
    const l = load(text);
    const e = thrown(l.run);
    expect(e.message).toMatch(/alerts\.slack_webhook_url must be an \$\{ENV_VAR\} reference/);
    expect(e.message).toMatch(/alerts\.email\.smtp_url must be an \$\{ENV_VAR\} reference/);
    const findings = lintConfigText(`organizations:\n  - id: org_1\n    name: Clinic\n    alerts:\n${text}`, 'c.yaml');
    expect(findings.map((f) => f.message).join('\n')).toMatch(/slack_webhook_url must be an/);
    for (const out of [e.message, JSON.stringify(findings)]) {
      expect(out).not.toContain('SEKRIT');
      expect(out).not.toContain('PASSWORD');
    }
  });

  it('resolves channel references at sending time, naming a missing variable (never a value)', () => {
    expect(resolveReference('${HOOK}', 'alerts.slack_webhook_url', { HOOK: 'https://x' })).toBe('https://x');
    expect(() => resolveReference('${HOOK}', 'alerts.slack_webhook_url', {})).toThrow(
      /alerts\.slack_webhook_url references \$\{HOOK\}, which is not set/,
    );
    expect(() => resolveReference('${PATH}', 'x', { PATH: '/bin' })).toThrow(/system variable/);
    expect(
      subject({
        kind: 'resolved',
        rule: 'circuit_paused',
        organizationId: 'o',
        organizationName: 'Clinic',
        connection: 'cliniko',
        summary: '',
        at: '',
      }),
    ).toBe('[RESOLVED] Clinic / cliniko: connection paused by the circuit breaker');
  });
});
