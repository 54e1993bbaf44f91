/**
 * The one table of `$bindings` a spec expression may read, per area of the spec. Lint reports a binding used
 * outside its areas, and the engine builds every area's bindings through `scopeBindings`, so the two cannot
 * disagree: what lint accepts is bound, what lint refuses is not.
 */

/** Where an expression is evaluated, which decides the bindings it gets. */
export const BINDING_AREAS = [
  /** `base_url`, `rate_limits` (rendered once per connection). */
  'connection',
  /** A stream's own `request` templates (path, params, headers, body). */
  'request',
  /**
   * The connector-wide `request` (params, headers, allowed_origins) and `auth`: rendered into every stream's
   * requests, so only what every stream has (never its cursor or parent).
   */
  'connector_request',
  /** `pagination` expressions (token, next link, stop condition). */
  'pagination',
  /** `incremental.send`: sent only when a cursor exists. */
  'incremental',
  /**
   * `incremental.start`: rendered once per pass (and partition) when no cursor is stored, before the first page.
   * It becomes the stored cursor, so no secrets.
   */
  'incremental_start',
  /** `errors[]` rules (body, message): evaluated against the response. */
  'errors',
  /** Expressions over a raw record: `records`, `primary_key`, `incremental.cursor_field`, `map[].input`. */
  'data',
  /** A child stream's `parent.key`: evaluated on the parent's record (`$` is that record), so no `$parent`. */
  'parent_key',
  /** `map[].expression` and `map[].when` of streams. */
  'mapping',
  /** `webhooks.verify` (token, secret, signed message). */
  'webhook_verify',
  /** `webhooks.events[].when`, `records`. */
  'webhook_data',
  /** `webhooks.events[].map`. */
  'webhook_mapping',
] as const;
export type BindingArea = (typeof BINDING_AREAS)[number];

export interface BindingInfo {
  areas: readonly BindingArea[];
  /** Bound only in a stream with this property (else lint: not bound here). */
  requires?: 'child_stream' | 'incremental_stream';
  description: string;
}

const STREAM_REQUESTS = ['request', 'pagination', 'incremental'] as const;
const EVERYWHERE = BINDING_AREAS;

export const BINDINGS = {
  config: { areas: EVERYWHERE, description: "the connection's non-secret settings (`config:` in the config file)" },
  secrets: {
    // Never where a value could be copied into stored rows, dead letters or logs.
    areas: ['connection', ...STREAM_REQUESTS, 'connector_request', 'webhook_verify'],
    description: "the connection's secrets (only in requests, auth and webhook verification)",
  },
  org: { areas: EVERYWHERE, description: 'the organization: `id`, `name`, `default_country`, `timezone`' },
  connector: { areas: EVERYWHERE, description: "the connector's name" },
  base_url: {
    areas: [...STREAM_REQUESTS, 'connector_request', 'incremental_start', 'errors'],
    description: 'the rendered `base_url` (no trailing slash)',
  },
  parent: {
    areas: [...STREAM_REQUESTS, 'incremental_start', 'data', 'mapping'],
    requires: 'child_stream',
    description: "the parent record of a child stream's partition",
  },
  cursor: {
    areas: STREAM_REQUESTS,
    requires: 'incremental_stream',
    description: 'the stored cursor (minus lookback) in the type of `incremental.type`; undefined on a first pass',
  },
  cursor_iso: {
    areas: STREAM_REQUESTS,
    requires: 'incremental_stream',
    description: 'the cursor as ISO-8601 (seconds)',
  },
  cursor_unix: { areas: STREAM_REQUESTS, requires: 'incremental_stream', description: 'the cursor as Unix seconds' },
  page: {
    areas: [...STREAM_REQUESTS, 'connector_request'],
    description: 'the 1-based number of the page being requested',
  },
  run_started_at: {
    areas: [...STREAM_REQUESTS, 'connector_request', 'incremental_start'],
    description: 'when this pass of the stream started (ISO-8601)',
  },
  response: {
    areas: ['pagination', 'errors'],
    description: 'the response: `status`, `headers` (lower-case names), `body` (parsed JSON)',
  },
  records: { areas: ['pagination'], description: 'the records extracted from the current page' },
  headers: {
    areas: ['webhook_verify', 'webhook_data', 'webhook_mapping'],
    description: 'the webhook delivery headers (lower-case names)',
  },
  body_raw: { areas: ['webhook_verify'], description: 'the webhook body as received (for signatures)' },
} as const satisfies Record<string, BindingInfo>;

export type BindingName = keyof typeof BINDINGS;
export const BINDING_NAMES = Object.keys(BINDINGS) as BindingName[];

export function bindingInfo(name: string): BindingInfo | undefined {
  return (BINDINGS as Record<string, BindingInfo>)[name];
}

/** Names bound in an area. */
export function bindingsOf(area: BindingArea): BindingName[] {
  return BINDING_NAMES.filter((n) => (BINDINGS[n].areas as readonly string[]).includes(area));
}

/** Only the values the table binds in `area`: the engine never hands an expression more than lint promised. */
export function scopeBindings(area: BindingArea, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of bindingsOf(area)) if (n in values) out[n] = values[n];
  return out;
}
