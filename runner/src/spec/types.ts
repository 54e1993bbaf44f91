/**
 * TypeScript view of a loaded connector spec. The types are generated from schemas/connector.schema.json into
 * types.gen.ts (`npm run docs:gen`; `npm run docs:check` fails when they drift); properties with a schema default are
 * present, since the loader (load.ts) fills them in.
 */
import type { UnifiedTarget } from '@routiq/schemas';
import type { MappingSpec } from './types.gen.ts';

export type {
  AuthSpec,
  BudgetSpec,
  ConnectionPropertySpec,
  ConnectionSpec,
  ConnectorSpec,
  ErrorAction,
  ErrorRule,
  Headers,
  IdentitySpec,
  IncrementalSpec,
  Jsonata,
  MappingSpec,
  PaginationSpec,
  PaginationStop,
  Params,
  ParamValue,
  ParentSpec,
  RateLimitsSpec,
  RequestDefaults,
  RequestSpec,
  RetrySpec,
  StreamHooks,
  StreamSpec,
  Template,
  WebhookEventSpec,
  WebhooksSpec,
  WebhookVerify,
} from './types.gen.ts';

// The schema's `map[].target` enum and @routiq/schemas' UNIFIED_TARGETS must list the same tables.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const targetsMatch: Same<MappingSpec['target'], UnifiedTarget> = true;
void targetsMatch;
