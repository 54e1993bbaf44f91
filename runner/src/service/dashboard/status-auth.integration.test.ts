import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../../test/helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../../../../test/helpers/db.ts';
import { org, silentLogger, testConfig } from '../../../../test/helpers/engine.ts';
import { ensureOrganization } from '../../engine/session.ts';
import { DEFAULT_SETTINGS, Service } from '../service.ts';

/**
 * Issue #20: the status page signs in with a Clerk-issued JWT as well as the service token, verified as the API
 * verifies it (a JWKS served over local HTTP here, as Clerk serves it). A user of organization A sees A's rows only,
 * through a Bearer header or a session made from the JWT; a token naming no organization gets 403; every view and
 * every refusal is in the audit log with its actor.
 */
const ISSUER = 'https://clerk.routiq.test';
const SERVICE_TOKEN = 'svc-token-status-auth-0123456789';
const A = 'org_page_a';
const B = 'org_page_b';
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const kind = (await backends()).includes('postgres') ? 'postgres' : 'embedded';

describe(`status page sign-in with a Clerk JWT (${kind})`, () => {
  let t: TestDb;
  let svc: Service;
  let jwks: Server;
  let sign: (claims: Record<string, unknown>, o?: { key?: PrivateKey; exp?: number; sub?: string }) => Promise<string>;
  let rogueKey: PrivateKey;
  const letters: Record<string, string> = {};

  beforeAll(async () => {
    const good = await generateKeyPair('RS256', { extractable: true });
    rogueKey = (await generateKeyPair('RS256', { extractable: true })).privateKey;
    const jwk: JWK = { ...(await exportJWK(good.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    sign = (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setSubject(o.sub ?? 'user_2alice')
        .setIssuedAt()
        .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 300)
        .sign(o.key ?? good.privateKey);
    const config = testConfig(CONNECTORS_DIR, [
      org(A, [{ connector: 'cliniko', enabled: false, config: { base_url: 'http://127.0.0.1:9' } }]),
      org(B, [{ connector: 'cliniko', enabled: false, config: { base_url: 'http://127.0.0.1:9' } }]),
    ]);
    const auth = {
      jwksUrl,
      issuer: ISSUER,
      authorizedParties: [],
      organizationClaim: 'org_id',
      clockToleranceSeconds: 0,
    };
    t = await openTestDb(kind);
    for (const o of config.organizations) await ensureOrganization(t.db, o);
    for (const o of [A, B]) {
      const [row] = await t.db.query<{ id: string }>(
        `insert into sync_errors (organization_id, connector, connection, stream, error_class, error_code, message, record_key)
         values (?, 'cliniko', 'cliniko', 'patients', 'mapping', 'RQ5001', ?, ?) returning id::text as id`,
        [o, `letter message of ${o}`, `patient-of-${o}`],
      );
      letters[o] = row?.id as string;
    }
    svc = new Service({
      db: t.db,
      config,
      logger: silentLogger,
      env: {},
      settings: { ...DEFAULT_SETTINGS, token: SERVICE_TOKEN, auth },
    });
  });
  afterAll(async () => {
    await svc?.app.close();
    await t?.drop();
    await new Promise((r) => jwks?.close(r));
  });

  const page = async (url: string, headers: Record<string, string> = {}) => {
    const res = await svc.app.inject({ method: 'GET', url, headers });
    return { status: res.statusCode, body: res.body, location: res.headers.location };
  };
  const signIn = async (token: string) => {
    const res = await svc.app.inject({
      method: 'POST',
      url: '/status/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token }).toString(),
    });
    const cookie = String(res.headers['set-cookie'] ?? '');
    return { status: res.statusCode, cookie: cookie.split(';')[0] ?? '', setCookie: cookie, body: res.body };
  };
  const audit = (action: string) =>
    t.db.query<{
      actor_type: string;
      actor_id: string;
      organization_id: string | null;
      resource_id: string | null;
      count: number | null;
      details: Record<string, unknown>;
    }>(
      `select actor_type, actor_id, organization_id, resource_id, count, details from audit_log
       where action = ? order by id`,
      [action],
    );

  it("a user's Bearer JWT shows its organization's rows only, on the page and its live part; each view audited", async () => {
    const before = (await audit('status_page.view')).length;
    const tokenA = await sign({ org_id: A });
    for (const url of ['/status', '/status/live']) {
      const r = await page(url, { authorization: `Bearer ${tokenA}` });
      expect(r.status).toBe(200);
      expect(r.body).toContain(`patient-of-${A}`);
      expect(r.body).not.toContain(`patient-of-${B}`);
      expect(r.body).not.toContain(B);
    }
    // Clerk v2 tokens carry the organization as o.id.
    const v2 = await page('/status', { authorization: `Bearer ${await sign({ o: { id: B, rol: 'admin' } })}` });
    expect(v2.body).toContain(`patient-of-${B}`);
    expect(v2.body).not.toContain(`patient-of-${A}`);

    const rows = (await audit('status_page.view')).slice(before);
    expect(rows.map((r) => [r.actor_type, r.actor_id, r.organization_id, r.resource_id, r.count])).toEqual([
      ['user', 'user_2alice', A, 'page', 1],
      ['user', 'user_2alice', A, 'live', 1],
      ['user', 'user_2alice', B, 'page', 1],
    ]);
    expect(rows[0]?.details).toMatchObject({ organizations: [A], cross_organization: false, via: 'bearer' });
    expect(JSON.stringify(rows)).not.toContain(tokenA.split('.')[2]);
  });

  it('signs in with a JWT: a session of its user and organization that ends with the token', async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const tokenB = await sign({ org_id: B }, { exp, sub: 'user_2bob' });
    const s = await signIn(tokenB);
    expect(s.status).toBe(303);
    expect(s.cookie).toMatch(/^routiq_status=u1\./);
    const maxAge = Number(/Max-Age=(\d+)/.exec(s.setCookie)?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(120);
    expect(s.setCookie).toContain('HttpOnly');

    const r = await page('/status', { cookie: s.cookie });
    expect(r.status).toBe(200);
    expect(r.body).toContain(`patient-of-${B}`);
    expect(r.body).not.toContain(`patient-of-${A}`);
    // A proxy's own Authorization header (Basic) neither ends the session nor counts as a credential.
    const behindProxy = await page('/status', { cookie: s.cookie, authorization: 'Basic b3BzOnB3' });
    expect(behindProxy.status).toBe(200);
    const proxyOnly = await page('/status', { authorization: 'Basic b3BzOnB3' });
    expect([proxyOnly.status, proxyOnly.location]).toEqual([303, '/status/login']);
    const [last] = (await audit('status_page.view')).slice(-1);
    expect(last).toMatchObject({ actor_type: 'user', actor_id: 'user_2bob', organization_id: B });
    expect(last?.details).toMatchObject({ via: 'session' });

    // Its session replays its own organization's letters only: A's answers 404, audited.
    const csrf = /name="csrf" value="([^"]+)"/.exec(r.body)?.[1] ?? '';
    expect(csrf).not.toBe('');
    const foreign = await svc.app.inject({
      method: 'POST',
      url: `/status/dlq/${letters[A]}/replay`,
      headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      payload: new URLSearchParams({ csrf }).toString(),
    });
    expect(foreign.statusCode).toBe(404);
    const [denied] = (await audit('auth.denied')).slice(-1);
    expect(denied).toMatchObject({ actor_type: 'user', actor_id: 'user_2bob' });
    expect(denied?.details).toMatchObject({ status: 404, principal_organization: B });
  });

  it('a token naming no organization gets 403 (sign-in and Bearer); bad or expired tokens 401; all audited', async () => {
    const before = (await audit('auth.denied')).length;
    const noOrg = await sign({});
    expect((await signIn(noOrg)).status).toBe(403);
    expect((await page('/status', { authorization: `Bearer ${noOrg}` })).status).toBe(403);
    expect((await page('/status/live', { authorization: `Bearer ${noOrg}` })).status).toBe(403);
    const forged = await sign({ org_id: A }, { key: rogueKey });
    const expired = await sign({ org_id: A }, { exp: Math.floor(Date.now() / 1000) - 60 });
    for (const bad of [forged, expired, 'not-a-token']) {
      const s = await signIn(bad);
      expect(s.status).toBe(401);
      expect(s.cookie).toBe('');
      expect((await page('/status', { authorization: `Bearer ${bad}` })).status).toBe(401);
    }
    // Without any credential the page sends the browser to its sign-in form.
    const anon = await page('/status');
    expect([anon.status, anon.location]).toEqual([303, '/status/login']);

    const rows = (await audit('auth.denied')).slice(before);
    expect(rows.map((r) => r.details.status)).toEqual([403, 403, 403, 401, 401, 401, 401, 401, 401]);
    expect(rows.map((r) => r.resource_id)).toEqual([
      'POST /status/login',
      'GET /status',
      'GET /status/live',
      'POST /status/login',
      'GET /status',
      'POST /status/login',
      'GET /status',
      'POST /status/login',
      'GET /status',
    ]);
    const dump = JSON.stringify(rows);
    for (const tok of [noOrg, forged, expired]) expect(dump).not.toContain(tok.split('.')[2]);
  });

  it('the service token sees every organization: a cross-organization view, audited with its actor', async () => {
    const r = await page('/status', { authorization: `Bearer ${SERVICE_TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.body).toContain(`patient-of-${A}`);
    expect(r.body).toContain(`patient-of-${B}`);
    const [last] = (await audit('status_page.view')).slice(-1);
    expect(last).toMatchObject({ actor_type: 'service_token', actor_id: 'static', organization_id: null, count: 2 });
    expect(last?.details).toMatchObject({ organizations: [A, B], cross_organization: true });
  });

  it('the status API audits every read with its actor: a user its organization, the service token all', async () => {
    const before = (await audit('status.read')).length;
    const user = await svc.app.inject({
      method: 'GET',
      url: '/api/status',
      headers: { authorization: `Bearer ${await sign({ org_id: A })}`, 'x-request-id': 'req-status-1' },
    });
    expect(user.statusCode).toBe(200);
    expect((user.json() as { organizations: Array<{ id: string }> }).organizations.map((o) => o.id)).toEqual([A]);
    const all = await svc.app.inject({
      method: 'GET',
      url: '/api/status',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    });
    expect(all.statusCode).toBe(200);
    expect(
      (
        await svc.app.inject({
          method: 'GET',
          url: '/api/status',
          headers: { authorization: `Bearer ${await sign({})}` },
        })
      ).statusCode,
    ).toBe(403);
    const rows = (await audit('status.read')).slice(before);
    expect(rows.map((r) => [r.actor_type, r.actor_id, r.organization_id, r.count, r.details.organizations])).toEqual([
      ['user', 'user_2alice', A, 1, [A]],
      ['service_token', 'static', null, 2, [A, B]],
    ]);
    const [req1] = await t.db.query<{ correlation_id: string }>(
      "select correlation_id from audit_log where action = 'status.read' order by id limit 1",
    );
    expect(req1?.correlation_id).toBe('req-status-1');
  });

  it('the OpenAPI document names both admin schemes: the service token and the Clerk JWT', async () => {
    const doc = (await svc.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      components: { securitySchemes: Record<string, Record<string, string>> };
      paths: Record<string, Record<string, { security?: unknown }>>;
    };
    expect(doc.components.securitySchemes.clerkJwt).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    expect(doc.components.securitySchemes.serviceToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/status']?.get?.security).toEqual([{ serviceToken: [] }, { clerkJwt: [] }]);
    expect(doc.paths['/health/live']?.get?.security).toBeUndefined();
  });
});
