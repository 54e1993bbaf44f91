/** Bookkeeping writes every write path shares: raw payloads kept for lineage, and dead letters. */
import { boundQuery, type Querier } from '../db/tx.ts';
import { excerpt, sanitize } from './sanitize.ts';

/** Raw platform payloads by (source, stream, id); rewritten only when their hash changed. */
export async function storeRawRecords(
  q: Querier,
  at: { organizationId: string; source: string; stream: string; specVersion: string },
  records: Array<{ key: string; hash: string; raw: unknown }>,
): Promise<void> {
  if (!records.length) return;
  const params: unknown[] = [];
  const tuples = records.map((r) => {
    params.push(at.organizationId, at.source, at.stream, r.key, r.hash, at.specVersion, JSON.stringify(r.raw));
    return '(?, ?, ?, ?, ?, ?, ?::jsonb)';
  });
  await boundQuery(
    q,
    `insert into raw_records (organization_id, source, stream, external_id, source_hash, spec_version, payload) values ${tuples.join(', ')}
     on conflict (organization_id, source, stream, external_id) do update set source_hash = excluded.source_hash,
       spec_version = excluded.spec_version, payload = excluded.payload, fetched_at = now()
     where raw_records.source_hash is distinct from excluded.source_hash`,
    params,
  );
}

export interface DeadLetterInput {
  organizationId: string;
  connector: string;
  connection: string;
  stream: string;
  /** null for webhook deliveries and replays. */
  runId: string | null;
  errorClass: string;
  errorCode: string;
  message: string;
  details: unknown;
  recordKey: string | null;
  /** The raw record, or null for a request that failed. */
  payload: unknown;
  specVersion: string;
}

export async function insertDeadLetter(q: Querier, d: DeadLetterInput): Promise<void> {
  await q(
    `insert into sync_errors (organization_id, connector, connection, stream, sync_run_id, error_class, error_code, message, details, record_key, payload, spec_version)
     values (?, ?, ?, ?, ?::uuid, ?, ?, ?, ?::jsonb, ?, ?::jsonb, ?)`,
    [
      d.organizationId,
      d.connector,
      d.connection,
      d.stream,
      d.runId,
      d.errorClass,
      d.errorCode,
      sanitize(d.message).value,
      // Letters carry platform text too (response bodies, messages): the same sanitation as rows.
      JSON.stringify(letterJson(d.details ?? {})),
      d.recordKey,
      d.payload === null ? null : JSON.stringify(letterJson(d.payload)),
      d.specVersion,
    ],
  );
}

/** A dead letter always keeps something readable: a value too deep to store becomes a marker, not `null`. */
function letterJson(v: unknown): unknown {
  const s = sanitize(v);
  return s.tooDeep
    ? { truncated: 'nested deeper than the engine stores', excerpt: excerpt(safeText(v)).excerpt }
    : s.value;
}

function safeText(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '(too deeply nested to serialize)';
  }
}
