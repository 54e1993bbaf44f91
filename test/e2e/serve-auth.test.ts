import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureOrganization } from '@routiq/runner';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService } from './serve-harness.ts';

/**
 * Issue #20: admin endpoints of `routiq serve` take the service token or a Clerk-issued JWT verified against a JWKS
 * (served here over local HTTP, as Clerk serves it). No token, a bad signature, an expired token → 401; another
 * organization's resources → 403/404; every refusal is in the audit log, without the token.
 */
const ISSUER = 'https://clerk.routiq.test';
const SERVICE_TOKEN = 'svc-token-serve-auth-0123456789';
const A = 'org_auth_a';
const B = 'org_auth_b';
// Prefer the server (cheaper than a second embedded database); the logic under test does not depend on it.
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const kind = (await backends()).includes('postgres') ? 'postgres' : 'embedded';

describe(`admin endpoint authentication (${kind})`, () => {
  let svc: RunningService;
  let jwks: Server;
  let sign: (claims: Record<string, unknown>, o?: { key?: PrivateKey; exp?: number }) => Promise<string>;
  let letterOfA: string;
  let rogueKey: PrivateKey;

  beforeAll(async () => {
    const good = await generateKeyPair('RS256', { extractable: true });
    const rogue = await generateKeyPair('RS256', { extractable: true });
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
        .setSubject('user_2alice')
        .setIssuedAt()
        .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 300)
        .sign(o.key ?? good.privateKey);
    rogueKey = rogue.privateKey;
    const config = testConfig(CONNECTORS_DIR, [
      org(A, [{ connector: 'cliniko', enabled: false, config: { base_url: 'http://127.0.0.1:9' } }]),
      org(B, [{ connector: 'cliniko', enabled: false, config: { base_url: 'http://127.0.0.1:9' } }]),
    ]);
    config.service.auth = {
      jwksUrl,
      issuer: ISSUER,
      authorizedParties: [],
      organizationClaim: 'org_id',
      clockToleranceSeconds: 0,
    };
    svc = await startService(kind, config, {}, { token: SERVICE_TOKEN, auth: config.service.auth });
    for (const o of config.organizations) await ensureOrganization(svc.db, o);
    const [row] = await svc.db.query<{ id: string }>(
      `insert into sync_errors (organization_id, connector, connection, stream, error_class, error_code, message)
       values (?, 'cliniko', 'cliniko', 'patients', 'mapping', 'RQ5001', 'test letter') returning id::text as id`,
      [A],
    );
    letterOfA = row!.id;
  });
  afterAll(async () => {
    await svc?.close();
    await new Promise((r) => jwks?.close(r));
  });

  const get = async (path: string, token?: string) => {
    const res = await fetch(`${svc.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const denials = () =>
    svc.db.query<{
      actor_type: string;
      actor_id: string;
      organization_id: string | null;
      details: any;
      resource_id: string;
    }>(
      "select actor_type, actor_id, organization_id, details, resource_id from audit_log where action = 'auth.denied' order by id",
    );

  it('401 without a token, with a bad signature, with an expired token; each refusal audited without the token', async () => {
    const before = (await denials()).length;
    const none = await get('/api/status');
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('no Authorization header');

    const forged = await sign({ org_id: A }, { key: rogueKey }); // same kid, another key
    const bad = await get('/api/status', forged);
    expect(bad).toEqual({ status: 401, body: { error: 'the token signature is not valid' } });

    const expired = await sign({ org_id: A }, { exp: Math.floor(Date.now() / 1000) - 60 });
    expect(await get('/api/status', expired)).toEqual({ status: 401, body: { error: 'the token has expired' } });

    const wrongIssuer = await new SignJWT({ org_id: A })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setSubject('user_x')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!'));
    expect((await get('/api/status', wrongIssuer)).status).toBe(401);
    expect((await post(`${svc.url}/api/syncs`, '{}', { authorization: 'Bearer wrong' })).status).toBe(401);

    const rows = (await denials()).slice(before);
    expect(rows.map((r) => [r.actor_type, r.details.status, r.resource_id])).toEqual([
      ['anonymous', 401, 'GET /api/status'],
      ['anonymous', 401, 'GET /api/status'],
      ['anonymous', 401, 'GET /api/status'],
      ['anonymous', 401, 'GET /api/status'],
      ['anonymous', 401, 'POST /api/syncs'],
    ]);
    const dump = JSON.stringify(await svc.db.query('select * from audit_log'));
    for (const tok of [forged, expired, wrongIssuer]) expect(dump).not.toContain(tok.split('.')[2]);
  });

  it("scopes a user's token to its organization: status shows it alone; another's syncs 403, letters 404, audited", async () => {
    const tokenB = await sign({ org_id: B });
    const status = await get('/api/status', tokenB);
    expect(status.status).toBe(200);
    expect((status.body.organizations as Array<{ id: string }>).map((o) => o.id)).toEqual([B]);
    // Clerk v2 session tokens carry the organization as o.id.
    const v2 = await get('/api/status', await sign({ o: { id: A, rol: 'admin' } }));
    expect((v2.body.organizations as Array<{ id: string }>).map((o) => o.id)).toEqual([A]);
    // The service token sees every organization.
    const all = await get('/api/status', SERVICE_TOKEN);
    expect((all.body.organizations as Array<{ id: string }>).map((o) => o.id).sort()).toEqual([A, B]);
    // A token without an organization is not an admin of anything: authenticated, but forbidden.
    expect((await get('/api/status', await sign({}))).status).toBe(403);

    const before = (await denials()).length;
    const auth = { authorization: `Bearer ${tokenB}` };
    const sync = await post(`${svc.url}/api/syncs`, JSON.stringify({ organization_id: A }), auth);
    expect(sync.status).toBe(403);
    const byIds = await post(`${svc.url}/api/dlq/replay`, JSON.stringify({ ids: [letterOfA] }), auth);
    expect(byIds.status).toBe(404);
    const byFilter = await post(`${svc.url}/api/dlq/replay`, JSON.stringify({ filter: { org: A } }), auth);
    expect(byFilter.status).toBe(403);
    // Its own organization's letters: queued.
    const own = await post(`${svc.url}/api/dlq/replay`, JSON.stringify({ filter: { connector: 'cliniko' } }), auth);
    expect(own.status).toBe(202);
    const ownA = await post(`${svc.url}/api/dlq/replay`, JSON.stringify({ ids: [letterOfA] }), {
      authorization: `Bearer ${await sign({ org_id: A })}`,
    });
    expect(ownA.status).toBe(202);

    const rows = (await denials()).slice(before);
    expect(
      rows.map((r) => [
        r.actor_type,
        r.actor_id,
        r.organization_id,
        r.details.status,
        r.details.principal_organization,
      ]),
    ).toEqual([
      ['user', 'user_2alice', A, 403, B],
      ['user', 'user_2alice', null, 404, B],
      ['user', 'user_2alice', A, 403, B],
    ]);
    const requests = await svc.db.query<{ actor_type: string; organization_id: string }>(
      "select actor_type, organization_id from audit_log where action = 'dlq.replay.request' order by id",
    );
    expect(requests).toEqual([
      { actor_type: 'user', organization_id: B },
      { actor_type: 'user', organization_id: A },
    ]);
  });
});
