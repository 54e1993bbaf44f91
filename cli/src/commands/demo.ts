import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type ConnectionSummary,
  createLogger,
  type Database,
  DEFAULT_SETTINGS,
  forOrganization,
  loadConfig,
  migrate,
  openDatabase,
  type RoutiqConfig,
  Service,
  syncAll,
} from '@routiq/runner';
import { startSandbox } from '@routiq/sandbox';
import { startWebhookReceiver } from '../demo/receiver.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';
import { progressLine } from '../progress.ts';
import { formatSummaries, toJson } from './sync.ts';

const DEMO_ORGS = [
  { id: 'org_demo_bondi_physio', name: 'Bondi Physio (demo)', country: 'AU', tz: 'Australia/Sydney' },
  { id: 'org_demo_wellington_rehab', name: 'Wellington Rehab (demo)', country: 'NZ', tz: 'Pacific/Auckland' },
  { id: 'org_demo_3', name: 'Demo clinic 3', country: 'AU', tz: 'Australia/Brisbane' },
  { id: 'org_demo_4', name: 'Demo clinic 4', country: 'GB', tz: 'Europe/London' },
];

export interface DemoArgs {
  orgs: number;
  scale: number;
  json: boolean;
  dir: string;
  /** Keep running as `routiq serve` (webhooks, schedules, API) against the simulators until Ctrl-C. */
  serve?: boolean | undefined;
  port?: number | undefined;
}

/**
 * The README's main job: simulators + embedded database + migrations + demo organizations with all three
 * connectors, a full sync, changes at the sources (incl. pushed webhooks), an incremental sync, and a summary.
 */
export async function demoCommand(a: DemoArgs): Promise<number> {
  if (a.orgs < 1 || a.orgs > DEMO_ORGS.length) {
    err(`RQ6001 --orgs must be between 1 and ${DEMO_ORGS.length}`);
    return ExitCode.Usage;
  }
  const dir = path.resolve(a.dir);
  // The demo owns this directory: a fresh database every time, so the full sync really is a full sync.
  rmSync(path.join(dir, 'db'), { recursive: true, force: true });
  rmSync(path.join(dir, 'db.lock'), { force: true });
  mkdirSync(dir, { recursive: true });
  err('starting simulators (Chatwoot, Cliniko, ManyChat) on 127.0.0.1 …');
  const sandbox = await startSandbox({ seed: 1, scale: a.scale, orgs: a.orgs });
  const env: NodeJS.ProcessEnv = { ...process.env };
  const orgs = sandbox.tenants.map((t, i) => {
    const o = DEMO_ORGS[i]!;
    const p = `DEMO${i + 1}`;
    env[`${p}_CHATWOOT_TOKEN`] = t.chatwoot.token;
    env[`${p}_CHATWOOT_WEBHOOK_SECRET`] = t.chatwoot.webhookSecret;
    env[`${p}_CLINIKO_API_KEY`] = t.cliniko.apiKey;
    env[`${p}_MANYCHAT_API_KEY`] = t.manychat.token;
    env[`${p}_MANYCHAT_WEBHOOK_TOKEN`] = `demo-token-${i + 1}`;
    return `  - id: ${o.id}
    name: ${o.name}
    default_country: ${o.country}
    timezone: ${o.tz}
    connections:
      - connector: chatwoot
        config: { base_url: "${t.chatwoot.baseUrl}", account_id: ${t.chatwoot.accountId} }
        secrets: { api_token: "\${${p}_CHATWOOT_TOKEN}", webhook_secret: "\${${p}_CHATWOOT_WEBHOOK_SECRET}" }
      - connector: cliniko
        config: { base_url: "${t.cliniko.baseUrl}", contact_email: demo@routiq.example }
        secrets: { api_key: "\${${p}_CLINIKO_API_KEY}" }
      - connector: manychat
        config: { base_url: "${t.manychat.baseUrl}" }
        secrets: { api_key: "\${${p}_MANYCHAT_API_KEY}", webhook_token: "\${${p}_MANYCHAT_WEBHOOK_TOKEN}" }`;
  });
  const configFile = path.join(dir, 'routiq.yaml');
  writeFileSync(
    configFile,
    `# Written by \`routiq demo\`: the simulators' ports change every run.\ndatabase:\n  embedded_dir: ${path.join(dir, 'db')}\nlog:\n  level: ${process.env.ROUTIQ_LOG_LEVEL ?? 'warn'}\norganizations:\n${orgs.join('\n')}\n`,
  );
  const config = loadConfig({ file: configFile, env: { ...env, DATABASE_URL: '' } });
  // On a terminal the two syncs draw progress lines on stderr (log lines are written above them).
  const progress = progressLine({ json: a.json });
  const logger = progress ? createLogger(config.log.level, progress.logDestination()) : createLogger(config.log.level);
  let db: Database | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
  try {
    db = await openDatabase({ embeddedDir: config.database.embeddedDir, extraConnections: a.serve ? 2 : 0 });
    const m = await migrate(db);
    err(`embedded database at ${config.database.embeddedDir}: ${m.applied.length} migration(s) applied`);
    receiver = await startWebhookReceiver(db, config, logger, env);
    pushTo(sandbox, config, env, receiver.url);
    for (const [i, t] of sandbox.tenants.entries()) {
      // ManyChat keeps no history we could fetch: the demo's first messages arrive as pushes.
      const page = sandbox.manychat.snapshot().pages.find((p) => p.page_id === t.manychat.pageId);
      for (const s of (page?.subscribers ?? []).slice(0, 12)) {
        await sandbox.manychat.simulateInbound({
          pageId: t.manychat.pageId,
          subscriberId: String(s.id),
          text: 'Hi, can I book a session this week?',
        });
      }
    }

    err('full sync …');
    const full = await syncAll(db, config, { fullRefresh: true }, logger, env, progress?.listener);
    err('the sources change: new messages, edits, archives, cancellations, pushes …');
    sandbox.mutate(3);
    await Promise.all([sandbox.chatwoot.webhooks.idle(), sandbox.manychat.idle()]);
    err('incremental sync …');
    const incremental = await syncAll(db, config, {}, logger, env, progress?.listener);
    progress?.close();
    const counts = await tableCounts(
      db,
      config.organizations.map((o) => o.id),
    );
    const hooks = receiver.stats();
    if (a.json) {
      out(
        JSON.stringify(
          {
            full: full.map(toJson),
            incremental: incremental.map(toJson),
            tables: counts,
            webhooks: { received: hooks.received, rejected: hooks.rejected },
          },
          null,
          2,
        ),
      );
    } else {
      out(`== Full sync ==\n${formatSummaries(full)}\n\n== Incremental sync ==\n${formatSummaries(incremental)}\n`);
      out(
        `== Unified tables per organization ==\n${table(
          counts.map((c) =>
            [
              c.organization_id,
              c.patients,
              c.identities,
              c.conversations,
              c.messages,
              c.attachments,
              c.appointments,
              c.dead_letters,
            ].map((v) => String(v ?? '')),
          ),
          [
            'organization',
            'patients',
            'identities',
            'conversations',
            'messages',
            'attachments',
            'appointments',
            'dead letters',
          ],
        )}`,
      );
      out(`\nwebhooks received: ${hooks.received} (${hooks.rejected} rejected)`);
      out(`database: ${config.database.embeddedDir}  config: ${path.relative(process.cwd(), configFile)}`);
    }
    const ok = [...full, ...incremental].every((s: ConnectionSummary) => s.status === 'succeeded');
    if (a.serve) {
      await receiver.close();
      receiver = undefined;
      await serveDemo(db, config, env, sandbox, a.port ?? 8080, configFile);
    }
    return ok ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    progress?.close();
    await receiver?.close();
    await db?.close();
    await sandbox.close();
  }
}

/** Point every tenant's Chatwoot webhooks and ManyChat External Request at `url`. */
function pushTo(
  sandbox: Awaited<ReturnType<typeof startSandbox>>,
  config: RoutiqConfig,
  env: NodeJS.ProcessEnv,
  url: string,
): void {
  for (const [i, t] of sandbox.tenants.entries()) {
    const org = config.organizations[i] as RoutiqConfig['organizations'][number];
    sandbox.chatwoot.webhooks.subscribe(t.chatwoot.accountId, {
      url: `${url}/webhooks/${org.id}/chatwoot`,
      subscriptions: [
        'message_created',
        'message_updated',
        'conversation_created',
        'conversation_updated',
        'conversation_status_changed',
        'contact_created',
        'contact_updated',
      ],
      secret: t.chatwoot.webhookSecret,
    });
    sandbox.manychat.setAutomation(t.manychat.pageId, {
      url: `${url}/webhooks/${org.id}/manychat`,
      headers: { 'X-Routiq-Token': env[`DEMO${i + 1}_MANYCHAT_WEBHOOK_TOKEN`] as string },
      template: 'full_contact',
    });
  }
}

/** The demo left running as the service: simulators push to it, schedules run every minute, Ctrl-C stops. */
async function serveDemo(
  db: Database,
  config: RoutiqConfig,
  env: NodeJS.ProcessEnv,
  sandbox: Awaited<ReturnType<typeof startSandbox>>,
  port: number,
  configFile: string,
): Promise<void> {
  const token = env.ROUTIQ_SERVICE_TOKEN || 'demo-token';
  const service = new Service({
    db,
    config,
    // Loopback unless told otherwise (HOST=0.0.0.0 in the compose file's container).
    settings: {
      ...DEFAULT_SETTINGS,
      ...config.service,
      host: process.env.HOST || '127.0.0.1',
      port,
      intervalMinutes: 1,
      token,
    },
    logger: createLogger(config.log.level),
    env,
  });
  const { url } = await service.start();
  pushTo(sandbox, config, env, url);
  const org = config.organizations[0]?.id ?? 'org';
  err(`
== routiq serve is running on ${url} (Ctrl-C stops it) ==
The simulators now push their webhooks here; every connection syncs once a minute.
  Post a ManyChat push and watch the row appear:
    curl -s -X POST ${url}/webhooks/${org}/manychat -H 'content-type: application/json' \
      -H 'X-Routiq-Token: ${env.DEMO1_MANYCHAT_WEBHOOK_TOKEN}' \
      -d '{"subscriber_id":"demo-1","first_name":"Ada","last_name":"Lovelace","text":"Hello from curl","last_interaction":"${new Date().toISOString()}"}'
    npx routiq status --config ${path.relative(process.cwd(), configFile)}   (in another terminal: runs and checkpoints)
  Status page: ${url}/status   (sign in with the token ${token})
  Status API:  curl -s -H 'Authorization: Bearer ${token}' ${url}/api/status
  Metrics:     curl -s ${url}/metrics | grep routiq_
  OpenAPI:     ${url}/openapi.json
`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await service.close();
}

async function tableCounts(db: Database, orgIds: string[]) {
  const rows = [];
  for (const id of orgIds) {
    const r = await forOrganization(db, id).query<Record<string, string>>(
      `select ? as organization_id,
        (select count(*) from patients where organization_id = ? and merged_into is null)::text as patients,
        (select count(*) from patient_identities where organization_id = ?)::text as identities,
        (select count(*) from conversations where organization_id = ?)::text as conversations,
        (select count(*) from messages where organization_id = ?)::text as messages,
        (select count(*) from attachments where organization_id = ?)::text as attachments,
        (select count(*) from appointments where organization_id = ?)::text as appointments,
        (select count(*) from sync_errors where organization_id = ? and not resolved)::text as dead_letters`,
      [id, id, id, id, id, id, id, id],
    );
    rows.push(r[0] as Record<string, string>);
  }
  return rows;
}
