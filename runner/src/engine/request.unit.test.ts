import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OrganizationConfig } from '../config/types.ts';
import { loadSpecFile } from '../spec/load.ts';
import type { ConnectorSpec } from '../spec/types.ts';
import { buildConnectionContext } from './connection.ts';
import type { HttpClient, HttpRequest, HttpResponse } from './http.ts';
import { paginate } from './paginate.ts';
import { buildRequest, deepMerge, setPath } from './request.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'routiq-request-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A search API in the style of Intercom/HubSpot: filter and cursor in a POST body. */
const SPEC = `spec_version: 1
name: searchy
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
    token: { type: string, secret: true }
  required: [base_url, token]
base_url: "{{ $config.base_url }}"
auth: { type: bearer, token: "{{ $secrets.token }}" }
request:
  headers: { X-Key: "{{ $secrets.token }}", Accept: application/json }
  allowed_origins: ["https://files.example.com"]
streams:
  - name: contacts
    request:
      path: /contacts/search
      method: POST
      body:
        query: { field: role, operator: "=", value: user }
        pagination: { per_page: "{{ 2 * 25 }}" }
    records: data
    pagination: { type: cursor, token: pages.next.starting_after, param: pagination.starting_after, in: body }
    incremental:
      cursor_field: updated_at
      type: unix_seconds
      order: asc
      send:
        body:
          query: { field: updated_at, operator: ">", value: "{{ $cursor_unix }}" }
    map: [{ target: practitioners, expression: '{ "external_id": $string(id), "display_name": name, "metadata": { "updated_at": updated_at } }' }]
  - name: linked
    request: { path: /linked }
    pagination: { type: next_link, path: next, cross_origin: refuse }
    map: [{ target: practitioners, expression: '{ "external_id": $string(id), "display_name": name }' }]
`;

function load(): ConnectorSpec {
  const f = path.join(dir, 'searchy.yaml');
  writeFileSync(f, SPEC);
  return loadSpecFile(f).spec;
}

const org: OrganizationConfig = {
  id: 'org_req',
  name: 'Req',
  defaultCountry: 'AU',
  timezone: 'UTC',
  settings: {},
  connections: [],
};

async function ctx() {
  const spec = load();
  const conn = {
    connector: 'searchy',
    name: 'searchy',
    enabled: true,
    config: { base_url: 'https://api.example.com' },
    secrets: { token: '${T}' },
    allowInsecureHttp: false,
  };
  return { spec, c: await buildConnectionContext(spec, org, conn, { token: 'tok-1' }) };
}

function opts(
  c: Awaited<ReturnType<typeof ctx>>['c'],
  spec: ConnectorSpec,
  stream: string,
  hasCursor: boolean,
  b = {},
) {
  return {
    c,
    stream: spec.streams.find((s) => s.name === stream) as ConnectorSpec['streams'][number],
    bindings: { ...c.bindings, ...b },
    hasCursor,
    timeoutMs: 1000,
    hookContext: () => ({}) as never,
  };
}

describe('request bodies', () => {
  it('renders body templates (a whole `{{ }}` keeps its type) and sends the cursor page parameter in the body', async () => {
    const { spec, c } = await ctx();
    const r = await buildRequest(opts(c, spec, 'contacts', false), {
      query: [],
      body: [['pagination.starting_after', 'abc']],
      page: 2,
    });
    expect(r.method).toBe('POST');
    expect(r.body).toEqual({
      query: { field: 'role', operator: '=', value: 'user' },
      pagination: { per_page: 50, starting_after: 'abc' },
    });
    expect(r.headers.Authorization).toBe('Bearer tok-1');
  });

  it('merges incremental.send.body when a cursor exists', async () => {
    const { spec, c } = await ctx();
    const r = await buildRequest(opts(c, spec, 'contacts', true, { cursor_unix: 1700000000 }), { query: [], page: 1 });
    expect((r.body as { query: unknown }).query).toEqual({ field: 'updated_at', operator: '>', value: 1700000000 });
  });

  it('paginates a search API: each next token goes into the next request body', async () => {
    const { spec, c } = await ctx();
    const s = spec.streams[0] as ConnectorSpec['streams'][number];
    const bodies: unknown[] = [];
    const client = {
      async request(req: HttpRequest): Promise<HttpResponse> {
        bodies.push(req.body);
        const after = (req.body as { pagination?: { starting_after?: string } }).pagination?.starting_after;
        const body =
          after === undefined
            ? { data: [{ id: 1 }], pages: { next: { starting_after: 'c2' } } }
            : after === 'c2'
              ? { data: [{ id: 2 }], pages: { next: { starting_after: 'c3' } } }
              : { data: [{ id: 3 }], pages: {} };
        return { status: 200, headers: {}, bodyText: JSON.stringify(body), body, url: req.url };
      },
    } as unknown as HttpClient;
    const got: unknown[] = [];
    for await (const p of paginate({
      pagination: s.pagination,
      client,
      records: s.records,
      bindings: {},
      build: (query, follow, page, body) =>
        buildRequest(opts(c, spec, 'contacts', false), { query, follow, page, ...(body ? { body } : {}) }),
    }))
      got.push(...p.records);
    expect(got).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(bodies.map((b) => (b as { pagination: { starting_after?: string } }).pagination.starting_after)).toEqual([
      undefined,
      'c2',
      'c3',
    ]);
  });
});

describe('credentials stay with the connection origin', () => {
  it('refuses a pagination link to another origin (RQ3009) and never builds a request with the credentials', async () => {
    const { spec, c } = await ctx();
    await expect(
      buildRequest(opts(c, spec, 'linked', false), { query: [], follow: 'https://evil.example.net/next', page: 2 }),
    ).rejects.toMatchObject({ code: 'RQ3009' });
  });

  it('sends them to base_url and to an allowed origin', async () => {
    const { spec, c } = await ctx();
    const same = await buildRequest(opts(c, spec, 'linked', false), {
      query: [],
      follow: 'https://api.example.com/linked?page=2',
      page: 2,
    });
    expect(same.headers.Authorization).toBe('Bearer tok-1');
    const allowed = await buildRequest(opts(c, spec, 'linked', false), {
      query: [],
      follow: 'https://files.example.com/x',
      page: 2,
    });
    expect(allowed.headers['X-Key']).toBe('tok-1');
  });
});

describe('helpers', () => {
  it('deepMerge merges objects key by key and replaces the rest; setPath copies along a dotted path', () => {
    expect(deepMerge({ a: { b: 1, c: 2 }, d: [1] }, { a: { c: 3 }, d: [2] })).toEqual({ a: { b: 1, c: 3 }, d: [2] });
    const base = { p: { q: 1 } };
    expect(setPath(base, 'p.r', 2)).toEqual({ p: { q: 1, r: 2 } });
    expect(base).toEqual({ p: { q: 1 } });
  });
});
