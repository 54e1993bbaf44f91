export type { NormalizedPhone, NormalizePhoneOptions, PhoneFailureReason } from './normalize.ts';
export { isE164, normalizePhone } from './normalize.ts';
