/** A stream's HTTP request for one page: templates rendered, incremental parts, pagination parts, auth, hook. */
import { getHook, type HookContext, type HookRequest } from '@routiq/sdk';
import { scopeBindings } from '../spec/bindings.ts';
import type { StreamSpec } from '../spec/types.ts';
import { applyAuth, type ConnectionContext, mergeRequest, renderHeaders, renderParams } from './connection.ts';
import { type Bindings, isTemplate, render, renderString } from './expr.ts';
import { HttpFailure, type HttpRequest } from './http.ts';

/** What the paginator adds to a page's request. */
export interface PageParts {
  /** Query parameters (they replace the stream's own parameters of the same name). */
  query: Array<[string, string]>;
  /** Values set in the JSON body at a dotted path (search APIs take their cursor there). */
  body?: Array<[string, unknown]>;
  /** A full URL to follow instead of building one (next_link pagination). */
  follow?: string | undefined;
  /** The 1-based number of the page, bound as $page. */
  page: number;
}

const originOf = (u: string) => (URL.canParse(u) ? new URL(u).origin : u);

/** base_url's origin, or one the spec lists in request.allowed_origins. */
async function isTrustedOrigin(c: ConnectionContext, url: string, b: Bindings): Promise<boolean> {
  const o = originOf(url);
  if (o === originOf(c.baseUrl)) return true;
  for (const tpl of c.spec.request?.allowed_origins ?? []) if (originOf(await renderString(tpl, b)) === o) return true;
  return false;
}

export interface BuildRequestOptions {
  c: ConnectionContext;
  stream: StreamSpec;
  /** The stream's request bindings (spec/bindings.ts area `request`), without $page. */
  bindings: Bindings;
  /** A stored cursor exists: `incremental.send` applies. */
  hasCursor: boolean;
  timeoutMs: number;
  hookContext: () => HookContext;
}

export async function buildRequest(o: BuildRequestOptions, parts: PageParts): Promise<HttpRequest> {
  const { c, stream: s } = o;
  const b: Bindings = { ...o.bindings, page: parts.page };
  // The connector-wide request and auth apply to every stream: they get only what every stream has (no cursor,
  // no parent), whatever the stream. A stream's own param or header replaces one of the same name, with its bindings.
  const wide = scopeBindings('connector_request', b);
  const req = mergeRequest(c.spec, s.request);
  const by = (own: object | undefined, k: string) => (own && Object.hasOwn(own, k) ? b : wide);
  const headers: Record<string, string> = {};
  const params: Array<[string, string]> = [];
  let url: string;
  if (parts.follow) {
    url = parts.follow;
  } else {
    const path = req.path ? await renderString(req.path, b) : '';
    url = /^https?:\/\//.test(path) ? path : `${c.baseUrl}${path.startsWith('/') || !path ? '' : '/'}${path}`;
    for (const [k, v] of Object.entries(req.params ?? {}))
      await renderParams({ [k]: v }, by(s.request.params, k), params);
    if (o.hasCursor && s.incremental?.send?.params) await renderParams(s.incremental.send.params, b, params);
    const overridden = new Set(parts.query.map(([k]) => k));
    for (let i = params.length - 1; i >= 0; i--)
      if (overridden.has((params[i] as [string, string])[0])) params.splice(i, 1);
    params.push(...parts.query);
  }
  for (const [k, v] of Object.entries(req.headers ?? {}))
    await renderHeaders({ [k]: v }, by(s.request.headers, k), headers);
  if (o.hasCursor && s.incremental?.send?.headers) await renderHeaders(s.incremental.send.headers, b, headers);
  // Credentials go only to the connection's own origins; a link elsewhere is refused or followed bare.
  const trusted = await isTrustedOrigin(c, url, wide);
  if (trusted) {
    await applyAuth(c.spec.auth, wide, headers, params);
  } else {
    const policy = s.pagination.type === 'next_link' && parts.follow ? s.pagination.cross_origin : 'refuse';
    if (policy === 'refuse')
      throw new HttpFailure(
        'permanent',
        `${parts.follow ? 'pagination link' : 'request'} to ${originOf(url)} is outside the connection's origins (${originOf(c.baseUrl)}); credentials are never sent there`,
        undefined,
        undefined,
        'RQ3009',
      );
    for (const [k, tpl] of Object.entries(mergeRequest(c.spec, s.request).headers ?? {}))
      if (tpl.includes('$secrets')) delete headers[k];
  }
  let body: unknown = req.body === undefined ? undefined : await renderValue(req.body, b);
  const sendBody = s.incremental?.send?.body;
  if (o.hasCursor && sendBody !== undefined) body = deepMerge(body, await renderValue(sendBody, b));
  for (const [path, v] of parts.body ?? []) body = setPath(body, path, v);
  let out: HttpRequest = {
    method: req.method,
    url,
    headers,
    searchParams: params,
    ...(body !== undefined ? { body } : {}),
    timeoutMs: req.timeout_ms ?? o.timeoutMs,
  };
  if (s.hooks?.before_request) {
    const h = getHook(s.hooks.before_request, 'before_request');
    if (h) {
      const hr: HookRequest = {
        method: out.method,
        url: out.url,
        headers: out.headers,
        searchParams: out.searchParams,
        ...(out.body !== undefined ? { body: out.body } : {}),
      };
      // The hook sees where the stream is: its cursor ($cursor), partition parent and the page being built.
      const cursor = o.bindings.cursor as string | number | undefined;
      const ctx: HookContext = {
        ...o.hookContext(),
        ...(cursor !== undefined && cursor !== null ? { cursor } : {}),
        ...(o.bindings.parent !== undefined ? { parent: o.bindings.parent } : {}),
        pagination: {
          page: parts.page,
          params: parts.query,
          body: parts.body ?? [],
          ...(parts.follow ? { follow: parts.follow } : {}),
        },
      };
      out = { ...out, ...(await h(hr, ctx)) };
    }
  }
  return out;
}

/** Render every template string in a JSON value; `"{{ expr }}"` alone keeps the expression's type. */
export async function renderValue(v: unknown, b: Bindings): Promise<unknown> {
  if (typeof v === 'string') return isTemplate(v) ? render(v, b) : v;
  if (Array.isArray(v)) return Promise.all(v.map((x) => renderValue(x, b)));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const r = await renderValue(x, b);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Objects merge key by key; anything else in `b` replaces `a`. */
export function deepMerge(a: unknown, b: unknown): unknown {
  if (!isObject(a) || !isObject(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
  return out;
}

/** Set `a.b.c` in a JSON object (copying along the path). */
export function setPath(target: unknown, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const base = isObject(target) ? { ...target } : {};
  if (head === undefined) return base;
  base[head] = rest.length ? setPath(base[head], rest.join('.'), value) : value;
  return base;
}
