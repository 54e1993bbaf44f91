/** Raw records → unified rows: JSONata mappings, unified-schema validation, the after_map hook. */
import { type UnifiedTarget, unifiedSchema } from '@routiq/schemas';
import { getHook, type HookContext } from '@routiq/sdk';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isRoutiqError } from '../errors/registry.ts';
import type { MappingSpec } from '../spec/types.ts';
import { type Bindings, evaluate, evaluateNow } from './expr.ts';
import { hashRecordOnce } from './record-hash.ts';
import { excerpt, MAX_DEPTH, sanitize } from './sanitize.ts';
import { stageEnd, stageStart } from './stage-clock.ts';
import { type MappedRow, toIso } from './writer.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();
function validatorFor(target: UnifiedTarget): ValidateFunction {
  let v = validators.get(target);
  if (!v) {
    ajv ??= addFormats(new Ajv({ allErrors: true, strict: false }));
    v = ajv.compile(unifiedSchema(target));
    validators.set(target, v);
  }
  return v;
}

export interface ParentInfo {
  raw: unknown;
  key: string | null;
  hash: string;
  /** The rows it mapped to (a record is written, or dead-lettered, as a whole). */
  rows: MappedRow[];
  produced: Array<[UnifiedTarget, string]>;
}

export interface DeadRecord {
  record: unknown;
  key: string | null;
  cls: 'mapping' | 'validation' | 'hook' | 'write';
  code: string;
  message: string;
  details: unknown;
}

export interface MapInput {
  /** The stream name (or `webhook:<event>`), for messages. */
  stream: string;
  maps: MappingSpec[];
  /** The record's natural key (JSONata); `id` by default. */
  primaryKey: string | undefined;
  /** The `mapping` bindings (never $secrets). */
  bindings: Bindings;
  afterMap: string | undefined;
  /** The context handed to the after_map hook (read-only database). */
  hookContext: () => HookContext;
  /** Streams: a record without a usable primary key is dead-lettered (webhook events key on their mapping). */
  requireKey?: boolean;
}

/** A platform id: a non-empty string or a finite number. Anything else would be stored as "null", "true", "[1,2]". */
function keyOf(v: unknown): string | null {
  if (typeof v === 'string') return v.trim() === '' ? null : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/** external_id values that are a stringified non-id (`$string(null)`, `$string([1,2])`). */
const NOT_AN_ID = /^(null|undefined|true|false|NaN|Infinity|-Infinity)$|^\s*[[{]|^\s*$/;

/** Shared by sync, webhooks and DLQ replay: JSONata mapping + unified-schema validation. */
export async function mapRecords(
  m0: MapInput,
  records: unknown[],
): Promise<{ rows: MappedRow[]; dead: DeadRecord[]; parents: ParentInfo[] }> {
  const { stream, maps, primaryKey, bindings, afterMap } = m0;
  const rows: MappedRow[] = [];
  const dead: DeadRecord[] = [];
  const parents: ParentInfo[] = [];
  const clock = stageStart();
  for (const incoming of records) {
    // The one sanitation boundary: everything below (rows, lineage, dead letters, child partitions) sees clean text.
    const clean = sanitize(incoming);
    if (clean.tooDeep) {
      // The key is a plain path (read without recursion), so even a record too deep to keep says which it was.
      const deepKey = keyOf(await evaluate(primaryKey ?? 'id', incoming).catch(() => undefined));
      dead.push({
        record: { excerpt: excerpt(safeStringify(incoming)).excerpt },
        key: deepKey,
        cls: 'validation',
        code: 'RQ5009',
        message: `${stream}: the record nests deeper than ${MAX_DEPTH} levels; kept as an excerpt`,
        details: { max_depth: MAX_DEPTH },
      });
      continue;
    }
    const raw = clean.value;
    const sanitized = clean.replaced > 0;
    // Hashed already by the pagination loop guard when nothing was sanitized (the same object).
    const hash = hashRecordOnce(raw);
    let pk: unknown;
    try {
      pk = evaluateNow(primaryKey ?? 'id', raw, bindings);
      if (pk instanceof Promise) pk = await pk;
    } catch {
      pk = undefined;
    }
    const key = keyOf(pk);
    if (key === null && (m0.requireKey || (pk !== undefined && pk !== null))) {
      dead.push({
        record: raw,
        key: null,
        cls: 'validation',
        code: 'RQ5007',
        message: `${stream}: primary key ${primaryKey ?? 'id'} is ${pk === undefined ? 'missing' : `${JSON.stringify(pk)?.slice(0, 40)}, not a string or number`}`,
        details: { primary_key: primaryKey ?? 'id' },
      });
      continue;
    }
    const produced: MappedRow[] = [];
    let failed: DeadRecord | undefined;
    for (const m of maps) {
      try {
        // evaluateNow: compiled expressions answer without a promise; JSONata's answers are awaited.
        if (m.when) {
          let when = evaluateNow(m.when, raw, bindings);
          if (when instanceof Promise) when = await when;
          if (!when) continue;
        }
        let input = m.input ? evaluateNow(m.input, raw, bindings) : raw;
        if (input instanceof Promise) input = await input;
        if (input === undefined || input === null) continue;
        let out = evaluateNow(m.expression, input, bindings);
        if (out instanceof Promise) out = await out;
        const list = out === undefined || out === null ? [] : Array.isArray(out) ? out : [out];
        let ver: unknown;
        if (m.version) {
          ver = evaluateNow(m.version, raw, bindings);
          if (ver instanceof Promise) ver = await ver;
        }
        const version = m.version ? versionOf(ver) : undefined;
        for (const row of list) {
          const clean = stripUndefined(row);
          const v = validatorFor(m.target);
          const vt = stageStart();
          // patch rows carry only the fields they change
          const ok = m.mode === 'patch' ? typeof clean.external_id === 'string' && clean.external_id !== '' : v(clean);
          stageEnd('validation', vt);
          if (!ok) {
            const errs = (v.errors ?? []).map((e) => `${e.instancePath || '(row)'} ${e.message}`);
            failed = {
              record: raw,
              key,
              cls: 'validation',
              code: 'RQ5002',
              message: `${stream} → ${m.target}: ${errs.join('; ') || 'external_id missing'}`,
              details: { target: m.target, row: clean, errors: errs },
            };
            break;
          }
          if (NOT_AN_ID.test(String(clean.external_id))) {
            failed = {
              record: raw,
              key,
              cls: 'validation',
              code: 'RQ5007',
              message: `${stream} → ${m.target}: external_id ${JSON.stringify(clean.external_id)?.slice(0, 40)} is not a platform id`,
              details: { target: m.target, row: clean },
            };
            break;
          }
          produced.push({ target: m.target, mode: m.mode, row: clean, sourceHash: hash, version, sanitized });
        }
      } catch (err) {
        failed = {
          record: raw,
          key,
          cls: 'mapping',
          // A spec expression over its budget (RQ5008) or a bad JSON string ($parseJson) keeps its own code.
          code: isRoutiqError(err) ? err.code : 'RQ5001',
          message: `${stream} → ${m.target}: ${(err as Error).message}`,
          details: { target: m.target, position: (err as { position?: number }).position },
        };
      }
      if (failed) break;
    }
    if (failed) {
      dead.push(failed);
      continue;
    }
    let final = produced;
    if (afterMap) {
      const h = getHook(afterMap, 'after_map');
      if (h) {
        try {
          const r = await h(
            produced.map((p) => ({ target: p.target, row: p.row })),
            m0.hookContext(),
          );
          final = r.map((x) => ({
            target: x.target as UnifiedTarget,
            mode: 'upsert' as const,
            row: x.row,
            sourceHash: hash,
            version: produced.find((p) => p.target === x.target)?.version,
            sanitized,
          }));
        } catch (err) {
          dead.push({
            record: raw,
            key,
            cls: 'hook',
            code: 'RQ5003',
            message: `${stream}: hook ${afterMap} failed: ${(err as Error).message}`,
            details: { stack: (err as Error).stack },
          });
          continue;
        }
      }
    }
    rows.push(...final);
    parents.push({ raw, key, hash, rows: final, produced: final.map((p) => [p.target, String(p.row.external_id)]) });
  }
  stageEnd('mapping', clock);
  return { rows, dead, parents };
}

/** A platform version: Unix seconds (number or numeric string) or a date string, as ISO-8601; else undefined. */
function versionOf(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return toIso(v) ?? undefined;
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '(too deeply nested to serialize)';
  }
}

function stripUndefined(row: unknown): Record<string, unknown> {
  if (!row || typeof row !== 'object' || Array.isArray(row)) return { __invalid: row };
  const out: Record<string, unknown> = {};
  const r = row as Record<string, unknown>;
  // Object.keys, not entries: no [key, value] pair allocated per field of every row.
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
