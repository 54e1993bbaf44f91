import got from 'got';
import type { ConnectionConfig, OrganizationConfig } from '../config/types.ts';
import { RoutiqError } from '../errors/registry.ts';
import type { AuthSpec, ConnectorSpec, Headers, Params, RequestSpec } from '../spec/types.ts';
import { type Bindings, render, renderString } from './expr.ts';

/** Everything a request of one organization's connection needs, resolved once per run. */
export interface ConnectionContext {
  org: OrganizationConfig;
  conn: ConnectionConfig;
  spec: ConnectorSpec;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  baseUrl: string;
  bindings: Bindings;
}

/** Validate a connection's settings against the connector's connection schema and build the bindings. */
export async function buildConnectionContext(
  spec: ConnectorSpec,
  org: OrganizationConfig,
  conn: ConnectionConfig,
  secrets: Record<string, string>,
): Promise<ConnectionContext> {
  const where = `organizations[${org.id}].connections[${conn.name}]`;
  const config: Record<string, unknown> = {};
  const props = spec.connection.properties;
  for (const key of Object.keys(conn.config)) {
    const p = props[key];
    if (!p)
      throw new RoutiqError(
        'RQ1007',
        `config.${key} is not a setting of connector ${spec.name} (settings: ${Object.keys(props).join(', ')})`,
        { where },
      );
    if (p.secret)
      throw new RoutiqError(
        'RQ1007',
        `${key} is a secret: put it under secrets: as a \${ENV_VAR} reference, not under config:`,
        { where },
      );
  }
  for (const key of Object.keys(secrets)) {
    const p = props[key];
    if (!p?.secret)
      throw new RoutiqError('RQ1007', `secrets.${key} is not a secret setting of connector ${spec.name}`, { where });
  }
  for (const [key, p] of Object.entries(props)) {
    const v = p.secret ? secrets[key] : (conn.config[key] ?? p.default);
    if (v === undefined || v === '') {
      if (spec.connection.required?.includes(key)) {
        throw new RoutiqError(
          'RQ1007',
          `${p.secret ? 'secrets' : 'config'}.${key} is required by connector ${spec.name}${p.description ? ` (${p.description})` : ''}`,
          { where },
        );
      }
      continue;
    }
    checkType(key, v, p.type, where);
    if (p.enum && !p.enum.includes(v))
      throw new RoutiqError('RQ1007', `${key} must be one of ${p.enum.join(', ')}`, { where });
    if (p.pattern && !new RegExp(p.pattern).test(String(v)))
      throw new RoutiqError('RQ1007', `${key} does not match ${p.pattern}`, { where });
    if (p.format === 'uri' && !URL.canParse(String(v)))
      throw new RoutiqError('RQ1007', `${key} must be a URL, got "${String(v)}"`, { where });
    if (p.format === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(String(v)))
      throw new RoutiqError('RQ1007', `${key} must be an email address`, { where });
    if (!p.secret) config[key] = v;
  }
  const bindings: Bindings = {
    config,
    secrets,
    org: { id: org.id, name: org.name, default_country: org.defaultCountry, timezone: org.timezone },
    connector: spec.name,
  };
  const baseUrl = (await renderString(spec.base_url, bindings)).replace(/\/+$/, '');
  if (!URL.canParse(baseUrl))
    throw new RoutiqError('RQ1007', `base_url renders to "${baseUrl}", which is not a URL`, { where });
  bindings.base_url = baseUrl;
  return { org, conn, spec, config, secrets, baseUrl, bindings };
}

function checkType(key: string, v: unknown, type: string, where: string): void {
  const ok =
    type === 'string'
      ? typeof v === 'string'
      : type === 'boolean'
        ? typeof v === 'boolean'
        : type === 'integer'
          ? Number.isInteger(v)
          : typeof v === 'number';
  if (!ok) throw new RoutiqError('RQ1007', `${key} must be a ${type}, got ${JSON.stringify(v)}`, { where });
}

/** Render params: list values repeat the parameter; null/empty renders are dropped. */
export async function renderParams(
  params: Params | undefined,
  b: Bindings,
  out: Array<[string, string]>,
): Promise<void> {
  for (const [k, raw] of Object.entries(params ?? {})) {
    const values = Array.isArray(raw) ? raw : [raw];
    for (const v of values) {
      const r = typeof v === 'string' ? await render(v, b) : v;
      if (r === undefined || r === null || r === '') continue;
      out.push([k, typeof r === 'object' ? JSON.stringify(r) : String(r)]);
    }
  }
}

export async function renderHeaders(h: Headers | undefined, b: Bindings, out: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(h ?? {})) {
    const r = await renderString(v, b);
    if (r !== '') out[k] = r;
  }
}

const tokenCache = new Map<string, { token: string; expires: number }>();

/** Apply the auth spec to a request. */
export async function applyAuth(
  auth: AuthSpec,
  b: Bindings,
  headers: Record<string, string>,
  params: Array<[string, string]>,
): Promise<void> {
  switch (auth.type) {
    case 'none':
      return;
    case 'api_key': {
      const v = await renderString(auth.value, b);
      if (auth.in === 'header') headers[auth.name] = v;
      else params.push([auth.name, v]);
      return;
    }
    case 'bearer':
      headers.Authorization = `Bearer ${await renderString(auth.token, b)}`;
      return;
    case 'basic': {
      const user = await renderString(auth.username, b);
      const pass = await renderString(auth.password, b);
      headers.Authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      return;
    }
    case 'oauth2_client_credentials':
    case 'oauth2_refresh_token': {
      const tokenUrl = await renderString(auth.token_url, b);
      const clientId = await renderString(auth.client_id, b);
      const key = `${tokenUrl}|${clientId}`;
      const hit = tokenCache.get(key);
      if (hit && hit.expires > Date.now() + 30_000) {
        headers.Authorization = `Bearer ${hit.token}`;
        return;
      }
      const form: Record<string, string> = { client_id: clientId };
      if (auth.client_secret) form.client_secret = await renderString(auth.client_secret, b);
      if (auth.type === 'oauth2_client_credentials') {
        form.grant_type = 'client_credentials';
        if (auth.scopes?.length) form.scope = auth.scopes.join(' ');
      } else {
        form.grant_type = 'refresh_token';
        form.refresh_token = await renderString(auth.refresh_token, b);
      }
      const res = await got.post(tokenUrl, {
        form,
        throwHttpErrors: false,
        timeout: { request: 30_000 },
        retry: { limit: 1 },
      });
      if (res.statusCode >= 400)
        throw new RoutiqError('RQ3004', `token endpoint answered HTTP ${res.statusCode}`, { where: tokenUrl });
      const body = JSON.parse(res.body) as { access_token?: string; expires_in?: number };
      if (!body.access_token)
        throw new RoutiqError('RQ3004', 'token endpoint returned no access_token', { where: tokenUrl });
      tokenCache.set(key, { token: body.access_token, expires: Date.now() + (body.expires_in ?? 3600) * 1000 });
      headers.Authorization = `Bearer ${body.access_token}`;
      return;
    }
  }
}

/** Merge connector-level request defaults with a stream request. */
export function mergeRequest(spec: ConnectorSpec, req: RequestSpec): RequestSpec {
  return {
    ...req,
    headers: { ...(spec.request?.headers ?? {}), ...(req.headers ?? {}) },
    params: { ...(spec.request?.params ?? {}), ...(req.params ?? {}) },
    ...((req.timeout_ms ?? spec.request?.timeout_ms) ? { timeout_ms: req.timeout_ms ?? spec.request?.timeout_ms } : {}),
  } as RequestSpec;
}
