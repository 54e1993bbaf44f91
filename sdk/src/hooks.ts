/**
 * Hook contract between connector specs and TypeScript.
 * A spec names a hook (e.g. `match_identity: identity.match`); the runner looks the name up in the
 * registry (`registry.ts`) and calls it with a typed context. Hooks never get write access to the database:
 * whatever they return is validated and written by the engine, so the engine's guarantees hold.
 */

export interface HookLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** Read access to the database (SELECT/WITH only; `?` placeholders). Filter by ctx.organizationId yourself. */
export interface ReadOnlyDb {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface HookContext {
  organizationId: string;
  connector: string;
  stream?: string;
  logger: HookLogger;
  db: ReadOnlyDb;
  /** Organization settings (organizations.settings), e.g. identity thresholds. */
  settings: Readonly<Record<string, unknown>>;
  /** ISO 3166-1 alpha-2 country used when a phone number has no country code. */
  defaultCountry: string;
  /**
   * The stream's incremental cursor for this pass as the request templates see it (`$cursor`: the stored cursor
   * minus the lookback, formatted for the API); absent on a first or full read. Given to `before_request` hooks.
   */
  cursor?: string | number;
  /** A child stream's partition key (the parent record's key), and the parent record itself (`$parent`). */
  partition?: string;
  parent?: unknown;
  /** The page a `before_request` hook's request is for, and what the paginator adds to it. */
  pagination?: PaginationState;
}

/** Where a stream's pagination is when a page's request is built. */
export interface PaginationState {
  /** 1-based page number of this request. */
  page: number;
  /** Query parameters the paginator adds (page number, offset, cursor token, id window …). */
  params: Array<[string, string]>;
  /** Values the paginator sets in the JSON body at a dotted path (a search API's cursor: `pagination.in: body`). */
  body: Array<[string, unknown]>;
  /** The next-page URL being followed (`next_link` pagination), if any. */
  follow?: string;
}

export interface HookRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  searchParams: Array<[string, string]>;
  body?: unknown;
}

/** An identity as a connector maps it, before it is linked to a unified patient. */
export interface IdentityInput {
  source: string;
  externalId: string;
  firstName?: string | null;
  lastName?: string | null;
  displayName?: string | null;
  email?: string | null;
  phoneRaw?: string | null;
  phoneE164?: string | null;
  dateOfBirth?: string | null;
  /** Country hint from the record itself (Cliniko `country_code`, ManyChat `phone_country_code`). */
  countryHint?: string | null;
  /** Ids of the same person on other platforms, e.g. a Chatwoot contact attribute holding the Cliniko id. */
  crossRefs?: Array<{ source: string; externalId: string }>;
  /** Contact details found outside the record itself (see `IdentityEvidence`). */
  evidence?: IdentityEvidence[];
}

/**
 * A phone or email that belongs with an identity but is not in its own fields:
 * - `inbox`: the address of one of the contact's channels (a WhatsApp contact inbox's `source_id` is the
 *   contact's own number), as strong as the contact's own phone;
 * - `message`: written by the contact in a conversation ("my email is …"): it may be someone else's (a partner's
 *   number), so it is only a way to find candidates and never links without agreeing names.
 */
export interface IdentityEvidence {
  kind: 'phone' | 'email';
  value: string;
  origin: 'inbox' | 'message';
}

/** An identity already stored, with the patient it is linked to. */
export interface StoredIdentity extends IdentityInput {
  patientId: string;
}

export interface CandidateQuery {
  phonesE164: string[];
  emails: string[];
  crossRefs: Array<{ source: string; externalId: string }>;
  /** Lower-cased last name and date of birth, for the scored fallback. */
  lastNameDob?: { lastName: string; dateOfBirth: string } | undefined;
  /** Normalized name keys (`nameKeyOf`): every identity with the same key, for the uniqueness of a full name. */
  nameKeys?: string[] | undefined;
}

export interface MatchContext extends HookContext {
  /** Stored identities of this organization that share any key with the query. */
  findCandidates(query: CandidateQuery): Promise<StoredIdentity[]>;
}

export type MatchMethod = 'existing' | 'cross_ref' | 'phone' | 'email' | 'evidence' | 'scored' | 'name' | 'new';

export interface MatchResult {
  /** The patient to link to, or null to create a new patient. */
  patientId: string | null;
  method: MatchMethod;
  /** 0..1 */
  confidence: number;
}

/**
 * `hooks.before_request` of a stream: change a page's request after the spec rendered it (auth, pagination and the
 * incremental parts included). Runs for every page; `ctx.cursor`, `ctx.pagination`, `ctx.partition` and
 * `ctx.parent` say which. Return the request to send. Credentials are already applied: do not log `req.headers`.
 *
 * @example A search API whose filter and cursor live in a POST body the YAML cannot shape:
 * ```ts
 * const searchBody: BeforeRequestHook = (req, ctx) => ({
 *   ...req,
 *   body: {
 *     query: ctx.cursor === undefined ? { field: 'id', operator: '>', value: 0 }
 *       : { field: 'updated_at', operator: '>', value: Number(ctx.cursor) },
 *     pagination: { per_page: 50, ...(ctx.pagination?.body.length ? { starting_after: ctx.pagination.body[0]?.[1] } : {}) },
 *   },
 * });
 * ```
 */
export type BeforeRequestHook = (req: HookRequest, ctx: HookContext) => HookRequest | Promise<HookRequest>;
/**
 * `hooks.after_fetch` of a stream: the raw records of one page, after `records` extracted them and before the
 * incremental filter and the mappings. Return the records to keep (filtered, flattened, enriched).
 *
 * @example Unwrap records the platform nests one level down:
 * ```ts
 * const unwrap: AfterFetchHook = (records) => records.map((r) => (r as { item: unknown }).item);
 * ```
 */
export type AfterFetchHook = (records: unknown[], ctx: HookContext) => unknown[] | Promise<unknown[]>;
/**
 * `hooks.after_map` of a stream: the unified rows one record mapped to (every `map` entry), after validation.
 * Return the rows to write; they are written as upserts. A throw dead-letters the record (RQ5003).
 *
 * @example Drop test contacts the platform cannot filter out:
 * ```ts
 * const dropTests: AfterMapHook = (rows) => rows.filter((r) => !String(r.row.email ?? '').endsWith('@test.invalid'));
 * ```
 */
export type AfterMapHook = (
  rows: Array<{ target: string; row: Record<string, unknown> }>,
  ctx: HookContext,
) =>
  | Array<{ target: string; row: Record<string, unknown> }>
  | Promise<Array<{ target: string; row: Record<string, unknown> }>>;
/**
 * `identity.match_identity` of a connector: link a mapped identity to a unified patient (or ask for a new one).
 * Called inside the write transaction under the organization's identity lock; read candidates with
 * `ctx.findCandidates`. The built-in `identity.match` covers cross-references, email, phone + name and a scored
 * fallback.
 *
 * @example Trust only cross-references:
 * ```ts
 * const crossRefOnly: MatchIdentityHook = async (id, ctx) => {
 *   const [hit] = await ctx.findCandidates({ phonesE164: [], emails: [], crossRefs: id.crossRefs ?? [] });
 *   return hit ? { patientId: hit.patientId, method: 'cross_ref', confidence: 1 } : { patientId: null, method: 'new', confidence: 1 };
 * };
 * ```
 */
export type MatchIdentityHook = (identity: IdentityInput, ctx: MatchContext) => Promise<MatchResult>;

export interface HookKinds {
  before_request: BeforeRequestHook;
  after_fetch: AfterFetchHook;
  after_map: AfterMapHook;
  match_identity: MatchIdentityHook;
}
export type HookKind = keyof HookKinds;

/** One hook a connector folder ships (`connectors/<name>/hooks.ts`): its kind, the function and what it does. */
export type HookDefinition = {
  [K in HookKind]: { kind: K; fn: HookKinds[K]; description: string };
}[HookKind];

/**
 * The default export of `connectors/<name>/hooks.ts`: hooks by name, registered when the connector is loaded, no
 * edit of the SDK needed. Names start with the connector's name (`intercom.search_body`); a spec names them under
 * `hooks:` of a stream. Lint reads the names and kinds from this object literal, so keep each entry as
 * `'<name>': { kind: '<kind>', … }`.
 *
 * @example
 * ```ts
 * import { defineHooks } from '@routiq/sdk';
 * export default defineHooks({
 *   'intercom.search_body': { kind: 'before_request', fn: searchBody, description: 'Search filter and cursor in the body' },
 * });
 * ```
 */
export function defineHooks(hooks: Record<string, HookDefinition>): Record<string, HookDefinition> {
  return hooks;
}
