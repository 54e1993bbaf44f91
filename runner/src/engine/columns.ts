import { UNIFIED_TARGETS, type UnifiedTarget, unifiedSchema } from '@routiq/schemas';

export interface Column {
  name: string;
  sqlType: 'text' | 'timestamptz' | 'date' | 'bigint' | 'integer' | 'boolean' | 'jsonb';
}

export interface TargetInfo {
  table: UnifiedTarget;
  columns: Column[];
  /**
   * Mapped fields resolved by natural key when a row is written: to the parent's id (a uuid column), or to its
   * `value` (a name: appointment_type, inbox_name). The relink does the same for rows written before their parent.
   */
  references: Reference[];
  schema: Record<string, unknown>;
}

export interface Reference {
  field: string;
  column: string;
  table: string;
  via: 'patient_identities' | 'external_id';
  /** The parent's column the row takes (default: its id). */
  value?: string;
}

const REF_COLUMNS: Record<string, Omit<Reference, 'field'>> = {
  patient_external_id: { column: 'patient_id', table: 'patient_identities', via: 'patient_identities' },
  conversation_external_id: { column: 'conversation_id', table: 'conversations', via: 'external_id' },
  message_external_id: { column: 'message_id', table: 'messages', via: 'external_id' },
  // Names rather than ids: set with the row itself, the relink finds nothing left to do (it wrote every new
  // appointment a second time to set its type's name: about a third of PostgreSQL's work in a Cliniko sync).
  appointment_type_external_id: {
    column: 'appointment_type',
    table: 'appointment_types',
    via: 'external_id',
    value: 'name',
  },
  inbox: { column: 'inbox_name', table: 'inboxes', via: 'external_id', value: 'name' },
};

/** Fields of a mapping that are inputs to the engine, not columns. */
const NOT_COLUMNS = new Set(['country_hint']);

function sqlTypeOf(p: Record<string, unknown>): Column['sqlType'] {
  const types = ([] as unknown[]).concat(p.type ?? []);
  if (p.format === 'date-time') return 'timestamptz';
  if (p.format === 'date') return 'date';
  // An integer bounded to PostgreSQL's int4 range is an `integer` column; any other integer is `bigint`.
  if (types.includes('integer'))
    return typeof p.maximum === 'number' && p.maximum <= 2_147_483_647 ? 'integer' : 'bigint';
  if (types.includes('boolean')) return 'boolean';
  if (types.includes('object') || types.includes('array')) return 'jsonb';
  return 'text';
}

const cache = new Map<UnifiedTarget, TargetInfo>();

/** Column list of a unified table, derived from its JSON Schema (schemas/unified/*.schema.json). */
export function targetInfo(target: UnifiedTarget): TargetInfo {
  let info = cache.get(target);
  if (info) return info;
  const schema = unifiedSchema(target);
  const props = schema.properties as Record<string, Record<string, unknown>>;
  const columns: Column[] = [];
  const references: TargetInfo['references'] = [];
  for (const [name, p] of Object.entries(props)) {
    if (NOT_COLUMNS.has(name)) continue;
    columns.push({ name, sqlType: sqlTypeOf(p) });
    const ref = REF_COLUMNS[name];
    if (ref) references.push({ field: name, ...ref });
  }
  info = { table: target, columns, references, schema };
  cache.set(target, info);
  return info;
}

export function allTargets(): readonly UnifiedTarget[] {
  return UNIFIED_TARGETS;
}
