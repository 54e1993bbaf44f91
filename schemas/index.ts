import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a schema file in this package. */
export function schemaPath(name: string): string {
  return fileURLToPath(new URL(name, import.meta.url));
}

export const UNIFIED_TARGETS = [
  'patient_identities',
  'conversations',
  'messages',
  'attachments',
  'appointments',
  'practitioners',
  'appointment_types',
  'inboxes',
] as const;
export type UnifiedTarget = (typeof UNIFIED_TARGETS)[number];

export function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(schemaPath(name), 'utf8')) as Record<string, unknown>;
}

export function unifiedSchema(target: UnifiedTarget | 'patients'): Record<string, unknown> {
  return loadSchema(`unified/${target}.schema.json`);
}
