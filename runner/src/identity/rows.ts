import type { StoredIdentity } from '@routiq/sdk';

/**
 * Shared by the writer (candidate queries), identity operations (merge, reconcile, duplicates), webhooks and DLQ
 * replay: how a stored identity row reads, and which source's identity gives the unified patient its fields.
 * A leaf module (no runtime imports), so every layer can use it.
 */

/** Default priority of sources for the unified patient's fields (first wins). */
export const DEFAULT_SOURCE_PRIORITY: readonly string[] = Object.freeze(['cliniko', 'chatwoot', 'manychat']);

/** `settings.identity.source_priority`, or cliniko > chatwoot > manychat. */
export function sourcePriorityOf(settings: Readonly<Record<string, unknown>>): string[] {
  const identity = settings.identity as { source_priority?: unknown } | undefined;
  const prio = identity?.source_priority;
  return Array.isArray(prio) && prio.length > 0 && prio.every((s) => typeof s === 'string')
    ? [...(prio as string[])]
    : [...DEFAULT_SOURCE_PRIORITY];
}

export function parseJson<T>(v: unknown, fallback: T): T {
  if (v === null || v === undefined) return fallback;
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as T;
    } catch {
      return fallback;
    }
  }
  return v as T;
}

/** Columns of `patient_identities i` that make a stored identity. */
export const IDENTITY_COLUMNS = `i.id, i.patient_id, i.source, i.external_id, i.first_name, i.last_name, i.display_name, i.email,
  i.phone, i.phone_e164, to_char(i.date_of_birth, 'YYYY-MM-DD') as date_of_birth, i.cross_refs`;

export interface IdentityRow {
  id: string;
  patient_id: string;
  source: string;
  external_id: string;
  first_name: string | null;
  last_name: string | null;
  display_name: string | null;
  email: string | null;
  phone: string | null;
  phone_e164: string | null;
  date_of_birth: string | null;
  cross_refs: unknown;
}

/** A stored identity with its row id. */
export interface StoredIdentityRow extends StoredIdentity {
  id: string;
}

export function toStored(r: IdentityRow): StoredIdentityRow {
  const refs = parseJson<Array<{ source: string; external_id: string }>>(r.cross_refs, []);
  return {
    id: r.id,
    patientId: r.patient_id,
    source: r.source,
    externalId: r.external_id,
    firstName: r.first_name,
    lastName: r.last_name,
    displayName: r.display_name,
    email: r.email,
    phoneRaw: r.phone,
    phoneE164: r.phone_e164,
    dateOfBirth: r.date_of_birth,
    crossRefs: refs.map((c) => ({ source: String(c.source), externalId: String(c.external_id) })),
  };
}
