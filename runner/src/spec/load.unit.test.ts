import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSchema } from '@routiq/schemas';
import { afterAll, describe, expect, it } from 'vitest';
import { lintSpecText } from '../lint/index.ts';
import { loadSpecFile } from './load.ts';
import type { ConnectorSpec } from './types.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'routiq-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAP = `map: [{ target: practitioners, expression: '{ "external_id": id, "display_name": name }' }]`;

/** A spec that leaves out every defaulted key it can reach (the auth block varies: one auth type per spec). */
function spec(name: string, auth: string): string {
  return `spec_version: 1
name: ${name}
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
    api_key: { type: string, secret: true }
    region: { type: string }
  required: [base_url, api_key]
base_url: "{{ $config.base_url }}"
auth: ${auth}
rate_limits:
  budgets:
    - { name: all, requests: 10, per_seconds: 1 }
streams:
  - name: pages
    request: { path: /pages }
    records: data
    pagination: { type: page_number, size: 10 }
    incremental: { cursor_field: updated_at, type: datetime, order: asc, send: { params: { since: "{{ $cursor }}" } } }
    map: [{ target: practitioners, expression: '{ "external_id": id, "metadata": { "updated_at": updated_at } }' }]
  - name: offsets
    request: { path: /offsets, method: POST }
    pagination: { type: offset, limit: 50 }
    map: [{ target: practitioners, mode: patch, expression: '{ "external_id": id }' }]
  - name: links
    enabled: false
    request: { path: /links }
    pagination: { type: next_link }
    ${MAP}
  - name: windows
    parent: { stream: pages }
    request: { path: "/pages/{{ $parent.id }}/w" }
    pagination: { type: id_window, before_page_size: 5, after_page_size: 5 }
    incremental: { cursor_field: id, type: integer, order: none }
    ${MAP}
  - name: cursors
    request: { path: /cursors }
    pagination: { type: cursor, token: next, param: after }
    ${MAP}
webhooks:
  verify: { type: hmac_sha256, header: X-Sig, secret: "{{ $secrets.api_key }}" }
  events:
    - name: any
      when: "true"
      ${MAP}
`;
}

function load(name: string, auth: string): ConnectorSpec {
  const text = spec(name, auth);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  expect(lintSpecText(text, file).filter((f) => f.severity === 'error')).toEqual([]);
  return loadSpecFile(file).spec;
}

/** Where the connector schema declares a `default` (a property called `default` is not one). */
function countDefaults(node: unknown): number {
  if (Array.isArray(node)) return node.reduce((n: number, x) => n + countDefaults(x), 0);
  if (!node || typeof node !== 'object') return 0;
  let n = 'default' in node ? 1 : 0;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'default') continue;
    if (k === 'properties' && v && typeof v === 'object') for (const p of Object.values(v)) n += countDefaults(p);
    else n += countDefaults(v);
  }
  return n;
}

describe('loadSpecFile', () => {
  const a = load('with_api_key', `{ type: api_key, name: X-Key, value: "{{ $secrets.api_key }}" }`);
  const b = load('with_basic', `{ type: basic, username: "{{ $secrets.api_key }}" }`);
  const [pages, offsets, links, windows, cursors] = a.streams;

  // One entry per `default` in schemas/connector.schema.json: [where, loaded value, the schema's default].
  const filled: Array<[string, unknown, unknown]> = [
    ['connection.properties.region.secret', a.connection.properties.region?.secret, false],
    ['auth.in (api_key)', a.auth.type === 'api_key' && a.auth.in, 'header'],
    ['auth.password (basic)', b.auth.type === 'basic' && b.auth.password, ''],
    ['rate_limits.budgets[].scope', a.rate_limits?.budgets?.[0]?.scope, 'credential'],
    ['streams[].request.method', pages?.request.method, 'GET'],
    ['page_number.param', pages?.pagination.type === 'page_number' && pages.pagination.param, 'page'],
    ['page_number.start', pages?.pagination.type === 'page_number' && pages.pagination.start, 1],
    ['offset.offset_param', offsets?.pagination.type === 'offset' && offsets.pagination.offset_param, 'offset'],
    ['offset.limit_param', offsets?.pagination.type === 'offset' && offsets.pagination.limit_param, 'limit'],
    ['next_link.from', links?.pagination.type === 'next_link' && links.pagination.from, 'body'],
    ['next_link.cross_origin', links?.pagination.type === 'next_link' && links.pagination.cross_origin, 'refuse'],
    ['cursor.in', cursors?.pagination.type === 'cursor' && cursors.pagination.in, 'query'],
    ['id_window.id_field', windows?.pagination.type === 'id_window' && windows.pagination.id_field, 'id'],
    ['id_window.before_param', windows?.pagination.type === 'id_window' && windows.pagination.before_param, 'before'],
    ['id_window.after_param', windows?.pagination.type === 'id_window' && windows.pagination.after_param, 'after'],
    ['incremental.stop_when_older', pages?.incremental?.stop_when_older, false],
    ['incremental.client_filter', pages?.incremental?.client_filter, false],
    ['parent.only_changed', windows?.parent?.only_changed, true],
    ['streams[].map[].mode', pages?.map[0]?.mode, 'upsert'],
    ['streams[].enabled', pages?.enabled, true],
    ['hmac_sha256.prefix', a.webhooks?.verify.type === 'hmac_sha256' && a.webhooks.verify.prefix, ''],
    [
      'hmac_sha256.tolerance_seconds',
      a.webhooks?.verify.type === 'hmac_sha256' && a.webhooks.verify.tolerance_seconds,
      300,
    ],
    ['webhooks.events[].map[].mode', a.webhooks?.events[0]?.map[0]?.mode, 'upsert'],
  ];

  it('fills in every schema default the spec leaves out', () => {
    expect(filled.length).toBe(countDefaults(loadSchema('connector.schema.json')));
    for (const [where, got, want] of filled) expect(got, where).toEqual(want);
  });

  it('keeps the values a spec sets', () => {
    expect(offsets?.request.method).toBe('POST');
    expect(offsets?.map[0]?.mode).toBe('patch');
    expect(links?.enabled).toBe(false);
    expect(a.connection.properties.api_key?.secret).toBe(true);
  });

  it('adds no key the schema has no default for', () => {
    expect(Object.keys(pages?.request ?? {}).sort()).toEqual(['method', 'path']);
    expect(pages?.parent).toBeUndefined();
    expect(a.retry).toBeUndefined();
  });
});
