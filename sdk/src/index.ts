/**
 * @routiq/sdk — the TypeScript escape hatch for connector specs.
 * Importing this module registers the built-in hooks that specs may name.
 */
import { matchIdentity } from './identity/match.ts';
import { registerHook } from './registry.ts';

export type {
  AfterFetchHook,
  AfterMapHook,
  BeforeRequestHook,
  CandidateQuery,
  HookContext,
  HookDefinition,
  HookKind,
  HookKinds,
  HookLogger,
  HookRequest,
  IdentityEvidence,
  IdentityInput,
  MatchContext,
  MatchIdentityHook,
  MatchMethod,
  MatchResult,
  PaginationState,
  ReadOnlyDb,
  StoredIdentity,
} from './hooks.ts';
export { defineHooks } from './hooks.ts';
export { matchIdentity } from './identity/match.ts';
export type { NormalizedPhone, NormalizePhoneOptions, PhoneFailureReason } from './phone/index.ts';
export { isE164, normalizePhone } from './phone/index.ts';
export { getHook, listHooks, registerConnectorHooks, registerHook } from './registry.ts';

registerHook(
  'identity.match',
  'match_identity',
  matchIdentity,
  'Cross-platform patient matching: cross-refs, email, phone + name, scored fallback.',
);
