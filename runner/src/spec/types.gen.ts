// Generated from schemas/connector.schema.json by `npm run docs:gen` (runner/src/spec/generate-types.ts);
// do not edit. A spec as loaded: properties with a schema default are required (the loader fills them in).

/**
 * How every request is authenticated. Values must reference `$secrets`/`$config`; literal credentials are a lint error.
 */
export type AuthSpec =
  | {
      type: 'none';
    }
  | {
      /**
       * A key in a header or query parameter.
       */
      type: 'api_key';
      in: 'header' | 'query';
      /**
       * Header or parameter name, e.g. `api_access_token`.
       */
      name: string;
      /**
       * The key, e.g. `{{ $secrets.api_token }}`.
       */
      value: Template;
    }
  | {
      /**
       * `Authorization: Bearer <token>`.
       */
      type: 'bearer';
      /**
       * The token.
       */
      token: Template;
    }
  | {
      /**
       * HTTP Basic; many APIs take the key as the username.
       */
      type: 'basic';
      /**
       * User name.
       */
      username: Template;
      /**
       * Password (may be empty).
       */
      password: Template;
    }
  | {
      type: 'oauth2_client_credentials';
      /**
       * Token endpoint.
       */
      token_url: Template;
      /**
       * Client id.
       */
      client_id: Template;
      /**
       * Client secret.
       */
      client_secret: Template;
      scopes?: string[];
    }
  | {
      type: 'oauth2_refresh_token';
      /**
       * Token endpoint.
       */
      token_url: Template;
      /**
       * Client id.
       */
      client_id: Template;
      /**
       * Client secret.
       */
      client_secret?: Template;
      /**
       * Refresh token.
       */
      refresh_token: Template;
    };
export type ParamValue = Template | (number | boolean) | (Template | (number | boolean))[];
/**
 * What the engine does: retry (transient/rate_limited), stop the connection (auth), dead-letter (permanent), skip (ignore), accept (success).
 */
export type ErrorAction = 'success' | 'transient' | 'rate_limited' | 'auth' | 'permanent' | 'ignore';
/**
 * How to get the next page. Explicit: there is no auto-detection. Every strategy also stops on an empty page, and the engine fails a pass that loops (a page, cursor or link that comes back, an id window that does not move).
 */
export type PaginationSpec =
  | {
      /**
       * One request, one page.
       */
      type: 'none';
    }
  | {
      type: 'page_number';
      param: string;
      start: number;
      /**
       * Parameter that sets the page size, if the API has one.
       */
      size_param?: string;
      /**
       * Page size to ask for / the API's fixed page size. A shorter page ends the stream.
       */
      size: number;
      /**
       * Safety cap on pages per stream/partition and run (default 100000).
       */
      max_pages?: number;
      stop?: PaginationStop;
    }
  | {
      type: 'offset';
      offset_param: string;
      limit_param: string;
      limit: number;
      /**
       * Safety cap on pages per stream/partition and run (default 100000).
       */
      max_pages?: number;
      stop?: PaginationStop;
    }
  | {
      /**
       * A token in the body sent back as a parameter.
       */
      type: 'cursor';
      /**
       * JSONata on the response body giving the next token; null/empty ends the stream.
       */
      token: Jsonata;
      /**
       * Parameter that carries the token.
       */
      param: string;
      /**
       * Where the token goes: a query parameter, or the JSON body at the dotted path `param` (search APIs such as Intercom `pagination.starting_after`, HubSpot `after`).
       */
      in: 'query' | 'body';
      /**
       * Safety cap on pages per stream/partition and run (default 100000).
       */
      max_pages?: number;
      stop?: PaginationStop;
    }
  | {
      /**
       * Follow a URL given by the API (body path or RFC 8288 Link header).
       */
      type: 'next_link';
      from: 'body' | 'header';
      /**
       * With from=body: JSONata giving the next URL, e.g. `links.next`.
       */
      path?: Jsonata;
      /**
       * Safety cap on pages per stream/partition and run (default 100000).
       */
      max_pages?: number;
      stop?: PaginationStop;
      /**
       * A next link to an origin other than base_url's (or request.allowed_origins): refuse it with a clear error (RQ3009), or follow it without auth and without headers that use $secrets.
       */
      cross_origin: 'refuse' | 'without_credentials';
    }
  | {
      /**
       * Id-based windows (Chatwoot messages): without a cursor, the newest page and then `before=<smallest id>` backwards; with a cursor, `after=<largest id>` forwards.
       */
      type: 'id_window';
      /**
       * Record field holding the numeric id.
       */
      id_field: string;
      before_param: string;
      /**
       * Page size of a backwards page (a shorter page ends the walk).
       */
      before_page_size: number;
      after_param: string;
      /**
       * Page size of a forwards page.
       */
      after_page_size: number;
      /**
       * Safety cap on pages per stream/partition and run (default 100000).
       */
      max_pages?: number;
      stop?: PaginationStop;
    };
export type WebhookVerify =
  | {
      type: 'none';
    }
  | {
      type: 'hmac_sha256';
      header: string;
      prefix: string;
      /**
       * The shared secret.
       */
      secret: Template;
      /**
       * The signed string; bindings `$headers` (lower-case names) and `$body_raw`. Default: the raw body.
       */
      message?: Template;
      timestamp_header?: string;
      tolerance_seconds: number;
    }
  | {
      type: 'shared_token';
      /**
       * Header carrying the token.
       */
      header?: string;
      /**
       * Query parameter carrying the token. With both `header` and `query`, either place is accepted (the header first).
       */
      query?: string;
      /**
       * Expected token.
       */
      token: Template;
    };
/**
 * A string; `{{ expr }}` parts are JSONata. A string that is one `{{ expr }}` keeps the expression's type.
 */
export type Template = string;
/**
 * A JSONata expression.
 */
export type Jsonata = string;

/**
 * A platform described in YAML: connection settings, auth, requests, pagination, incremental cursors, parent→child streams, rate limits, error rules, webhooks and JSONata mappings into the unified schema. Templates are strings with `{{ jsonata }}` parts; bindings are `$config`, `$secrets`, `$org`, `$parent`, `$cursor`, `$page`, `$response`.
 */
export interface ConnectorSpec {
  /**
   * Version of this spec language. The engine keeps reading every older version.
   */
  spec_version: 1;
  /**
   * Connector name (its folder name); also the `source` written on rows.
   */
  name: string;
  /**
   * Connector version (semver), recorded on every row it writes (lineage).
   */
  version: string;
  title?: string;
  description?: string;
  documentation_url?: string;
  connection: ConnectionSpec;
  /**
   * Base URL, e.g. `{{ $config.base_url }}` or derived (Cliniko shard from the key suffix).
   */
  base_url: Template;
  auth: AuthSpec;
  request?: RequestDefaults;
  rate_limits?: RateLimitsSpec;
  errors?: ErrorRule[];
  retry?: RetrySpec;
  /**
   * @minItems 1
   */
  streams: StreamSpec[];
  webhooks?: WebhooksSpec;
  identity?: IdentitySpec;
}
/**
 * The per-organization connection settings: what `config:` and `secrets:` of a connection must hold.
 */
export interface ConnectionSpec {
  /**
   * Settings of one organization's connection.
   */
  properties: {
    [k: string]: ConnectionPropertySpec;
  };
  required?: string[];
}
export interface ConnectionPropertySpec {
  type: 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  /**
   * Comes from `secrets:` (an env reference), never from `config:`.
   */
  secret: boolean;
  format?: 'uri' | 'email' | 'hostname';
  pattern?: string;
  default?: unknown;
  enum?: unknown[];
  example?: unknown;
}
/**
 * Defaults for every request.
 */
export interface RequestDefaults {
  headers?: Headers;
  params?: Params;
  timeout_ms?: number;
  /**
   * Origins (scheme://host[:port]) besides base_url's that may receive the connection's credentials, e.g. a separate file host. Requests and pagination links to any other origin are refused or sent without credentials (see pagination `cross_origin`).
   *
   * Items: A string; `{{ expr }}` parts are JSONata. A string that is one `{{ expr }}` keeps the expression's type.
   */
  allowed_origins?: Template[];
}
/**
 * HTTP headers; values are templates.
 */
export interface Headers {
  /**
   * A string; `{{ expr }}` parts are JSONata. A string that is one `{{ expr }}` keeps the expression's type.
   */
  [k: string]: Template;
}
/**
 * Query parameters. A list value repeats the parameter (e.g. Cliniko `q[]`). Values are templates.
 */
export interface Params {
  [k: string]: ParamValue;
}
/**
 * Declared budgets (the engine paces requests to stay under them) and the signals a platform sends when they are exceeded.
 */
export interface RateLimitsSpec {
  budgets?: BudgetSpec[];
  /**
   * Header with seconds to wait (e.g. Retry-After).
   */
  retry_after_header?: string;
  /**
   * Header telling when the limit resets (Cliniko X-RateLimit-Reset, epoch seconds).
   */
  reset_header?: {
    name: string;
    format: 'epoch_seconds' | 'seconds' | 'http_date';
  };
  /**
   * Wait after a 429 that carries no hint (Chatwoot); may be a template reading a connection setting.
   */
  default_wait_ms?: number | Template;
}
export interface BudgetSpec {
  name: string;
  /**
   * Requests allowed per window; a template may read a connection setting (e.g. a self-hosted Chatwoot's configured limit).
   */
  requests: number | Template;
  per_seconds: number;
  /**
   * credential: shared by every connection using the same key (Cliniko: per user).
   */
  scope: 'credential' | 'connection' | 'global';
  /**
   * What identifies the credential for scope=credential (default: the auth value).
   */
  key?: Template;
  /**
   * Only requests whose path matches (per-endpoint limits, e.g. ManyChat).
   */
  match?: {
    /**
     * Regular expression on the request path.
     */
    path?: string;
  };
}
/**
 * Classifies a response. Rules run in order before the built-in defaults (429 rate_limited, 5xx transient, 401/403 auth, other 4xx permanent).
 */
export interface ErrorRule {
  /**
   * Status code(s) or class like `5xx`.
   */
  status?: number | number[] | string;
  /**
   * JSONata on the parsed body; the rule matches when truthy (e.g. ManyChat `status = 'error'`).
   */
  body?: Jsonata;
  body_contains?: string;
  action: ErrorAction;
  /**
   * Optional JSONata giving a readable error message from the body.
   */
  message?: Jsonata;
}
/**
 * Overrides of the engine's retry policy (exponential backoff, full jitter).
 */
export interface RetrySpec {
  max_retries?: number;
  base_delay_ms?: number;
  max_delay_ms?: number;
}
export interface StreamSpec {
  name: string;
  description?: string;
  request: RequestSpec;
  /**
   * JSONata on the response body giving the array of records, e.g. `data.payload` (default: the body itself when it is an array).
   */
  records?: Jsonata;
  /**
   * JSONata on the raw record giving its platform id (default `id`). Used for dead letters, dedup and lineage.
   */
  primary_key?: Jsonata;
  pagination: PaginationSpec;
  incremental?: IncrementalSpec;
  parent?: ParentSpec;
  deletions?: DeletionsSpec;
  /**
   * @minItems 1
   */
  map: MappingSpec[];
  hooks?: StreamHooks;
  enabled: boolean;
}
/**
 * An HTTP request. Stream requests inherit the connector-level `request` defaults.
 */
export interface RequestSpec {
  method: 'GET' | 'POST';
  /**
   * Path appended to base_url (or a full URL), e.g. `/patients` or `/conversations/{{ $parent.id }}/messages`.
   */
  path?: Template;
  params?: Params;
  headers?: Headers;
  /**
   * JSON body for POST (values are templates).
   */
  body?: unknown;
  timeout_ms?: number;
}
/**
 * Extra stop condition, checked after every page.
 */
export interface PaginationStop {
  /**
   * Stop after this page when this JSONata (bindings `$response`, `$records`, `$page`) is truthy.
   */
  when?: Jsonata;
}
/**
 * Incremental sync: a cursor per (organization, connector, stream[, parent]) in sync_state, advanced only in the transaction that writes the records that justify it.
 */
export interface IncrementalSpec {
  /**
   * JSONata on the raw record giving its cursor value, e.g. `updated_at` or `last_activity_at`.
   */
  cursor_field: Jsonata;
  /**
   * How cursor values compare. datetime = ISO-8601; unix_seconds = numbers of seconds (floats allowed).
   */
  type: 'datetime' | 'unix_seconds' | 'integer';
  /**
   * The order the request (as sent) returns records in. asc: the cursor is checkpointed after every page. desc/none: at the end of the stream or partition.
   */
  order: 'asc' | 'desc' | 'none';
  /**
   * ISO-8601 duration re-read before the cursor (overlap window for clock skew and same-second updates). Unchanged rows are not rewritten.
   */
  lookback?: string;
  /**
   * Cursor value for the first sync (default: everything).
   */
  start?: Template;
  /**
   * Request additions (params, headers, JSON body) used only when a cursor exists; `$cursor` is the cursor minus the lookback, formatted for the API (`$cursor_iso`, `$cursor_unix` also bound).
   */
  send?: {
    params?: Params;
    headers?: Headers;
    /**
     * Merged (object by object) into the JSON body when a cursor exists; values are templates. For search APIs whose filter lives in a POST body.
     */
    body?: unknown;
  };
  /**
   * For newest-first feeds: stop paging at the first record older than the cursor minus the lookback.
   */
  stop_when_older: boolean;
  /**
   * Drop records older than the cursor minus the lookback on our side (for APIs that cannot filter).
   */
  client_filter: boolean;
}
/**
 * Parent→child: this stream runs once per parent record (from a stream, or from a webhook event), with `$parent` bound and its own cursor per parent.
 */
export interface ParentSpec {
  /**
   * The parent stream's name.
   */
  stream?: string;
  /**
   * Or a webhook event name: each pushed record becomes a partition (enrichment of pushed ids, e.g. ManyChat subscribers).
   */
  webhook?: string;
  /**
   * JSONata on the parent record giving the partition key (default `id`).
   */
  key?: Jsonata;
  /**
   * Fetch children only for parents that changed (or whose children have not completed). Default true.
   */
  only_changed: boolean;
}
/**
 * Records deleted on the platform without any signal (no field, tombstone feed or webhook): detected as absent from a complete listing and soft-deleted (`deleted_at`). Top-level streams only.
 */
export interface DeletionsSpec {
  /**
   * absent_after_full_listing: after a complete listing (every page read to the end, no cursor, no failure), the rows of `targets` whose record this stream listed before and no longer returns get `deleted_at`. A partial, incremental or failed listing marks nothing; rows are never hard-deleted; a record that comes back clears the mark.
   */
  detect: 'absent_after_full_listing';
  /**
   * Unified tables whose rows are keyed by the record's primary key (their external_id). Default: the targets of this stream's mappings that take the record itself (no `input`).
   *
   * @minItems 1
   */
  targets?: (
    | 'patient_identities'
    | 'conversations'
    | 'messages'
    | 'attachments'
    | 'appointments'
    | 'practitioners'
    | 'appointment_types'
    | 'inboxes'
  )[];
  /**
   * For an incremental stream: when the last complete listing is older than this ISO-8601 duration (or there was none), the next pass ignores the cursor and lists everything, so deletions are found. Default: only a first sync or `--full-refresh` lists everything. A stream without `incremental` lists everything on every pass.
   */
  full_listing_every?: string;
}
/**
 * A mapping from a platform record to unified rows.
 */
export interface MappingSpec {
  /**
   * Unified table (schemas/unified/<target>.schema.json).
   */
  target:
    | 'patient_identities'
    | 'conversations'
    | 'messages'
    | 'attachments'
    | 'appointments'
    | 'practitioners'
    | 'appointment_types'
    | 'inboxes';
  /**
   * upsert inserts or updates by natural key; patch only updates rows that already exist (tombstone feeds such as Cliniko /deleted).
   */
  mode: 'upsert' | 'patch';
  /**
   * Only map records for which this is truthy.
   */
  when?: Jsonata;
  /**
   * JSONata selecting the expression's input inside the record (default the record), e.g. `meta.sender` to map a conversation's contact with the same expression as the contacts stream. Nothing is mapped when it is empty.
   */
  input?: Jsonata;
  /**
   * JSONata from the raw record (input) to one unified row or an array of rows. Bindings: `$parent`, `$config`, `$org`, `$connector`.
   */
  expression: Jsonata;
  /**
   * JSONata on the raw record giving the platform's own version of it (an `updated_at`; in webhook mappings also e.g. `$number($headers.'x-chatwoot-timestamp')`, the event time): a write carrying a version older than the stored row's is skipped, so a late, out-of-order or replayed delivery never rolls data back. Numbers are Unix seconds, strings ISO-8601. Without it, a record counts as current when it is fetched (its version is the fetch time). A clock with whole seconds should name the end of its second (`+ 0.999`): an event inside a second must not rank below a poll made earlier in that same second.
   */
  version?: Jsonata;
}
/**
 * Hooks called around this stream.
 */
export interface StreamHooks {
  /**
   * A hook registered in @routiq/sdk, e.g. `identity.match`.
   */
  before_request?: string;
  /**
   * A hook registered in @routiq/sdk, e.g. `identity.match`.
   */
  after_fetch?: string;
  /**
   * A hook registered in @routiq/sdk, e.g. `identity.match`.
   */
  after_map?: string;
}
/**
 * Pushed payloads: how they are authenticated and mapped.
 */
export interface WebhooksSpec {
  verify: WebhookVerify;
  /**
   * A header carrying the platform's delivery id (reused across its retries, e.g. Chatwoot `X-Chatwoot-Delivery`): `routiq serve` stores a delivery once and answers a repeat without processing it again.
   */
  delivery_id_header?: string;
  /**
   * @minItems 1
   */
  events: WebhookEventSpec[];
  /**
   * JSONata giving an idempotency key for a delivery (default: hash of the body).
   */
  dedup_key?: Jsonata;
}
export interface WebhookEventSpec {
  name: string;
  /**
   * JSONata on the payload selecting this event.
   */
  when: Jsonata;
  /**
   * JSONata giving the record(s) in the payload (default the payload).
   */
  records?: Jsonata;
  /**
   * @minItems 1
   */
  map: MappingSpec[];
}
/**
 * Identity resolution hook for patient_identities rows (default `identity.match`).
 */
export interface IdentitySpec {
  /**
   * A hook registered in @routiq/sdk, e.g. `identity.match`.
   */
  match_identity?: string;
}
