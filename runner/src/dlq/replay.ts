import type { Logger } from 'pino';
import type { RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { forOrganization, safeMessage, transaction } from '../db/tx.ts';
import { partitionExists, partitionParent, requeuePartition } from '../engine/cursor.ts';
import type { Bindings } from '../engine/expr.ts';
import { mapRecords } from '../engine/map.ts';
import { hashRecord } from '../engine/record-hash.ts';
import { openSession, type Session } from '../engine/session.ts';
import { headersOf } from '../engine/webhook-headers.ts';
import { EXTRACTION, eventRecords, processWebhook } from '../engine/webhooks.ts';
import { relinkWritten, type WriteResult, writeRows } from '../engine/writer.ts';
import { isRoutiqError } from '../errors/registry.ts';
import type { ConnectorSpec, MappingSpec, WebhookEventSpec } from '../spec/types.ts';
import { type ProgressListener, progressReporter } from '../util/progress.ts';
import { type DeadLetterFilter, RECORD_CLASSES, REQUEST_CLASSES } from './filter.ts';
import { audit, type DeadLetter, listDeadLetters, markResolved } from './store.ts';

export type ReplayStatus =
  /** Mapped, validated and written with the current spec; the letter is resolved. */
  | 'replayed'
  /** A request-level letter: its partition is pending again (the next sync fetches it); resolved. */
  | 'requeued'
  /** A newer dead letter of the same record, or a later successful sync of it, makes this one moot; resolved. */
  | 'superseded'
  /** Still failing with the current spec: retry_count + 1, reason updated, still open. */
  | 'failed'
  /** Already resolved: nothing done. */
  | 'skipped'
  /** No payload and no partition to re-fetch (e.g. a whole stream's request failed): the next sync retries it. */
  | 'not_replayable'
  /** The letter's organization, connection, connector or stream cannot be loaded now: nothing done. */
  | 'error'
  /** No dead letter has this id. */
  | 'not_found';

export interface ReplayOutcome {
  id: string;
  organizationId: string | null;
  connector: string | null;
  connection: string | null;
  stream: string | null;
  errorClass: string | null;
  status: ReplayStatus;
  /** Set by a dry run: the status says what would happen; nothing was written. */
  dryRun?: true;
  /** Unified rows the record maps to now (record letters). */
  rows?: number;
  written?: { inserted: number; updated: number; unchanged: number };
  /** The failure (failed, error) or the reason (skipped, not_replayable, superseded). */
  code?: string;
  message?: string;
  retryCount?: number;
}

export interface ReplayOptions {
  logger: Logger;
  /** Where ${ENV} secrets of the connections are read (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Who replays, for audit_log. */
  actor: string;
  /** Map and validate, report what would happen, write nothing. */
  dryRun?: boolean | undefined;
  /** Letters done of those matched, and the outcomes so far. */
  onProgress?: ProgressListener | undefined;
}

interface Target {
  /** The mappings of the stream (or webhook event) as the current spec has them. */
  maps: MappingSpec[];
  primaryKey: string | undefined;
  afterMap: string | undefined;
  bindings: Bindings;
  webhook: boolean;
  /** The webhook event (`webhook:<event>` letters): a letter holding a whole delivery is extracted as it does. */
  event?: WebhookEventSpec | undefined;
  /** The stored delivery headers (webhook letters), for the extraction's bindings. */
  headers?: Record<string, string> | undefined;
}

type CtxResult = { ok: true; ctx: Session } | { ok: false; code: string; message: string };

/**
 * Replay dead letters with the CURRENT spec of their connector. Record letters (mapping, validation, hook, write)
 * are mapped, validated and upserted again; request letters of a child partition re-mark the partition pending.
 * Idempotent: resolved letters are skipped and upserts compare before they write. Given a filter, only open
 * letters are considered (oldest first); given ids, every id gets an outcome.
 */
export async function replayDeadLetters(
  db: Database,
  config: RoutiqConfig,
  target: string[] | DeadLetterFilter,
  o: ReplayOptions,
): Promise<ReplayOutcome[]> {
  const byIds = Array.isArray(target);
  const letters = byIds
    ? await listDeadLetters(db, { ids: target }, { order: 'oldest' })
    : await listDeadLetters(db, { ...target, resolved: false }, { order: 'oldest' });
  const outcomes: ReplayOutcome[] = [];
  if (byIds) {
    const found = new Set(letters.map((l) => l.id));
    for (const id of target.map((x) => x.toLowerCase()))
      if (!found.has(id))
        outcomes.push({
          id,
          organizationId: null,
          connector: null,
          connection: null,
          stream: null,
          errorClass: null,
          status: 'not_found',
          message: 'no dead letter has this id',
        });
  }
  const contexts = new Map<string, Promise<CtxResult>>();
  const report = progressReporter(o.onProgress);
  const tally: Record<string, number> = {};
  const progress = (done: number, step?: string, finished?: boolean) =>
    report({
      task: o.dryRun ? 'dead-letter replay (dry run)' : 'dead-letter replay',
      done,
      total: letters.length,
      unit: 'letters',
      step,
      counts: { ...tally },
      ...(finished ? { finished } : {}),
    });
  for (const [i, letter] of letters.entries()) {
    progress(i, `${letter.organizationId} ${letter.stream ?? letter.connection}`);
    let outcome: ReplayOutcome;
    try {
      outcome = await replayOne(db, config, letter, o, contexts);
    } catch (err) {
      // A database failure outside the per-letter handling: report it, keep going with the others.
      outcome = {
        ...base(letter),
        status: 'error',
        code: isRoutiqError(err) ? err.code : 'RQ6002',
        message: safeMessage(err),
      };
    }
    if (o.dryRun) outcome.dryRun = true;
    outcomes.push(outcome);
    tally[outcome.status] = (tally[outcome.status] ?? 0) + 1;
  }
  progress(letters.length, undefined, true);
  const counts: Record<string, number> = {};
  for (const x of outcomes) counts[x.status] = (counts[x.status] ?? 0) + 1;
  o.logger.info({ dry_run: !!o.dryRun, letters: outcomes.length, ...counts }, 'dead-letter replay finished');
  return outcomes;
}

function base(l: DeadLetter): ReplayOutcome {
  return {
    id: l.id,
    organizationId: l.organizationId,
    connector: l.connector,
    connection: l.connection,
    stream: l.stream,
    errorClass: l.errorClass,
    status: 'skipped',
  };
}

async function replayOne(
  db: Database,
  config: RoutiqConfig,
  l: DeadLetter,
  o: ReplayOptions,
  contexts: Map<string, Promise<CtxResult>>,
): Promise<ReplayOutcome> {
  const out = base(l);
  if (l.resolved) return { ...out, status: 'skipped', message: `already resolved (${l.resolution ?? 'no reason'})` };
  const partition = typeof l.details.partition === 'string' ? l.details.partition : undefined;
  if ((REQUEST_CLASSES as readonly string[]).includes(l.errorClass)) {
    if (partition === undefined || !l.stream)
      return {
        ...out,
        status: 'not_replayable',
        message:
          'a request-level dead letter of a whole stream: the next sync requests it again; resolve it once handled',
      };
    return requeue(db, l, l.stream, partition, o, out);
  }
  if (l.errorClass === 'webhook') {
    if (l.payload === null || typeof l.payload !== 'object')
      return { ...out, status: 'not_replayable', message: 'the dead letter has no webhook payload to process again' };
    return replayDelivery(db, config, l, o, contexts, out);
  }
  if (!(RECORD_CLASSES as readonly string[]).includes(l.errorClass) || l.payload === null || !l.stream)
    return { ...out, status: 'not_replayable', message: 'the dead letter has no record payload to replay' };

  // A newer open letter of the same record carries the newer payload: this one is moot.
  if (l.recordKey !== null) {
    const newer = await forOrganization(db, l.organizationId).query<{ id: string }>(
      `select n.id from sync_errors n, sync_errors e
       where e.id = ?::uuid and n.organization_id = e.organization_id and n.connection = e.connection
         and n.stream = e.stream and n.record_key = e.record_key and not n.resolved
         and n.error_class in (${RECORD_CLASSES.map(() => '?').join(', ')})
         and (n.created_at, n.id) > (e.created_at, e.id)
       order by n.created_at desc limit 1`,
      [l.id, ...RECORD_CLASSES],
    );
    const by = newer[0]?.id;
    if (by) return supersede(db, l, o, out, `a newer dead letter of the same record (${by})`, { superseded_by: by });
  }

  const c = await contextOf(db, config, l, o, contexts);
  if (!c.ok) return { ...out, status: 'error', code: c.code, message: c.message };
  const { ctx } = c;
  const t = await targetFor(db, ctx, l.stream, partition, headersOf(l.details.headers));
  if ('error' in t) return { ...out, status: 'error', code: 'RQ2000', message: t.error };

  // The record was fetched and mapped successfully after this letter was written (e.g. a full refresh with the
  // fixed spec): writing the old payload now would roll the row back.
  if (!t.webhook && l.recordKey !== null) {
    const later = await forOrganization(db, l.organizationId).query<{ x: number }>(
      `select 1 as x from raw_records r, sync_errors e
       where e.id = ?::uuid and r.organization_id = e.organization_id and r.source = e.connector and r.stream = e.stream
         and r.external_id = e.record_key and r.fetched_at > e.created_at`,
      [l.id],
    );
    if (later.length)
      return supersede(db, l, o, out, 'the record was synced successfully after this dead letter', {
        superseded_by: 'sync',
      });
  }

  const raw = l.payload;
  const stream = l.stream;
  let mapped: Awaited<ReturnType<typeof mapRecords>>;
  try {
    // A letter holding a whole delivery (its event's records could not be extracted): extract them now, as the
    // event does, rather than mapping the payload as if it were one record.
    const records =
      t.event && l.details.where === EXTRACTION
        ? ((await eventRecords(t.event, raw, ctx.bindings('webhook_data', { headers: t.headers ?? {} }))) ?? [])
        : [raw];
    mapped = await mapRecords(
      {
        stream,
        maps: t.maps,
        primaryKey: t.primaryKey,
        bindings: t.bindings,
        afterMap: t.afterMap,
        hookContext: () => ctx.hookContext(undefined, stream),
        requireKey: !t.webhook,
      },
      records,
    );
  } catch (err) {
    mapped = {
      rows: [],
      parents: [],
      dead: [
        {
          record: raw,
          key: l.recordKey,
          cls: 'mapping',
          code: 'RQ5001',
          message: `${l.stream}: ${safeMessage(err)}`,
          details: {},
        },
      ],
    };
  }
  const dead = mapped.dead[0];
  if (dead) {
    if (o.dryRun) return { ...out, status: 'failed', code: dead.code, message: dead.message };
    return fail(db, l, ctx.spec, o, out, dead.cls, dead.code, dead.message, dead.details);
  }
  const rows = mapped.rows;
  if (o.dryRun) return { ...out, status: 'replayed', rows: rows.length };
  try {
    return await transaction(forOrganization(db, l.organizationId), async (q) => {
      const lock = await q<{ resolved: boolean | string }>(
        'select resolved from sync_errors where id = ?::uuid for update',
        [l.id],
      );
      const st = lock[0]?.resolved;
      if (st === undefined || st === true || st === 't')
        return { ...out, status: 'skipped' as const, message: 'resolved by someone else meanwhile' };
      const res: WriteResult = rows.length
        ? await writeRows(q, ctx.writeContext(stream, null), rows)
        : { inserted: 0, updated: 0, unchanged: 0, changed: new Map(), resolved: new Map() };
      // As a sync does: links to and from what was written, and a replayed parent marks its child partitions
      // pending, in the same transaction.
      await relinkWritten(q, l.organizationId, ctx.spec.name, res.changed);
      await ctx.markChildren(q, stream, mapped.parents, res.changed, { all: t.webhook });
      // Lineage: the raw payload of the replayed record, as a sync stores it.
      if (!t.webhook && l.recordKey !== null)
        await ctx.storeRaw(q, stream, [{ raw, key: l.recordKey, hash: hashRecord(raw), rows: [], produced: [] }]);
      await markResolved(q, l.id, 'replayed', o.actor, 'dlq.replay', {
        outcome: 'replayed',
        spec_version: ctx.spec.version,
        rows: rows.length,
        inserted: res.inserted,
        updated: res.updated,
      });
      return {
        ...out,
        status: 'replayed' as const,
        rows: rows.length,
        written: { inserted: res.inserted, updated: res.updated, unchanged: res.unchanged },
      };
    });
  } catch (err) {
    // e.g. a constraint the unified schema's JSON Schema does not express: the transaction rolled back.
    return fail(db, l, ctx.spec, o, out, 'write', 'RQ5004', `${l.stream}: ${safeMessage(err)}`, {});
  }
}

async function supersede(
  db: Database,
  l: DeadLetter,
  o: ReplayOptions,
  out: ReplayOutcome,
  why: string,
  details: Record<string, unknown>,
): Promise<ReplayOutcome> {
  if (o.dryRun) return { ...out, status: 'superseded', message: why };
  const done = await transaction(forOrganization(db, l.organizationId), (q) =>
    markResolved(q, l.id, 'superseded', o.actor, 'dlq.replay', { outcome: 'superseded', reason: why, ...details }),
  );
  return done
    ? { ...out, status: 'superseded', message: why }
    : { ...out, status: 'skipped', message: 'resolved by someone else meanwhile' };
}

async function requeue(
  db: Database,
  l: DeadLetter,
  stream: string,
  partition: string,
  o: ReplayOptions,
  out: ReplayOutcome,
): Promise<ReplayOutcome> {
  const key = { organizationId: l.organizationId, connection: l.connection, stream, partition };
  const missing = {
    ...out,
    status: 'error' as const,
    code: 'RQ5004',
    message: `partition ${partition} of stream ${stream} is no longer tracked in sync_state; resolve the letter instead`,
  };
  if (o.dryRun) {
    return (await partitionExists(forOrganization(db, l.organizationId).query, key))
      ? { ...out, status: 'requeued', message: `partition ${partition} would be pending` }
      : missing;
  }
  return transaction(forOrganization(db, l.organizationId), async (q) => {
    const lock = await q<{ resolved: boolean | string }>(
      'select resolved from sync_errors where id = ?::uuid for update',
      [l.id],
    );
    const st = lock[0]?.resolved;
    if (st === undefined || st === true || st === 't')
      return { ...out, status: 'skipped' as const, message: 'resolved by someone else meanwhile' };
    if (!(await requeuePartition(q, key))) return missing;
    await markResolved(q, l.id, 'requeued', o.actor, 'dlq.replay', { outcome: 'requeued', partition });
    return {
      ...out,
      status: 'requeued' as const,
      message: `partition ${partition} is pending; the next sync fetches it`,
    };
  });
}

async function fail(
  db: Database,
  l: DeadLetter,
  spec: ConnectorSpec,
  o: ReplayOptions,
  out: ReplayOutcome,
  cls: string,
  code: string,
  message: string,
  details: unknown,
): Promise<ReplayOutcome> {
  const prev = l.details;
  const next: Record<string, unknown> = {
    ...(details && typeof details === 'object' && !Array.isArray(details) ? (details as Record<string, unknown>) : {}),
    // What the letter first failed with, kept across retries; the partition feeds $parent on the next replay.
    first_error: prev.first_error ?? { error_code: l.errorCode, message: l.message, spec_version: l.specVersion },
    ...(prev.partition !== undefined ? { partition: prev.partition } : {}),
    replayed_at: new Date().toISOString(),
  };
  const r = await transaction(forOrganization(db, l.organizationId), async (q) => {
    const rows = await q<{ retry_count: number | string; organization_id: string }>(
      `update sync_errors set retry_count = retry_count + 1, error_class = ?, error_code = ?, message = ?, details = ?::jsonb,
         spec_version = ?, updated_at = now()
       where id = ?::uuid and not resolved returning retry_count, organization_id`,
      [cls, code, message, JSON.stringify(next), spec.version, l.id],
    );
    const row = rows[0];
    if (row)
      await audit(q, o.actor, 'dlq.replay', l.id, row.organization_id, {
        outcome: 'failed',
        error_code: code,
        spec_version: spec.version,
      });
    return row;
  });
  if (!r) return { ...out, status: 'skipped', message: 'resolved by someone else meanwhile' };
  return { ...out, errorClass: cls, status: 'failed', code, message, retryCount: Number(r.retry_count) };
}

/** The letter's connection opened once per replay (spec, secrets and settings resolved once). */
function contextOf(
  db: Database,
  config: RoutiqConfig,
  l: DeadLetter,
  o: ReplayOptions,
  contexts: Map<string, Promise<CtxResult>>,
): Promise<CtxResult> {
  const key = `${l.organizationId}\u0000${l.connection}`;
  let pending = contexts.get(key);
  if (!pending) {
    pending = loadContext(db, config, l, o);
    contexts.set(key, pending);
  }
  return pending;
}

/**
 * A `webhook` letter: a stored delivery whose processing still failed after its last attempt. It is processed again
 * through the webhook path (same events, mapping, identity and writer) with the current spec. Its signature is not
 * checked again: it was authenticated when it arrived, and the letter keeps no credential to check it with. The
 * mapping sees the stored headers, so versions (a signed timestamp) are those of the delivery and an old delivery
 * never rolls a newer row back. Records that fail now become record letters of their own, as on arrival.
 */
async function replayDelivery(
  db: Database,
  config: RoutiqConfig,
  l: DeadLetter,
  o: ReplayOptions,
  contexts: Map<string, Promise<CtxResult>>,
  out: ReplayOutcome,
): Promise<ReplayOutcome> {
  const c = await contextOf(db, config, l, o, contexts);
  if (!c.ok) return { ...out, status: 'error', code: c.code, message: c.message };
  const { ctx } = c;
  if (!ctx.spec.webhooks)
    return {
      ...out,
      status: 'error',
      code: 'RQ2000',
      message: `connector ${ctx.spec.name} ${ctx.spec.version} does not accept webhooks any more`,
    };
  const delivery = { payload: l.payload, headers: headersOf(l.details.headers) };
  if (o.dryRun) return previewDelivery(ctx, ctx.spec.webhooks.events, delivery, out);
  const lock = await forOrganization(db, l.organizationId).query<{ resolved: boolean | string }>(
    'select resolved from sync_errors where id = ?::uuid',
    [l.id],
  );
  const st = lock[0]?.resolved;
  if (st === undefined || st === true || st === 't')
    return { ...out, status: 'skipped', message: 'resolved by someone else meanwhile' };
  let result: Awaited<ReturnType<typeof processWebhook>>;
  try {
    // Its writes commit per event, as on arrival; processing is idempotent, so a concurrent replay changes nothing.
    result = await processWebhook(ctx, delivery);
  } catch (err) {
    return fail(
      db,
      l,
      ctx.spec,
      o,
      out,
      'webhook',
      isRoutiqError(err) ? err.code : 'RQ6002',
      safeMessage(err),
      l.details,
    );
  }
  const message =
    `processed again: ${result.events.length ? `event ${result.events.join(', ')}` : 'no event applies'}, ` +
    `${result.records} record(s), ${result.written} row(s) written` +
    (result.deadLetters ? `, ${result.deadLetters} new dead letter(s)` : '');
  const done = await transaction(forOrganization(db, l.organizationId), (q) =>
    markResolved(q, l.id, 'replayed', o.actor, 'dlq.replay', {
      outcome: 'replayed',
      spec_version: ctx.spec.version,
      events: result.events,
      records: result.records,
      written: result.written,
      dead_letters: result.deadLetters,
    }),
  );
  return done
    ? { ...out, status: 'replayed', message }
    : { ...out, status: 'skipped', message: 'resolved by someone else meanwhile' };
}

/** A dry run of a `webhook` letter: extract and map as processing would, write nothing. */
async function previewDelivery(
  ctx: Session,
  events: WebhookEventSpec[],
  d: { payload: unknown; headers: Record<string, string> },
  out: ReplayOutcome,
): Promise<ReplayOutcome> {
  let rows = 0;
  let dead = 0;
  for (const ev of events) {
    const stream = `webhook:${ev.name}`;
    try {
      const records = await eventRecords(ev, d.payload, ctx.bindings('webhook_data', { headers: d.headers }));
      if (records === undefined) continue;
      const mapped = await mapRecords(
        {
          stream,
          maps: ev.map,
          primaryKey: undefined,
          bindings: ctx.bindings('webhook_mapping', { headers: d.headers }),
          afterMap: undefined,
          hookContext: () => ctx.hookContext(undefined, stream),
        },
        records,
      );
      rows += mapped.rows.length;
      dead += mapped.dead.length;
    } catch (err) {
      return {
        ...out,
        status: 'failed',
        code: isRoutiqError(err) ? err.code : 'RQ5001',
        message: `${stream}: ${safeMessage(err)}`,
      };
    }
  }
  return {
    ...out,
    status: 'replayed',
    rows,
    ...(dead ? { message: `${dead} record(s) would become dead letters of their own` } : {}),
  };
}

async function loadContext(db: Database, config: RoutiqConfig, l: DeadLetter, o: ReplayOptions): Promise<CtxResult> {
  const org = config.organizations.find((x) => x.id === l.organizationId);
  if (!org) return { ok: false, code: 'RQ1008', message: `organization ${l.organizationId} is not in ${config.file}` };
  const conn = org.connections.find((x) => x.name === l.connection);
  if (!conn)
    return {
      ok: false,
      code: 'RQ1006',
      message: `organization ${org.id} has no connection named ${l.connection} in ${config.file}`,
    };
  try {
    const ctx = await openSession({
      db,
      config,
      org,
      conn,
      logger: o.logger,
      env: o.env,
      logFields: { dlq_replay: true },
    });
    return { ok: true, ctx };
  } catch (err) {
    return { ok: false, code: isRoutiqError(err) ? err.code : 'RQ6002', message: safeMessage(err) };
  }
}

/** The stream (or `webhook:<event>`) of a letter in the current spec, with the bindings its mapping sees. */
async function targetFor(
  db: Database,
  ctx: Session,
  stream: string,
  partition: string | undefined,
  headers: Record<string, string>,
): Promise<Target | { error: string }> {
  const { spec } = ctx;
  if (stream.startsWith('webhook:')) {
    const name = stream.slice('webhook:'.length);
    const ev = spec.webhooks?.events.find((e) => e.name === name);
    if (!ev) return { error: `connector ${spec.name} ${spec.version} has no webhook event "${name}" any more` };
    return {
      maps: ev.map,
      primaryKey: undefined,
      afterMap: undefined,
      // The delivery's storable headers, kept with the letter: the version from a signed timestamp is the same as
      // when it arrived, so a replay never rolls a newer row back (letters written before they were kept: none).
      bindings: ctx.bindings('webhook_mapping', { headers }),
      webhook: true,
      event: ev,
      headers,
    };
  }
  const s = spec.streams.find((x) => x.name === stream);
  if (!s) return { error: `connector ${spec.name} ${spec.version} has no stream "${stream}" any more` };
  let parent: unknown;
  if (s.parent && partition !== undefined) {
    parent = await partitionParent(forOrganization(db, ctx.org.id).query, {
      organizationId: ctx.org.id,
      connection: ctx.conn.name,
      stream: s.name,
      partition,
    });
  }
  return {
    maps: s.map,
    primaryKey: s.primary_key,
    afterMap: s.hooks?.after_map,
    bindings: ctx.bindings('mapping', { parent }),
    webhook: false,
  };
}
