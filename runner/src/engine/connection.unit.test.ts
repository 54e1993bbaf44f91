import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorsDir, org } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import type { ConnectionConfig } from '../config/types.ts';
import { loadConnector } from '../spec/load.ts';
import type { AuthSpec, ConnectorSpec, RequestSpec } from '../spec/types.ts';
import { applyAuth, buildConnectionContext, mergeRequest, renderHeaders, renderParams } from './connection.ts';

const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const cliniko = loadConnector(CONNECTORS, 'cliniko').spec;

/** One organization (AU, Sydney) with one connection of `connector`. */
function setup(connector: string, conn: Partial<ConnectionConfig> = {}) {
  const o = org('org_unit', [{ connector, ...conn }]);
  return { org: o, conn: o.connections[0]! };
}

function context(
  spec: ConnectorSpec,
  config: Record<string, unknown>,
  secrets: Record<string, string> = {},
  conn: Partial<ConnectionConfig> = {},
) {
  const s = setup(spec.name, { config, ...conn });
  return buildConnectionContext(spec, s.org, s.conn, secrets);
}

describe('buildConnectionContext', () => {
  it('derives the Cliniko shard from the key suffix, and au1 for a key without one', async () => {
    const au3 = await context(cliniko, { contact_email: 'ops@example.com' }, { api_key: 'MS0xLWFiYw-AU3' });
    expect(au3.baseUrl).toBe('https://api.au3.cliniko.com/v1');
    expect(au3.bindings.base_url).toBe('https://api.au3.cliniko.com/v1');
    const plain = await context(cliniko, { contact_email: 'ops@example.com' }, { api_key: 'MS0xLWFiYw' });
    expect(plain.baseUrl).toBe('https://api.au1.cliniko.com/v1');
  });

  it('uses a configured base_url over the derived one and drops trailing slashes', async () => {
    const c = await context(
      cliniko,
      { contact_email: 'ops@example.com', base_url: 'http://127.0.0.1:9000/v1//' },
      { api_key: 'k-uk1' },
    );
    expect(c.baseUrl).toBe('http://127.0.0.1:9000/v1');
  });

  it('fills schema defaults into config, keeps secrets out of config, and binds org and connector', async () => {
    const c = await context(cliniko, { contact_email: 'ops@example.com' }, { api_key: 'k-au2' });
    expect(c.config).toEqual({
      contact_email: 'ops@example.com',
      app_name: 'Routiq Pipeline',
      requests_per_minute: 200,
    });
    expect(c.config).not.toHaveProperty('api_key');
    expect(c.secrets).toEqual({ api_key: 'k-au2' });
    expect(c.bindings).toMatchObject({
      config: c.config,
      secrets: { api_key: 'k-au2' },
      org: { id: 'org_unit', name: 'Org org_unit', default_country: 'AU', timezone: 'Australia/Sydney' },
      connector: 'cliniko',
    });
  });

  it.each([
    [
      { contact_email: 'ops@example.com', colour: 'red' },
      { api_key: 'k' },
      /config\.colour is not a setting of connector cliniko \(settings: api_key, /,
    ],
    [{ contact_email: 'ops@example.com', api_key: 'k' }, {}, /api_key is a secret: put it under secrets:/],
    [
      { contact_email: 'ops@example.com' },
      { api_key: 'k', app_name: 'x' },
      /secrets\.app_name is not a secret setting/,
    ],
    [{ contact_email: 'ops@example.com' }, {}, /secrets\.api_key is required by connector cliniko \(API key/],
    [{}, { api_key: 'k' }, /config\.contact_email is required by connector cliniko/],
    [{ contact_email: 'not an address' }, { api_key: 'k' }, /contact_email must be an email address/],
    [
      { contact_email: 'ops@example.com', requests_per_minute: 1.5 },
      { api_key: 'k' },
      /requests_per_minute must be a integer, got 1\.5/,
    ],
    [
      { contact_email: 'ops@example.com', base_url: 'not a url' },
      { api_key: 'k' },
      /base_url must be a URL, got "not a url"/,
    ],
  ])('refuses invalid settings with RQ1007 naming the connection: %j %j', async (config, secrets, message) => {
    const err = await context(cliniko, config, secrets).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RQ1007', where: 'organizations[org_unit].connections[cliniko]' });
    expect((err as Error).message).toMatch(message);
  });

  it('checks enum and pattern settings, and refuses a base_url that does not render to a URL', async () => {
    const spec = loadConnector(
      connectorsDir({
        shaped: itemsSpec('shaped').replace(
          '    base_url: { type: string, format: uri }',
          '    base_url: { type: string }\n    region: { type: string, enum: [au, uk] }\n    code: { type: string, pattern: "^[A-Z]{3}$" }',
        ),
      }),
      'shaped',
    ).spec;
    const ok = await context(spec, { base_url: 'http://127.0.0.1:1', region: 'uk', code: 'ABC' });
    expect(ok.config).toEqual({ base_url: 'http://127.0.0.1:1', region: 'uk', code: 'ABC' });
    await expect(context(spec, { base_url: 'http://127.0.0.1:1', region: 'us' })).rejects.toThrow(
      /region must be one of au, uk/,
    );
    await expect(context(spec, { base_url: 'http://127.0.0.1:1', code: 'abc' })).rejects.toThrow(
      /code does not match \^\[A-Z\]\{3\}\$/,
    );
    await expect(context(spec, { base_url: 'relative/path' })).rejects.toMatchObject({
      code: 'RQ1007',
      message: expect.stringMatching(/base_url renders to "relative\/path", which is not a URL/),
    });
  });
});

describe('renderParams and renderHeaders', () => {
  const b = { config: { size: 25, tags: ['a', 'b'], empty: '' }, cursor: null, secrets: { token: 't0k' } };

  it('keeps a single expression typed, repeats list values, stringifies objects and drops empty renders', async () => {
    const out: Array<[string, string]> = [['existing', '1']];
    await renderParams(
      {
        per_page: '{{ $config.size }}',
        sort: 'updated_at',
        'status[]': ['open', '{{ $config.empty }}', 'resolved'],
        since: '{{ $cursor }}',
        blank: '{{ $config.empty }}',
        tags: '{{ $config.tags }}',
        exact: true,
        limit: 7,
        label: 'page-{{ $config.size }}',
      },
      b,
      out,
    );
    expect(out).toEqual([
      ['existing', '1'],
      ['per_page', '25'],
      ['sort', 'updated_at'],
      ['status[]', 'open'],
      ['status[]', 'resolved'],
      ['tags', '["a","b"]'],
      ['exact', 'true'],
      ['limit', '7'],
      ['label', 'page-25'],
    ]);
  });

  it('renders nothing for absent params or headers', async () => {
    const params: Array<[string, string]> = [];
    const headers: Record<string, string> = {};
    await renderParams(undefined, b, params);
    await renderHeaders(undefined, b, headers);
    expect(params).toEqual([]);
    expect(headers).toEqual({});
  });

  it('renders header templates and leaves out headers that render empty', async () => {
    const headers: Record<string, string> = { Accept: 'text/plain' };
    await renderHeaders(
      { Accept: 'application/json', 'X-Token': 'Token {{ $secrets.token }}', 'X-Empty': '{{ $config.empty }}' },
      b,
      headers,
    );
    expect(headers).toEqual({ Accept: 'application/json', 'X-Token': 'Token t0k' });
  });

  it("renders the Cliniko User-Agent from the connection's settings and defaults", async () => {
    const c = await context(cliniko, { contact_email: 'ops@example.com' }, { api_key: 'k-au1' });
    const headers: Record<string, string> = {};
    await renderHeaders(mergeRequest(cliniko, { method: 'GET' } as RequestSpec).headers, c.bindings, headers);
    expect(headers).toEqual({ Accept: 'application/json', 'User-Agent': 'Routiq Pipeline (ops@example.com)' });
  });
});

describe('applyAuth', () => {
  const b = { secrets: { key: 'k-123', user: 'u', pass: 'p:w' } };
  const apply = async (auth: AuthSpec) => {
    const headers: Record<string, string> = {};
    const params: Array<[string, string]> = [];
    await applyAuth(auth, b, headers, params);
    return { headers, params };
  };

  it('none adds nothing', async () => {
    expect(await apply({ type: 'none' })).toEqual({ headers: {}, params: [] });
  });

  it('api_key goes in a header or in the query', async () => {
    expect(
      await apply({ type: 'api_key', in: 'header', name: 'api_access_token', value: '{{ $secrets.key }}' }),
    ).toEqual({
      headers: { api_access_token: 'k-123' },
      params: [],
    });
    expect(await apply({ type: 'api_key', in: 'query', name: 'api_key', value: '{{ $secrets.key }}' })).toEqual({
      headers: {},
      params: [['api_key', 'k-123']],
    });
  });

  it('bearer and basic set Authorization (basic: base64 of user:password, empty password allowed)', async () => {
    expect((await apply({ type: 'bearer', token: '{{ $secrets.key }}' })).headers).toEqual({
      Authorization: 'Bearer k-123',
    });
    const basic = await apply({ type: 'basic', username: '{{ $secrets.user }}', password: '{{ $secrets.pass }}' });
    expect(basic.headers.Authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    const keyOnly = await apply({ type: 'basic', username: '{{ $secrets.key }}', password: '' });
    expect(Buffer.from(keyOnly.headers.Authorization!.slice(6), 'base64').toString()).toBe('k-123:');
  });

  describe('OAuth2 against a token endpoint', () => {
    let server: http.Server;
    let tokenUrl: string;
    const forms: URLSearchParams[] = [];
    let status = 200;
    let issued = 0;
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        let data = '';
        req.on('data', (c) => (data += c));
        req.on('end', () => {
          forms.push(new URLSearchParams(data));
          if (status !== 200) return void res.writeHead(status).end('{"error":"invalid_client"}');
          issued++;
          const body = req.url === '/no-token' ? {} : { access_token: `tok-${issued}`, expires_in: 3600 };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('client credentials: posts the form once, then reuses the cached token', async () => {
      const auth: AuthSpec = {
        type: 'oauth2_client_credentials',
        token_url: `${tokenUrl}/cc`,
        client_id: 'client-a',
        client_secret: '{{ $secrets.pass }}',
        scopes: ['read', 'write'],
      };
      const first = await apply(auth);
      const second = await apply(auth);
      expect(first.headers).toEqual({ Authorization: 'Bearer tok-1' });
      expect(second.headers).toEqual({ Authorization: 'Bearer tok-1' });
      expect(forms).toHaveLength(1);
      expect(Object.fromEntries(forms[0]!)).toEqual({
        client_id: 'client-a',
        client_secret: 'p:w',
        grant_type: 'client_credentials',
        scope: 'read write',
      });
    });

    it('refresh token: sends grant_type=refresh_token with the rendered token', async () => {
      forms.length = 0;
      const r = await apply({
        type: 'oauth2_refresh_token',
        token_url: `${tokenUrl}/rt`,
        client_id: 'client-b',
        refresh_token: '{{ $secrets.key }}',
      });
      expect(r.headers.Authorization).toMatch(/^Bearer tok-\d+$/);
      expect(Object.fromEntries(forms[0]!)).toEqual({
        client_id: 'client-b',
        grant_type: 'refresh_token',
        refresh_token: 'k-123',
      });
    });

    it('an error status or a body without access_token is RQ3004', async () => {
      status = 401;
      await expect(
        apply({
          type: 'oauth2_client_credentials',
          token_url: `${tokenUrl}/denied`,
          client_id: 'c',
          client_secret: 's',
        }),
      ).rejects.toMatchObject({ code: 'RQ3004', message: 'token endpoint answered HTTP 401' });
      status = 200;
      await expect(
        apply({
          type: 'oauth2_client_credentials',
          token_url: `${tokenUrl}/no-token`,
          client_id: 'c',
          client_secret: 's',
        }),
      ).rejects.toMatchObject({ code: 'RQ3004', message: 'token endpoint returned no access_token' });
    });
  });
});

describe('mergeRequest', () => {
  it('stream headers and params override connector defaults; the stream timeout wins, else the default applies', () => {
    const spec = {
      ...cliniko,
      request: { headers: { Accept: 'application/json', 'X-A': '1' }, params: { per_page: 100 }, timeout_ms: 9000 },
    } as ConnectorSpec;
    const merged = mergeRequest(spec, {
      method: 'GET',
      path: '/patients',
      headers: { 'X-A': '2' },
      params: { sort: 'id' },
    } as RequestSpec);
    expect(merged).toEqual({
      method: 'GET',
      path: '/patients',
      headers: { Accept: 'application/json', 'X-A': '2' },
      params: { per_page: 100, sort: 'id' },
      timeout_ms: 9000,
    });
    expect(mergeRequest(spec, { method: 'GET', timeout_ms: 500 } as RequestSpec).timeout_ms).toBe(500);
    const bare = mergeRequest({ ...cliniko, request: {} } as ConnectorSpec, { method: 'POST' } as RequestSpec);
    expect(bare).toEqual({ method: 'POST', headers: {}, params: {} });
  });
});
