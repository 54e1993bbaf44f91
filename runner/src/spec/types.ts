/**
 * TypeScript view of schemas/connector.schema.json (the single source of truth; keep in step with it —
 * spec.unit.test.ts checks that every bundled connector validates and types-checks through this shape).
 */
import type { UnifiedTarget } from '@routiq/schemas';

export type Template = string;
export type Jsonata = string;
export type ParamValue = Template | number | boolean | Array<Template | number | boolean>;
export type Params = Record<string, ParamValue>;
export type Headers = Record<string, Template>;

export type AuthSpec =
  | { type: 'none' }
  | { type: 'api_key'; in?: 'header' | 'query'; name: string; value: Template }
  | { type: 'bearer'; token: Template }
  | { type: 'basic'; username: Template; password?: Template }
  | {
      type: 'oauth2_client_credentials';
      token_url: Template;
      client_id: Template;
      client_secret: Template;
      scopes?: string[];
    }
  | {
      type: 'oauth2_refresh_token';
      token_url: Template;
      client_id: Template;
      client_secret?: Template;
      refresh_token: Template;
    };

interface PaginationCommon {
  max_pages?: number;
  stop?: { when?: Jsonata };
}
export type PaginationSpec =
  | ({ type: 'none' } & PaginationCommon)
  | ({ type: 'page_number'; param?: string; start?: number; size_param?: string; size: number } & PaginationCommon)
  | ({ type: 'offset'; offset_param?: string; limit_param?: string; limit: number } & PaginationCommon)
  | ({ type: 'cursor'; token: Jsonata; param: string } & PaginationCommon)
  | ({ type: 'next_link'; from?: 'body' | 'header'; path?: Jsonata } & PaginationCommon)
  | ({
      type: 'id_window';
      id_field?: string;
      before_param?: string;
      before_page_size: number;
      after_param?: string;
      after_page_size: number;
    } & PaginationCommon);

export interface IncrementalSpec {
  cursor_field: Jsonata;
  type: 'datetime' | 'unix_seconds' | 'integer';
  order: 'asc' | 'desc' | 'none';
  lookback?: string;
  start?: Template;
  send?: { params?: Params; headers?: Headers };
  stop_when_older?: boolean;
  client_filter?: boolean;
}

export interface RequestSpec {
  method?: 'GET' | 'POST';
  path?: Template;
  params?: Params;
  headers?: Headers;
  body?: unknown;
  timeout_ms?: number;
}

export interface MappingSpec {
  target: UnifiedTarget;
  mode?: 'upsert' | 'patch';
  when?: Jsonata;
  input?: Jsonata;
  expression: Jsonata;
}

export interface StreamSpec {
  name: string;
  description?: string;
  request: RequestSpec;
  records?: Jsonata;
  primary_key?: Jsonata;
  pagination: PaginationSpec;
  incremental?: IncrementalSpec;
  parent?: { stream?: string; webhook?: string; key?: Jsonata; only_changed?: boolean };
  map: MappingSpec[];
  hooks?: { before_request?: string; after_fetch?: string; after_map?: string };
  enabled?: boolean;
}

export type ErrorAction = 'success' | 'transient' | 'rate_limited' | 'auth' | 'permanent' | 'ignore';
export interface ErrorRule {
  status?: number | number[] | string;
  body?: Jsonata;
  body_contains?: string;
  action: ErrorAction;
  message?: Jsonata;
}

export interface BudgetSpec {
  name: string;
  requests: number | Template;
  per_seconds: number;
  scope?: 'credential' | 'connection' | 'global';
  key?: Template;
  match?: { path?: string };
}

export interface ConnectionPropertySpec {
  type: 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  secret?: boolean;
  format?: 'uri' | 'email' | 'hostname';
  pattern?: string;
  default?: unknown;
  enum?: unknown[];
  example?: unknown;
}

export type WebhookVerify =
  | { type: 'none' }
  | {
      type: 'hmac_sha256';
      header: string;
      prefix?: string;
      secret: Template;
      message?: Template;
      timestamp_header?: string;
      tolerance_seconds?: number;
    }
  | { type: 'shared_token'; header?: string; query?: string; token: Template };

export interface WebhookEventSpec {
  name: string;
  when: Jsonata;
  records?: Jsonata;
  map: MappingSpec[];
}

export interface ConnectorSpec {
  spec_version: 1;
  name: string;
  version: string;
  title?: string;
  description?: string;
  documentation_url?: string;
  connection: { properties: Record<string, ConnectionPropertySpec>; required?: string[] };
  base_url: Template;
  auth: AuthSpec;
  request?: { headers?: Headers; params?: Params; timeout_ms?: number };
  rate_limits?: {
    budgets?: BudgetSpec[];
    retry_after_header?: string;
    reset_header?: { name: string; format: 'epoch_seconds' | 'seconds' | 'http_date' };
    default_wait_ms?: number | Template;
  };
  errors?: ErrorRule[];
  retry?: { max_retries?: number; base_delay_ms?: number; max_delay_ms?: number };
  streams: StreamSpec[];
  webhooks?: { verify: WebhookVerify; events: WebhookEventSpec[]; dedup_key?: Jsonata };
  identity?: { match_identity?: string };
}
