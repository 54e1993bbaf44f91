export type { CalendlyMutationAction, CalendlyMutationSummary, CalendlyOrgConfig } from './calendly/model.ts';
export type { CalendlyOptions, CalendlySim, CalendlySnapshot } from './calendly/server.ts';
export { startCalendly } from './calendly/server.ts';
export type { ChatwootAccountConfig, ChatwootMutationAction, ChatwootMutationSummary } from './chatwoot/model.ts';
export type { ChatwootOptions, ChatwootSim, ChatwootSnapshot } from './chatwoot/server.ts';
export { startChatwoot } from './chatwoot/server.ts';
export type { ChatwootWebhook, WebhookDelivery, WebhookInput } from './chatwoot/webhooks.ts';
export { ALLOWED_WEBHOOK_EVENTS, signChatwootWebhook } from './chatwoot/webhooks.ts';
export type { ClinikoMutationAction, ClinikoMutationSummary, ClinikoUserConfig } from './cliniko/model.ts';
export type { ClinikoOptions, ClinikoSim, ClinikoSnapshot } from './cliniko/server.ts';
export { startCliniko } from './cliniko/server.ts';
export { closeAll } from './common/registry.ts';
export type { ManyChatMutationAction, ManyChatMutationSummary, ManyChatPageConfig } from './manychat/model.ts';
export type {
  AutomationConfig,
  ExternalRequestInput,
  ExternalRequestResult,
  ExternalTemplate,
  ManyChatOptions,
  ManyChatSim,
  ManyChatSnapshot,
} from './manychat/server.ts';
export { MANYCHAT_RPS, startManyChat } from './manychat/server.ts';
export type { Sandbox, SandboxOptions, SandboxTenant } from './sandbox.ts';
export { sandboxCredentials, startSandbox } from './sandbox.ts';
export type {
  BaseSim,
  FaultConfig,
  FaultControl,
  FaultKind,
  FaultState,
  RateLimitOptions,
  SimOptions,
  SimStats,
} from './types.ts';
export { FAULT_KINDS } from './types.ts';
