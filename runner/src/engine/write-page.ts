/**
 * Write what one page (or one webhook delivery) mapped to, in one transaction with its bookkeeping and checkpoint.
 * If the database refuses the batch for a data reason, the records are written one at a time and those that still
 * fail are dead-lettered with the database's reason: one bad record never fails a stream on every run.
 */
import type { UnifiedTarget } from '@routiq/schemas';
import { type Querier, safeMessage, transaction } from '../db/tx.ts';
import { recordAudit } from '../security/audit.ts';
import type { DeadRecord, ParentInfo } from './map.ts';
import type { ChildMarking, Session } from './session.ts';
import { stageEnd, stageStart } from './stage-clock.ts';
import { relinkStatements, relinkWritten, writeRows } from './writer.ts';

export interface PageWrite {
  stream: string;
  runId: string | null;
  /** A child partition: its letters keep it so a replay can rebuild $parent. */
  partition?: string | undefined;
  /** A batch of several partitions: each record's own (for the letter of a record the database refuses). */
  partitionOf?: Map<ParentInfo, string> | undefined;
  parents: ParentInfo[];
  dead: DeadRecord[];
  marking: ChildMarking;
  /** Keep raw payloads for lineage (polled records). */
  storeRaw: boolean;
  /** Runs last in the same transaction (the page's checkpoint). */
  finish?: ((q: Querier) => Promise<void>) | undefined;
  /** Given: receives the external_ids per target inserted or changed (a webhook batch credits its deliveries). */
  changed?: Map<UnifiedTarget, Set<string>> | undefined;
}

export interface PageWritten {
  inserted: number;
  updated: number;
  unchanged: number;
  deadLetters: number;
  identitiesChanged: number;
}

/** SQLSTATE classes a record's data can cause: data exceptions, constraints, limits, a message the server refused. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|54|08P01)/.test(code);
}

/**
 * `oneByOne: false`: a refused batch throws instead (the write-behind splits a batch of many pages first, so
 * only the page holding the bad record is written one record at a time).
 */
export async function writePage(session: Session, w: PageWrite, o: { oneByOne?: boolean } = {}): Promise<PageWritten> {
  const clock = stageStart();
  try {
    return await writePageOnce(session, w, o.oneByOne !== false);
  } finally {
    stageEnd('write', clock);
  }
}

async function writePageOnce(session: Session, w: PageWrite, oneByOne: boolean): Promise<PageWritten> {
  const out: PageWritten = { inserted: 0, updated: 0, unchanged: 0, deadLetters: 0, identitiesChanged: 0 };
  const written = new Map<UnifiedTarget, Set<string>>();
  let committed = false;
  try {
    await transaction(session.db, (q) => writeAll(session, q, w, w.parents, w.dead, out, w.finish, written));
    committed = true;
  } catch (err) {
    if (!isDataError(err) || !oneByOne) throw err;
    session.log.warn(
      { stream: w.stream, err: { message: safeMessage(err) } },
      'a batch was refused by the database; writing its records one at a time',
    );
  }
  if (committed) {
    await relinkCommitted(session, written);
    void session.analyzeAsGrown(written);
    return out;
  }
  const res: PageWritten = { inserted: 0, updated: 0, unchanged: 0, deadLetters: 0, identitiesChanged: 0 };
  const dead = [...w.dead];
  for (const p of w.parents) {
    try {
      await transaction(session.db, (q) => writeAll(session, q, w, [p], [], res, undefined, written));
    } catch (err) {
      if (!isDataError(err)) throw err;
      dead.push({
        record: p.raw,
        key: p.key,
        cls: 'write',
        code: 'RQ5004',
        message: `${w.stream}: ${safeMessage(err)}`,
        details: {
          targets: [...new Set(p.rows.map((r) => r.target))],
          ...(w.partitionOf?.has(p) ? { partition: w.partitionOf.get(p) } : {}),
        },
      });
    }
  }
  await transaction(session.db, (q) => writeAll(session, q, w, [], dead, res, w.finish, written));
  await relinkCommitted(session, written);
  void session.analyzeAsGrown(written);
  return res;
}

/**
 * Once committed, the links of what was written are set again, in a transaction of their own. Two transactions
 * committing at the same moment, one writing a child and the other its parent (a webhook during a sync), do not see
 * each other's rows; whichever commits last sees both here. Likewise a merge committed meanwhile: a conversation
 * written with the merged patient's old id takes the new one (docs/identity.md, known limits). Index lookups by the
 * written keys, as in the page.
 */
async function relinkCommitted(session: Session, written: ReadonlyMap<UnifiedTarget, ReadonlySet<string>>) {
  const s = relinkStatements(session.org.id, session.spec.name, written);
  // One message: the organization's scope and the statements run as one implicit transaction (db.query).
  if (s) await session.db.query(s.sql, s.params);
}

async function writeAll(
  session: Session,
  q: Querier,
  w: PageWrite,
  parents: ParentInfo[],
  dead: DeadRecord[],
  out: PageWritten,
  finish: ((q: Querier) => Promise<void>) | undefined,
  written: Map<UnifiedTarget, Set<string>>,
): Promise<void> {
  const rows = parents.flatMap((p) => p.rows);
  const batchSize = session.config.runner.batchSize;
  const changedAll = new Map<UnifiedTarget, Set<string>>();
  const resolvedAll = new Map<string, Set<string>>();
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  let identities = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const res = await writeRows(q, session.writeContext(w.stream, w.runId), rows.slice(i, i + batchSize));
    inserted += res.inserted;
    updated += res.updated;
    unchanged += res.unchanged;
    identities += res.changed.get('patient_identities')?.size ?? 0;
    addChanged(changedAll, res.changed);
    addChanged(resolvedAll, res.resolved);
  }
  // Links between what this transaction wrote and what was there (children that came before their parent).
  await relinkWritten(q, session.org.id, session.spec.name, changedAll, resolvedAll);
  if (parents.length) await session.markChildren(q, w.stream, parents, changedAll, w.marking);
  for (const d of dead) {
    const details = w.partition ? { ...(d.details as object), partition: w.partition } : d.details;
    await session.deadLetter(q, {
      stream: w.stream,
      runId: w.runId,
      errorClass: d.cls,
      errorCode: d.code,
      message: d.message,
      details,
      recordKey: d.key,
      payload: d.record,
    });
  }
  if (w.storeRaw && parents.length) {
    // A payload goes with a change of the rows it produced: a re-read of an unchanged record sends none.
    const changed = parents.filter((p) => p.produced.some(([t, id]) => changedAll.get(t)?.has(id)));
    if (changed.length) await session.storeRaw(q, w.stream, changed);
  }
  if (rows.length || dead.length) await auditBatch(session, q, w, rows, dead.length, { inserted, updated, unchanged });
  if (finish) await finish(q);
  // Counted only once the transaction's work is done (a refused batch is retried record by record).
  out.inserted += inserted;
  out.updated += updated;
  out.unchanged += unchanged;
  out.identitiesChanged += identities;
  out.deadLetters += dead.length;
  // What this transaction wrote: for the second link pass after commit, and for the caller when it asks (a webhook
  // batch credits its deliveries).
  addChanged(written, changedAll);
  if (w.changed) addChanged(w.changed, changedAll);
}

/** Adds the external_ids per target of `from` to `into`. */
function addChanged<K>(into: Map<K, Set<string>>, from: ReadonlyMap<K, ReadonlySet<string>>): void {
  for (const [t, ids] of from) {
    const set = into.get(t);
    if (set) for (const id of ids) set.add(id);
    else into.set(t, new Set(ids));
  }
}

/** One audit row per written batch, in its transaction: which tables, how many rows, under which run. */
async function auditBatch(
  session: Session,
  q: Querier,
  w: PageWrite,
  rows: ReadonlyArray<{ target: string }>,
  deadLetters: number,
  counts: { inserted: number; updated: number; unchanged: number },
): Promise<void> {
  const tables: Record<string, number> = {};
  for (const r of rows) tables[r.target] = (tables[r.target] ?? 0) + 1;
  await recordAudit(q, {
    actor: { type: 'system', id: w.runId ? 'sync' : 'webhook' },
    organizationId: session.org.id,
    action: 'sync.write',
    resourceType: 'connection',
    resourceId: session.conn.name,
    count: rows.length,
    correlationId: w.runId,
    details: { connector: session.spec.name, stream: w.stream, tables, ...counts, dead_letters: deadLetters },
  });
}
