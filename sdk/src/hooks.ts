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

export type BeforeRequestHook = (req: HookRequest, ctx: HookContext) => HookRequest | Promise<HookRequest>;
export type AfterFetchHook = (records: unknown[], ctx: HookContext) => unknown[] | Promise<unknown[]>;
export type AfterMapHook = (
  rows: Array<{ target: string; row: Record<string, unknown> }>,
  ctx: HookContext,
) =>
  | Array<{ target: string; row: Record<string, unknown> }>
  | Promise<Array<{ target: string; row: Record<string, unknown> }>>;
export type MatchIdentityHook = (identity: IdentityInput, ctx: MatchContext) => Promise<MatchResult>;

export interface HookKinds {
  before_request: BeforeRequestHook;
  after_fetch: AfterFetchHook;
  after_map: AfterMapHook;
  match_identity: MatchIdentityHook;
}
export type HookKind = keyof HookKinds;
