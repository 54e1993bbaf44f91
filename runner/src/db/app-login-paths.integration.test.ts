import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../test/helpers/connectors.ts';
import { createTestDatabase, PG_ADMIN_URL, postgresReachable } from '../../../test/helpers/db.ts';
import { org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { AlertMonitor } from '../alerts/monitor.ts';
import { activeAlerts } from '../alerts/state.ts';
import type { RoutiqConfig } from '../config/types.ts';
import { openSession } from '../engine/session.ts';
import { setCredential } from '../security/credentials.ts';
import { KEYS_VARIABLE, parseKeyRing } from '../security/crypto.ts';
import { statusView } from '../service/dashboard/data.ts';
import { DEFAULT_SETTINGS, Service } from '../service/service.ts';
import { type Database, openDatabase } from './database.ts';
import { migrate } from './migrate.ts';

/**
 * The production set-up of docs/database.md#tenant-isolation (as app-login.integration.test.ts): migrated by a
 * superuser under its own role prefix, then used through a login role that is neither superuser nor owner, granted
 * the app role (and through it the admin role). The paths issue #20 added or touched run there as they do for a
 * superuser: credentials loaded by openSession from the store, the status page and status API (both organizations
 * for the service token, one for a user), the alert rules and their shared state, the audit rows they and the
 * retention purge write, and a failing webhook's dead letter.
 */
const ORG_A = 'org_al_a';
const ORG_B = 'org_al_b';
const TOKEN = 'svc-token-app-login-0123456789';

// An operator's login role either inherits the app role's grants or (NOINHERIT) has none of its own: both work.
describe.skipIf(!(await postgresReachable())).each(['inherit', 'noinherit'] as const)(
  'new paths under an app-role login (%s, PostgreSQL)',
  (inherit) => {
    const prefix = `rq_t_${randomBytes(4).toString('hex')}`;
    const login = `${prefix}_login`;
    const keys = `k1:${randomBytes(32).toString('base64')}`;
    const env = { [KEYS_VARIABLE]: keys };
    let target: Awaited<ReturnType<typeof createTestDatabase>>;
    let owner: Database;
    let app: Database;
    let config: RoutiqConfig;

    beforeAll(async () => {
      target = await createTestDatabase('postgres');
      owner = await openDatabase({ url: target.url, rolePrefix: prefix });
      await migrate(owner);
      // A login of its own (as an operator would create it), member of the app role: never owner, superuser or BYPASSRLS.
      await owner.query(`create role ${login} login nosuperuser nobypassrls ${inherit} in role ${prefix}_app`);
      const a = org(ORG_A, [
        {
          connector: 'cliniko',
          credentialStore: true,
          config: { base_url: 'http://127.0.0.1:9', contact_email: 'ops@routiq.example' },
        },
      ]);
      a.alerts = {
        rules: ['run_failures', 'dlq_growth'],
        lagMinutes: 60,
        dlqGrowth: 1,
        runFailures: 1,
        webhookRejections: 5,
        windowMinutes: 60,
      };
      const b = org(ORG_B, [
        {
          connector: 'cliniko',
          secrets: { api_key: '${CLINIKO_B}' },
          config: { base_url: 'http://127.0.0.1:9', contact_email: 'ops@routiq.example' },
        },
      ]);
      config = testConfig(CONNECTORS_DIR, [a, b]);
      await owner.query("insert into organizations (id, name) values (?, 'A'), (?, 'B')", [ORG_A, ORG_B]);
      for (const o of [ORG_A, ORG_B]) {
        await owner.query(
          `insert into sync_errors (organization_id, connector, connection, stream, error_class, error_code, message, record_key)
         values (?, 'cliniko', 'cliniko', 'patients', 'mapping', 'RQ5001', 'm', ?)`,
          [o, `patient-of-${o}`],
        );
        await owner.query(
          `insert into sync_runs (organization_id, connector, connection, status, started_at, finished_at, error_code, error, correlation_id)
         values (?, 'cliniko', 'cliniko', 'failed', now() - interval '5 minutes', now() - interval '4 minutes', 'RQ3003', 'HTTP 401', gen_random_uuid())`,
          [o],
        );
      }
      const u = new URL(target.url as string);
      u.username = login;
      app = await openDatabase({ url: u.toString(), rolePrefix: prefix });
    });
    afterAll(async () => {
      await app?.close();
      await owner?.close();
      await target?.drop();
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        for (const r of [login, `${prefix}_app`, `${prefix}_admin`, `${prefix}_owner`])
          await c.query(`drop role if exists ${r}`);
      } finally {
        await c.end();
      }
    });

    const audit = (action: string) =>
      owner.query<{ actor_type: string; actor_id: string; organization_id: string | null; count: number | null }>(
        'select actor_type, actor_id, organization_id, count from audit_log where action = ? order by id',
        [action],
      );

    it('logs in as a plain login role: not superuser, owner or BYPASSRLS; raw queries get no tenant row', async () => {
      const [me] = await app.query<{ u: string; su: boolean; bypass: boolean }>(
        'select current_user::text as u, rolsuper as su, rolbypassrls as bypass from pg_roles where rolname = current_user',
      );
      expect(me).toEqual({ u: login, su: false, bypass: false });
      // A query that forgot its scope: no row (inheriting the app role's grants) or no access at all (NOINHERIT).
      if (inherit === 'inherit') expect(await app.query('select * from sync_errors')).toEqual([]);
      else await expect(app.query('select * from sync_errors')).rejects.toThrow(/permission denied/);
    });

    it('openSession loads the connection secrets from the credential store (credential_store: true)', async () => {
      const a = config.organizations[0]!;
      await setCredential(
        app,
        parseKeyRing(keys),
        { organizationId: ORG_A, connection: 'cliniko', name: 'api_key' },
        'tok_store_a_123',
        { actor: 'cli:test' },
      );
      const session = await openSession({
        db: app,
        config,
        org: a,
        conn: a.connections[0]!,
        logger: silentLogger,
        env,
      });
      expect(session.cctx.secrets.api_key).toBe('tok_store_a_123');
      // Its database is the organization's: it sees A's dead letter only.
      expect(await session.db.query<{ k: string }>('select record_key as k from sync_errors')).toEqual([
        { k: `patient-of-${ORG_A}` },
      ]);
    });

    it('the status view reads every organization for the admin, one for a user', async () => {
      const all = await statusView({ db: app, config, env, intervalMinutes: 5 });
      expect(all.organizations.map((o) => o.id)).toEqual([ORG_A, ORG_B]);
      expect(all.organizations.map((o) => o.connections[0]?.latestDeadLetters.map((d) => d.recordKey))).toEqual([
        [`patient-of-${ORG_A}`],
        [`patient-of-${ORG_B}`],
      ]);
      expect(all.organizations.map((o) => o.connections[0]?.failedRuns24h)).toEqual([1, 1]);
      const one = await statusView({ db: app, config, env, intervalMinutes: 5, organizationId: ORG_B });
      expect(one.organizations.map((o) => o.id)).toEqual([ORG_B]);
      expect(one.organizations[0]?.connections[0]?.latestDeadLetters.map((d) => d.recordKey)).toEqual([
        `patient-of-${ORG_B}`,
      ]);
    });

    it('alert rules evaluate, start and list alerts in the shared state', async () => {
      const monitor = new AlertMonitor({ db: app, config: () => config, logger: silentLogger, env });
      const notices = await monitor.evaluate();
      expect(notices.map((n) => [n.organizationId, n.rule, n.kind]).sort()).toEqual([
        [ORG_A, 'dlq_growth', 'firing'],
        [ORG_A, 'run_failures', 'firing'],
      ]);
      expect((await activeAlerts(app)).map((x) => [x.organizationId, x.rule])).toEqual([
        [ORG_A, 'dlq_growth'],
        [ORG_A, 'run_failures'],
      ]);
      expect(await monitor.evaluate()).toEqual([]); // still holding: nothing new to say
    });

    it('the service: status page, status API and daily purge work and write their audit rows', async () => {
      const svc = new Service({
        db: app,
        config,
        logger: silentLogger,
        env: { ...env, CLINIKO_B: 'tok_env_b' },
        settings: { ...DEFAULT_SETTINGS, token: TOKEN },
      });
      try {
        await svc.instances.beat();
        const page = await svc.app.inject({ url: '/status', headers: { authorization: `Bearer ${TOKEN}` } });
        expect(page.statusCode).toBe(200);
        expect(page.body).toContain(`patient-of-${ORG_A}`);
        expect(page.body).toContain(`patient-of-${ORG_B}`);
        expect(page.body).toContain(svc.instances.id);
        const api = await svc.app.inject({ url: '/api/status', headers: { authorization: `Bearer ${TOKEN}` } });
        expect(api.statusCode).toBe(200);
        expect((api.json() as { organizations: Array<{ id: string }> }).organizations.map((o) => o.id)).toEqual([
          ORG_A,
          ORG_B,
        ]);
        const denied = await svc.app.inject({ url: '/api/status', headers: { authorization: 'Bearer wrong' } });
        expect(denied.statusCode).toBe(401);
        await owner.query("update sync_errors set resolved = true, resolved_at = now() - interval '400 days'");
        const purged = await svc.purge();
        expect(purged.deadLetters).toBe(2);
      } finally {
        await svc.app.close();
      }
      expect(await audit('status_page.view')).toEqual([
        { actor_type: 'service_token', actor_id: 'static', organization_id: null, count: 2 },
      ]);
      expect(await audit('status.read')).toEqual([
        { actor_type: 'service_token', actor_id: 'static', organization_id: null, count: 2 },
      ]);
      expect((await audit('auth.denied')).map((r) => r.actor_type)).toEqual(['anonymous']);
      expect(await audit('retention.purge')).toEqual([
        { actor_type: 'system', actor_id: 'daily-purge', organization_id: ORG_A, count: 1 },
        { actor_type: 'system', actor_id: 'daily-purge', organization_id: ORG_B, count: 1 },
      ]);
    });
  },
);
