/**
 * Patient merge and unmerge: the engine operation that moves identity links from one unified patient to another.
 *
 * `mergePatients` moves every identity of `from` to `into`, repoints `from`'s conversations and appointments,
 * marks `from` as `merged_into = into`, recomputes `into`'s fields from its highest-priority identity, and writes
 * an `audit_log` row (`patients.merge`) that holds everything needed to undo it. `unmergePatients` undoes exactly
 * one such merge (`patients.unmerge`). Both run in one transaction under the organization's identity lock (the
 * one the writer takes), so they never interleave with identity creation by a sync or a webhook.
 */

import { scorePair } from '@routiq/sdk/identity';
import type { Querier } from '../engine/writer.ts';
import { RoutiqError } from '../errors/registry.ts';
import { recordAudit } from '../security/audit.ts';
import { marking } from './marks.ts';
import {
  type DbOrQuerier,
  inTransaction,
  isUuid,
  loadOrganization,
  loadPatientIdentities,
  lockIdentities,
  type OrganizationInfo,
} from './store.ts';

/**
 * Code for a refused merge/unmerge (already merged, not merged, merged again since). The registry has no
 * identity code yet; RQ6001 makes the CLI exit 2. Proposed: RQ5006 `identity.merge_refused` (exit 1).
 */
const REFUSED = 'RQ5006' as const;

export type MergeMethod = 'manual' | 'reconcile';

export interface MergeOptions {
  organizationId: string;
  /** The patient that disappears (its identities move). */
  from: string;
  /** The patient that keeps everything. */
  into: string;
  /** Who asked: `cli:<user>`, `system`, a dashboard user id. */
  actor: string;
  reason: string;
  method: MergeMethod;
  /** For reconcile: the identity (`source:externalId`) whose re-match linked the two patients. */
  via?: string | undefined;
}

export interface MergeResult {
  /** `audit_log.id` of the `patients.merge` row (the handle for `unmergePatients`). */
  auditId: string;
  organizationId: string;
  from: string;
  into: string;
  method: MergeMethod;
  /** `patient_identities.id` of the identities that moved. */
  identityIds: string[];
  conversationIds: string[];
  appointmentIds: string[];
}

export interface UnmergeOptions {
  organizationId: string;
  /** The `patients.merge` audit row to undo … */
  mergeAuditId?: string | number | undefined;
  /** … or the merged patient (the `from` of the merge): its latest merge is undone. */
  patientId?: string | undefined;
  actor: string;
  reason: string;
}

export interface UnmergeResult {
  /** `audit_log.id` of the `patients.unmerge` row. */
  auditId: string;
  mergeAuditId: string;
  organizationId: string;
  from: string;
  into: string;
  identityIds: string[];
  conversations: number;
  appointments: number;
  /**
   * How each patient's fields were restored: from the merge's snapshot, or recomputed from its identities when
   * one of them changed (or a new identity joined `into`) after the merge.
   */
  restored: { from: 'snapshot' | 'recomputed'; into: 'snapshot' | 'recomputed' };
}

interface PatientRow {
  id: string;
  organization_id: string;
  merged_into: string | null;
  [column: string]: unknown;
}

interface IdentitySnapshot {
  id: string;
  source: string;
  external_id: string;
  match_method: string;
  match_confidence: number | string;
  /** Hash of the fields the patient takes from its identities (see FINGERPRINT). */
  fingerprint: string;
}

interface MergeDetails {
  into: string;
  identity_ids: string[];
  reason: string;
  method: MergeMethod;
  via?: string;
  conversation_ids: string[];
  appointment_ids: string[];
  before: {
    from: PatientRow;
    into: PatientRow;
    identities: IdentitySnapshot[];
    into_identities: Array<{ id: string; fingerprint: string }>;
  };
}

/** What a patient's fields depend on, per identity: a change after a merge means the snapshot is stale. */
const FINGERPRINT = `md5(jsonb_build_array(first_name, last_name, display_name, email, phone_e164,
  to_char(date_of_birth, 'YYYY-MM-DD'), extract(epoch from deleted_at))::text)`;

const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function notFound(patientId: string, organizationId: string): RoutiqError {
  return new RoutiqError(
    'RQ1008',
    `no patient ${patientId} in organization "${organizationId}" (patients are never merged across organizations)`,
  );
}

async function latestMergeAudit(q: Querier, organizationId: string, patientId: string): Promise<string | null> {
  const rows = await q<{ id: string }>(
    `select id::text as id from audit_log where organization_id = ? and action = 'patients.merge' and resource_id = ?
     order by id desc limit 1`,
    [organizationId, patientId],
  );
  return rows[0]?.id ?? null;
}

/** The patients' full rows (as JSON), locked for the transaction. Rejects unknown and cross-organization ids. */
async function loadPatients(
  q: Querier,
  organizationId: string,
  ids: readonly string[],
): Promise<Map<string, PatientRow>> {
  for (const id of ids) if (!isUuid(id)) throw notFound(id, organizationId);
  const rows = await q<{ row: unknown }>(
    `select to_jsonb(p) as row from patients p where p.id in (${ids.map(() => '?::uuid').join(', ')}) order by p.id for update`,
    [...ids],
  );
  const byId = new Map<string, PatientRow>();
  for (const r of rows) {
    const row = json<PatientRow>(r.row);
    byId.set(row.id, row);
  }
  for (const id of ids) {
    const row = byId.get(id);
    if (!row || row.organization_id !== organizationId) throw notFound(id, organizationId);
  }
  return byId;
}

/**
 * Recompute a patient's fields from its highest-priority identity, as the writer does: identities ranked live
 * before deleted, then by source priority (`settings.identity.source_priority`), then oldest first. The top
 * identity's values win and the patient keeps its own where that identity has none; `primary_source` and
 * `deleted_at` come from it (so the patient is deleted only when all its identities are).
 */
export async function recomputePatient(q: Querier, org: OrganizationInfo, patientId: string): Promise<void> {
  const prio = org.sourcePriority;
  const rank = `case x.source ${prio.map(() => 'when ? then ?').join(' ')} else ${prio.length} end`;
  await q(
    `update patients p set first_name = coalesce(i.first_name, p.first_name), last_name = coalesce(i.last_name, p.last_name),
       display_name = coalesce(i.display_name, p.display_name), email = coalesce(i.email, p.email),
       phone_e164 = coalesce(i.phone_e164, p.phone_e164), date_of_birth = coalesce(i.date_of_birth, p.date_of_birth),
       primary_source = i.source, deleted_at = i.deleted_at, updated_at = now()
     from (select x.* from patient_identities x where x.patient_id = ?::uuid
           order by (x.deleted_at is not null), ${rank}, x.created_at, x.id limit 1) as i
     where p.id = ?::uuid
       and (p.first_name, p.last_name, p.display_name, p.email, p.phone_e164, p.date_of_birth, p.primary_source, p.deleted_at)
           is distinct from (coalesce(i.first_name, p.first_name), coalesce(i.last_name, p.last_name),
                             coalesce(i.display_name, p.display_name), coalesce(i.email, p.email),
                             coalesce(i.phone_e164, p.phone_e164), coalesce(i.date_of_birth, p.date_of_birth),
                             i.source, i.deleted_at)`,
    [patientId, ...prio.flatMap((s, idx) => [s, idx]), patientId],
  );
}

/** Restore a patient's own columns from a snapshot taken by `to_jsonb` (id, organization and created_at stay). */
async function restorePatient(q: Querier, snapshot: PatientRow): Promise<void> {
  await q(
    `update patients p set first_name = r.first_name, last_name = r.last_name, display_name = r.display_name,
       email = r.email, phone_e164 = r.phone_e164, date_of_birth = r.date_of_birth, primary_source = r.primary_source,
       merged_into = r.merged_into, deleted_at = r.deleted_at, updated_at = now()
     from jsonb_populate_record(null::patients, ?::jsonb) as r
     where p.id = ?::uuid`,
    [JSON.stringify(snapshot), snapshot.id],
  );
}

async function mergeIn(q: Querier, o: MergeOptions): Promise<MergeResult> {
  const org = await loadOrganization(q, o.organizationId);
  if (o.from === o.into) throw new RoutiqError(REFUSED, `cannot merge patient ${o.from} into itself`);
  const patients = await loadPatients(q, org.id, [o.from, o.into]);
  for (const id of [o.from, o.into]) {
    const p = patients.get(id)!;
    if (p.merged_into) {
      const audit = await latestMergeAudit(q, org.id, id);
      throw new RoutiqError(
        REFUSED,
        `patient ${id} is already merged into ${p.merged_into}${audit ? ` (audit #${audit})` : ''}; ` +
          `merge into ${p.merged_into} instead, or unmerge it first (routiq patients unmerge ${id})`,
      );
    }
  }

  const identities = await q<IdentitySnapshot>(
    `select id::text as id, source, external_id, match_method, match_confidence::text as match_confidence,
       ${FINGERPRINT} as fingerprint
     from patient_identities where patient_id = ?::uuid order by source, external_id`,
    [o.from],
  );
  const intoIdentities = await q<{ id: string; fingerprint: string }>(
    `select id::text as id, ${FINGERPRINT} as fingerprint from patient_identities where patient_id = ?::uuid order by id`,
    [o.into],
  );

  if (identities.length > 0) {
    // How firmly each moved identity belongs to the merged patient: 1 for a person's decision; for reconcile,
    // its best pairwise score against the merged patient's other identities.
    let confidence = new Map<string, number>(identities.map((i) => [i.id, 1]));
    if (o.method === 'reconcile') {
      const all = await loadPatientIdentities(q, [o.from, o.into]);
      confidence = new Map(
        all
          .filter((i) => i.patientId === o.from)
          .map((i) => [
            i.id,
            all
              .filter((t) => t.id !== i.id)
              .reduce((m, t) => Math.max(m, scorePair(i, t, { defaultCountry: org.defaultCountry }).score), 0),
          ]),
      );
    }
    const move = `update patient_identities t set patient_id = ?::uuid, match_method = ?, match_confidence = v.c::numeric, updated_at = now()
       from (values ${identities.map(() => '(?, ?)').join(', ')}) as v(id, c)
       where t.id = v.id::uuid and t.patient_id = ?::uuid`;
    await q(
      // A manual merge changes what the reconcile pass would plan around these identities (a patient grew); the
      // pass's own merges are its output and leave no mark.
      o.method === 'reconcile' ? move : marking(move),
      [
        o.into,
        o.method,
        ...identities.flatMap((i) => [i.id, (Math.round((confidence.get(i.id) ?? 1) * 1000) / 1000).toFixed(3)]),
        o.from,
      ],
    );
  }
  const conversations = await q<{ id: string }>(
    `update conversations set patient_id = ?::uuid, updated_at = now()
     where organization_id = ? and patient_id = ?::uuid returning id::text as id`,
    [o.into, org.id, o.from],
  );
  const appointments = await q<{ id: string }>(
    `update appointments set patient_id = ?::uuid, updated_at = now()
     where organization_id = ? and patient_id = ?::uuid returning id::text as id`,
    [o.into, org.id, o.from],
  );
  await q('update patients set merged_into = ?::uuid, updated_at = now() where id = ?::uuid', [o.into, o.from]);
  await recomputePatient(q, org, o.into);

  const details: MergeDetails = {
    into: o.into,
    identity_ids: identities.map((i) => i.id),
    reason: o.reason,
    method: o.method,
    ...(o.via ? { via: o.via } : {}),
    conversation_ids: conversations.map((r) => r.id).sort(),
    appointment_ids: appointments.map((r) => r.id).sort(),
    before: {
      from: patients.get(o.from)!,
      into: patients.get(o.into)!,
      identities: identities.map((i) => ({ ...i, match_confidence: Number(i.match_confidence) })),
      into_identities: intoIdentities,
    },
  };
  const auditId = await recordAudit(q, {
    actor: o.actor,
    organizationId: org.id,
    action: 'patients.merge',
    resourceType: 'patient',
    resourceId: o.from,
    count: 1,
    details: details as unknown as Record<string, unknown>,
  });
  return {
    auditId,
    organizationId: org.id,
    from: o.from,
    into: o.into,
    method: o.method,
    identityIds: details.identity_ids,
    conversationIds: details.conversation_ids,
    appointmentIds: details.appointment_ids,
  };
}

/**
 * Merge patient `from` into patient `into` (same organization, neither already merged). One transaction under
 * the organization's identity lock; given a querier, it runs in the caller's transaction.
 */
export async function mergePatients(dbq: DbOrQuerier, o: MergeOptions): Promise<MergeResult> {
  if (!o.reason.trim()) throw new RoutiqError('RQ6001', 'a merge needs a reason');
  return inTransaction(
    dbq,
    async (q) => {
      await lockIdentities(q, o.organizationId);
      return mergeIn(q, o);
    },
    o.organizationId,
  );
}

async function findMergeAudit(
  q: Querier,
  o: UnmergeOptions,
): Promise<{ id: string; from: string; details: MergeDetails }> {
  let auditId: string | null;
  if (o.mergeAuditId !== undefined && o.mergeAuditId !== null) {
    auditId = String(o.mergeAuditId);
    if (!/^\d{1,18}$/.test(auditId))
      throw new RoutiqError('RQ6001', `"${auditId}" is not an audit id (a number) or a patient id (a uuid)`);
  } else if (o.patientId) {
    const patients = await loadPatients(q, o.organizationId, [o.patientId]);
    const p = patients.get(o.patientId)!;
    if (!p.merged_into) {
      const into = await q<{ id: string }>(
        'select id::text as id from patients where merged_into = ?::uuid order by id limit 5',
        [o.patientId],
      );
      throw new RoutiqError(
        REFUSED,
        `patient ${o.patientId} is not merged into another patient` +
          (into.length ? `; patients merged into it: ${into.map((r) => r.id).join(', ')} (unmerge one of those)` : ''),
      );
    }
    auditId = await latestMergeAudit(q, o.organizationId, o.patientId);
    if (!auditId) {
      throw new RoutiqError(REFUSED, `patient ${o.patientId} is merged but no patients.merge audit row records it`);
    }
  } else {
    throw new RoutiqError('RQ6001', 'unmerge needs a merge audit id or a merged patient id');
  }
  const rows = await q<{ id: string; resource_id: string; details: unknown }>(
    `select id::text as id, resource_id, details from audit_log
     where id = ?::bigint and organization_id = ? and action = 'patients.merge'`,
    [auditId, o.organizationId],
  );
  const row = rows[0];
  if (!row) {
    throw new RoutiqError('RQ1008', `no patient merge #${auditId} in organization "${o.organizationId}"`);
  }
  return { id: row.id, from: row.resource_id, details: json<MergeDetails>(row.details) };
}

async function unmergeIn(q: Querier, o: UnmergeOptions): Promise<UnmergeResult> {
  const org = await loadOrganization(q, o.organizationId);
  const merge = await findMergeAudit(q, o);
  const { from, details } = merge;
  const into = details.into;
  const undone = await q<{ id: string }>(
    `select id::text as id from audit_log where organization_id = ? and action = 'patients.unmerge'
       and details->>'merge_audit_id' = ? limit 1`,
    [org.id, merge.id],
  );
  if (undone[0]) {
    throw new RoutiqError(REFUSED, `merge #${merge.id} was already undone (audit #${undone[0].id})`);
  }
  const patients = await loadPatients(q, org.id, [from, into]);
  const f = patients.get(from)!;
  const t = patients.get(into)!;
  if (f.merged_into !== into) {
    throw new RoutiqError(
      REFUSED,
      `patient ${from} is no longer merged into ${into} (merged_into: ${f.merged_into ?? 'none'}); merge #${merge.id} cannot be undone`,
    );
  }
  if (t.merged_into) {
    const later = await latestMergeAudit(q, org.id, into);
    throw new RoutiqError(
      REFUSED,
      `patient ${into} has since been merged into ${t.merged_into}${later ? ` (audit #${later})` : ''}; ` +
        `undo that merge first (routiq patients unmerge ${later ?? into})`,
    );
  }

  const ids = details.identity_ids;
  // Decide before writing how each patient's fields come back: the snapshot is exact unless identity data
  // changed after the merge (a sync updated an identity, or another identity joined `into` or left it).
  const current = new Map(
    (
      await q<{ id: string; fingerprint: string }>(
        `select id::text as id, ${FINGERPRINT} as fingerprint
         from patient_identities where patient_id = ?::uuid`,
        [into],
      )
    ).map((r) => [r.id, r.fingerprint]),
  );
  const restoredIds = new Set(ids);
  const differs = (expected: Array<{ id: string; fingerprint: string }>, actual: Map<string, string>): boolean =>
    expected.length !== actual.size || expected.some((e) => actual.get(e.id) !== e.fingerprint);
  const fromStale = differs(details.before.identities, new Map([...current].filter(([id]) => restoredIds.has(id))));
  const intoStale = differs(
    details.before.into_identities,
    new Map([...current].filter(([id]) => !restoredIds.has(id))),
  );

  const snapshots = new Map(details.before.identities.map((i) => [i.id, i]));
  if (ids.length > 0) {
    await q(
      marking(`update patient_identities t set patient_id = ?::uuid, match_method = v.m, match_confidence = v.c::numeric, updated_at = now()
       from (values ${ids.map(() => '(?, ?, ?)').join(', ')}) as v(id, m, c)
       where t.id = v.id::uuid and t.patient_id = ?::uuid`),
      [
        from,
        ...ids.flatMap((id) => {
          const s = snapshots.get(id);
          return [id, s?.match_method ?? 'new', String(s?.match_confidence ?? 1)];
        }),
        into,
      ],
    );
  }

  // Conversations and appointments: those the merge moved, and those that arrived since for a restored
  // identity (found through their patient_external_id and source).
  const repoint = async (table: 'conversations' | 'appointments', moved: string[]): Promise<number> => {
    let n = 0;
    if (moved.length > 0) {
      const rows = await q<{ id: string }>(
        `update ${table} set patient_id = ?::uuid, updated_at = now()
         where organization_id = ? and patient_id = ?::uuid and id in (${moved.map(() => '?::uuid').join(', ')})
         returning id`,
        [from, org.id, into, ...moved],
      );
      n += rows.length;
    }
    const rows = await q<{ id: string }>(
      `update ${table} t set patient_id = ?::uuid, updated_at = now() from patient_identities i
       where t.organization_id = ? and t.patient_id = ?::uuid and i.organization_id = t.organization_id
         and i.source = t.source and i.external_id = t.patient_external_id and i.patient_id = ?::uuid
       returning t.id`,
      [from, org.id, into, from],
    );
    return n + rows.length;
  };
  const conversations = await repoint('conversations', details.conversation_ids ?? []);
  const appointments = await repoint('appointments', details.appointment_ids ?? []);

  await restorePatient(q, { ...details.before.from, merged_into: null });
  if (fromStale) await recomputePatient(q, org, from);
  if (intoStale) await recomputePatient(q, org, into);
  else await restorePatient(q, details.before.into);

  const restored = {
    from: fromStale ? ('recomputed' as const) : ('snapshot' as const),
    into: intoStale ? ('recomputed' as const) : ('snapshot' as const),
  };
  const auditId = await recordAudit(q, {
    actor: o.actor,
    organizationId: org.id,
    action: 'patients.unmerge',
    resourceType: 'patient',
    resourceId: from,
    count: 1,
    details: {
      merge_audit_id: merge.id,
      into,
      identity_ids: ids,
      reason: o.reason,
      conversations,
      appointments,
      restored,
    },
  });
  return {
    auditId,
    mergeAuditId: merge.id,
    organizationId: org.id,
    from,
    into,
    identityIds: ids,
    conversations,
    appointments,
    restored,
  };
}

/**
 * Undo one merge: identities back to `from` (with their match method and confidence), `merged_into` cleared,
 * both patients' fields restored, conversations and appointments repointed. Refused when `into` has been merged
 * again since (undo that first) or the merge was already undone.
 */
export async function unmergePatients(dbq: DbOrQuerier, o: UnmergeOptions): Promise<UnmergeResult> {
  if (!o.reason.trim()) throw new RoutiqError('RQ6001', 'an unmerge needs a reason');
  return inTransaction(
    dbq,
    async (q) => {
      await lockIdentities(q, o.organizationId);
      return unmergeIn(q, o);
    },
    o.organizationId,
  );
}
