/**
 * The encrypted credential store: one row per (organization, connection, secret name) in
 * `organization_credentials`, sealed by crypto.ts. Values go in through setCredential and come out only through
 * loadCredentials (for a session); listing shows names, key ids and versions. Every change is audited in the
 * transaction that makes it.
 */
import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from '../db/tx.ts';
import { RoutiqError } from '../errors/registry.ts';
import { type Actor, recordAudit } from './audit.ts';
import { type KeyRing, open, type Sealed, seal } from './crypto.ts';

export interface CredentialRef {
  organizationId: string;
  connection: string;
  name: string;
}

export interface CredentialInfo extends CredentialRef {
  keyId: string;
  version: number;
  updatedAt: string;
}

interface Row {
  organization_id: string;
  connection: string;
  name: string;
  key_id: string;
  iv: Buffer | Uint8Array;
  ciphertext: Buffer | Uint8Array;
  tag: Buffer | Uint8Array;
  version: number;
}

export interface AuditedBy {
  actor: Actor | string;
  correlationId?: string | null;
}

function aad(r: CredentialRef): string {
  return `${r.organizationId}\u0000${r.connection}\u0000${r.name}`;
}

function label(r: CredentialRef): string {
  return `${r.organizationId}/${r.connection}/${r.name}`;
}

function sealedOf(row: Row): Sealed {
  return {
    keyId: row.key_id,
    iv: Buffer.from(row.iv),
    ciphertext: Buffer.from(row.ciphertext),
    tag: Buffer.from(row.tag),
  };
}

function refOf(row: Pick<Row, 'organization_id' | 'connection' | 'name'>): CredentialRef {
  return { organizationId: row.organization_id, connection: row.connection, name: row.name };
}

const hex = (b: Buffer) => `\\x${b.toString('hex')}`;

/** Store (or replace) a credential under the ring's sealing key. */
export async function setCredential(
  db: Database,
  ring: KeyRing,
  ref: CredentialRef,
  value: string,
  by: AuditedBy,
): Promise<{ version: number; created: boolean }> {
  if (!value) throw new RoutiqError('RQ6001', `the value of credential ${label(ref)} is empty`);
  const s = seal(ring, value, aad(ref));
  return transaction(forOrganization(db, ref.organizationId), async (q) => {
    const rows = await q<{ version: number; created: boolean }>(
      `insert into organization_credentials (organization_id, connection, name, key_id, iv, ciphertext, tag)
       values (?, ?, ?, ?, ?::bytea, ?::bytea, ?::bytea)
       on conflict (organization_id, connection, name) do update set key_id = excluded.key_id, iv = excluded.iv,
         ciphertext = excluded.ciphertext, tag = excluded.tag, version = organization_credentials.version + 1,
         updated_at = now()
       returning version, (xmax = 0) as created`,
      [ref.organizationId, ref.connection, ref.name, s.keyId, hex(s.iv), hex(s.ciphertext), hex(s.tag)],
    );
    const r = rows[0] as { version: number; created: boolean };
    await recordAudit(q, {
      actor: by.actor,
      organizationId: ref.organizationId,
      action: 'credentials.set',
      resourceType: 'credential',
      resourceId: `${ref.connection}/${ref.name}`,
      count: 1,
      correlationId: by.correlationId,
      details: { connection: ref.connection, name: ref.name, key_id: s.keyId, version: r.version },
    });
    return { version: Number(r.version), created: !!r.created };
  });
}

export async function deleteCredential(db: Database, ref: CredentialRef, by: AuditedBy): Promise<boolean> {
  return transaction(forOrganization(db, ref.organizationId), async (q) => {
    const rows = await q(
      'delete from organization_credentials where organization_id = ? and connection = ? and name = ? returning 1',
      [ref.organizationId, ref.connection, ref.name],
    );
    if (rows.length)
      await recordAudit(q, {
        actor: by.actor,
        organizationId: ref.organizationId,
        action: 'credentials.delete',
        resourceType: 'credential',
        resourceId: `${ref.connection}/${ref.name}`,
        count: 1,
        correlationId: by.correlationId,
        details: { connection: ref.connection, name: ref.name },
      });
    return rows.length > 0;
  });
}

/** Names, key ids and versions: never a value. */
export async function listCredentials(
  db: Database,
  filter: { organizationId?: string | undefined; connection?: string | undefined } = {},
): Promise<CredentialInfo[]> {
  const scope = filter.organizationId
    ? forOrganization(db, filter.organizationId)
    : crossOrganization(db, 'credentials list: names and key ids of every organization');
  const rows = await scope.query<Omit<Row, 'iv' | 'ciphertext' | 'tag'> & { updated_at: string | Date }>(
    `select organization_id, connection, name, key_id, version, updated_at from organization_credentials
     where (?::text is null or organization_id = ?) and (?::text is null or connection = ?)
     order by organization_id, connection, name`,
    [
      filter.organizationId ?? null,
      filter.organizationId ?? null,
      filter.connection ?? null,
      filter.connection ?? null,
    ],
  );
  return rows.map((r) => ({
    ...refOf(r),
    keyId: r.key_id,
    version: Number(r.version),
    updatedAt: new Date(r.updated_at).toISOString(),
  }));
}

/** A connection's stored secrets, opened (name → value). */
export async function loadCredentials(
  q: Querier,
  ring: KeyRing,
  organizationId: string,
  connection: string,
): Promise<Record<string, string>> {
  const rows = await q<Row>(
    `select organization_id, connection, name, key_id, iv, ciphertext, tag, version from organization_credentials
     where organization_id = ? and connection = ?`,
    [organizationId, connection],
  );
  const out: Record<string, string> = {};
  for (const r of rows) out[r.name] = open(ring, sealedOf(r), aad(refOf(r)), label(refOf(r)));
  return out;
}

/** One stored secret, opened; undefined when absent. */
export async function openCredential(q: Querier, ring: KeyRing, ref: CredentialRef): Promise<string | undefined> {
  const [r] = await q<Row>(
    `select organization_id, connection, name, key_id, iv, ciphertext, tag, version from organization_credentials
     where organization_id = ? and connection = ? and name = ?`,
    [ref.organizationId, ref.connection, ref.name],
  );
  return r ? open(ring, sealedOf(r), aad(ref), label(ref)) : undefined;
}

export interface RotationResult {
  /** Re-sealed under the sealing key by this pass. */
  rotated: number;
  /** Rows still sealed with another key afterwards (written meanwhile by a process with an older key list). */
  remaining: number;
  /** Rows that did not open (their key is not listed): named, left as they are. */
  failed: Array<{ credential: string; reason: string }>;
}

/**
 * Re-seal every credential not under the ring's sealing key, online: batches of short transactions, each row
 * re-sealed only if nobody changed it since it was read (a `set` meanwhile wins; it is already under a current
 * key). Readers see the old or the new row, both open while the old key is still listed.
 */
export async function rotateCredentials(
  db: Database,
  ring: KeyRing,
  by: AuditedBy,
  o: { batchSize?: number; afterBatch?: (rotatedSoFar: number) => Promise<void> | void } = {},
): Promise<RotationResult> {
  const batchSize = o.batchSize ?? 100;
  const result: RotationResult = { rotated: 0, remaining: 0, failed: [] };
  let after: [string, string, string] = ['', '', ''];
  for (;;) {
    const n = await transaction(crossOrganization(db, 'credential key rotation'), async (q) => {
      const rows = await q<Row>(
        `select organization_id, connection, name, key_id, iv, ciphertext, tag, version from organization_credentials
         where key_id <> ? and (organization_id, connection, name) > (?, ?, ?)
         order by organization_id, connection, name limit ?`,
        [ring.primary, ...after, batchSize],
      );
      const byOrg = new Map<string, number>();
      for (const r of rows) {
        const ref = refOf(r);
        let plain: string;
        try {
          plain = open(ring, sealedOf(r), aad(ref), label(ref));
        } catch (err) {
          result.failed.push({ credential: label(ref), reason: (err as Error).message });
          continue;
        }
        const s = seal(ring, plain, aad(ref));
        const done = await q(
          `update organization_credentials set key_id = ?, iv = ?::bytea, ciphertext = ?::bytea, tag = ?::bytea,
             updated_at = now()
           where organization_id = ? and connection = ? and name = ? and version = ? and key_id = ? returning 1`,
          [
            s.keyId,
            hex(s.iv),
            hex(s.ciphertext),
            hex(s.tag),
            r.organization_id,
            r.connection,
            r.name,
            r.version,
            r.key_id,
          ],
        );
        if (done.length) byOrg.set(r.organization_id, (byOrg.get(r.organization_id) ?? 0) + 1);
      }
      for (const [org, count] of byOrg) {
        result.rotated += count;
        await recordAudit(q, {
          actor: by.actor,
          organizationId: org,
          action: 'credentials.rotate',
          resourceType: 'credential',
          count,
          correlationId: by.correlationId,
          details: { key_id: ring.primary },
        });
      }
      const last = rows.at(-1);
      if (last) after = [last.organization_id, last.connection, last.name];
      return rows.length;
    });
    if (n < batchSize) break;
    await o.afterBatch?.(result.rotated);
  }
  const [left] = await db.query<{ n: number }>(
    'select count(*)::int as n from organization_credentials where key_id <> ?',
    [ring.primary],
  );
  result.remaining = Number(left?.n ?? 0);
  return result;
}
