import { randomBytes } from 'node:crypto';
import { type ClinikoSim, startCliniko } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from '../../../test/helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { ensureOrganization } from '../engine/session.ts';
import { recordAudit } from './audit.ts';
import {
  type CredentialRef,
  listCredentials,
  loadCredentials,
  openCredential,
  rotateCredentials,
  setCredential,
} from './credentials.ts';
import { parseKeyRing } from './crypto.ts';

/**
 * Issue #20: credentials sealed per organization; rotating the key while a sync runs loses nothing, every value
 * opens throughout (the old key while rows still need it), the sync reads its key from the store; the audit log
 * is append-only.
 */
const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const OLD = parseKeyRing(K1);
const BOTH = parseKeyRing(`${K2},${K1}`);
const NEW = parseKeyRing(K2);
const API_KEY = `cliniko-key-${randomBytes(6).toString('hex')}-au1`;
const by = { actor: 'test:rotation', correlationId: 'corr-rotation' };
const kinds = await backends();

describe.each(kinds)('credential store (%s)', (kind) => {
  let t: TestDb;
  let sim: ClinikoSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    sim = await startCliniko({ users: [{ apiKey: API_KEY }], seed: 7, scale: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('rotates the key while a sync runs: every credential opens throughout, none is lost, the old key serves until done', async () => {
    const q = t.db.query.bind(t.db);
    const r = connectorRunner(
      t.db,
      'org_rot_sync',
      {
        connector: 'cliniko',
        config: { base_url: sim.url, contact_email: 'ops@routiq.example' },
        credentialStore: true,
      },
      { ROUTIQ_ENCRYPTION_KEYS: `${K2},${K1}` },
    );
    await ensureOrganization(t.db, r.org);
    await setCredential(t.db, OLD, { organizationId: r.org.id, connection: 'cliniko', name: 'api_key' }, API_KEY, by);
    // 8 more organizations, 6 credentials each, all under the old key.
    const expected = new Map<string, string>([[`${r.org.id}/cliniko/api_key`, API_KEY]]);
    for (let o = 0; o < 8; o++) {
      const id = `org_rot_${String(o).padStart(2, '0')}`;
      await ensureOrganization(t.db, { ...r.org, id, connections: [] });
      for (let i = 0; i < 6; i++) {
        const ref = { organizationId: id, connection: `conn${i % 2}`, name: `secret_${i}` };
        const v = `value-${id}-${i}-${randomBytes(4).toString('hex')}`;
        await setCredential(t.db, OLD, ref, v, by);
        expected.set(`${id}/${ref.connection}/${ref.name}`, v);
      }
    }
    const openAll = async (ring: typeof BOTH) => {
      const got = new Map<string, string>();
      for (const c of await listCredentials(t.db))
        for (const [name, v] of Object.entries(await loadCredentials(q, ring, c.organizationId, c.connection)))
          got.set(`${c.organizationId}/${c.connection}/${name}`, v);
      return got;
    };

    let syncRunning = true;
    const syncing = r.sync().finally(() => {
      syncRunning = false;
    });
    const late: CredentialRef = { organizationId: 'org_rot_07', connection: 'conn0', name: 'secret_4' };
    let batches = 0;
    let overlapped = false;
    let servedByOldKey = 0;
    const rotation = await rotateCredentials(t.db, BOTH, by, {
      batchSize: 8,
      afterBatch: async () => {
        batches++;
        if (batches === 1) {
          overlapped = syncRunning;
          // A value set meanwhile (by a process that already has the new key first) is not overwritten.
          await setCredential(t.db, BOTH, late, 'set-during-rotation', by);
          expected.set('org_rot_07/conn0/secret_4', 'set-during-rotation');
        }
        // Mid-rotation: everything opens with both keys; rows not yet re-sealed still open with the old key alone.
        const now = await openAll(BOTH);
        expect(now).toEqual(expected);
        const oldRows = await q<{ organization_id: string; connection: string; name: string }>(
          "select organization_id, connection, name from organization_credentials where key_id = 'k1'",
        );
        if (oldRows.length) servedByOldKey++;
        for (const row of oldRows) {
          const ref = { organizationId: row.organization_id, connection: row.connection, name: row.name };
          expect(await openCredential(q, OLD, ref)).toBe(
            expected.get(`${ref.organizationId}/${ref.connection}/${ref.name}`),
          );
        }
      },
    });
    const summary = await syncing;

    expect(overlapped).toBe(true);
    expect(summary.status, JSON.stringify(summary.streams)).toBe('succeeded');
    expect(summary.streams.reduce((n, s) => n + s.records, 0)).toBeGreaterThan(0);
    expect(rotation).toEqual({ rotated: expected.size - 1, remaining: 0, failed: [] });
    expect(batches).toBeGreaterThan(3);
    expect(servedByOldKey).toBeGreaterThan(2);
    // Done: every credential is under k2 and opens without k1; none lost, none changed but the one set meanwhile.
    const [{ n }] = (await q<{ n: number }>(
      "select count(*)::int as n from organization_credentials where key_id <> 'k2'",
    )) as [{ n: number }];
    expect(n).toBe(0);
    expect(await openAll(NEW)).toEqual(expected);
    // The values never reach the database in clear, nor the audit log.
    const dump =
      JSON.stringify(await q('select * from organization_credentials')) +
      JSON.stringify(await q('select * from audit_log'));
    for (const v of expected.values()) expect(dump).not.toContain(v);
    const audits = await q<{ action: string; n: number; rows: number }>(
      "select action, count(*)::int as n, sum(count)::int as rows from audit_log where action like 'credentials.%' group by action order by action",
    );
    expect(audits).toEqual([
      { action: 'credentials.rotate', n: expect.any(Number), rows: expected.size - 1 },
      { action: 'credentials.set', n: expected.size + 1, rows: expected.size + 1 },
    ]);
  });

  it('opens a row only under its own organization, connection and name (a copied ciphertext does not open)', async () => {
    const q = t.db.query.bind(t.db);
    await q(
      `insert into organization_credentials (organization_id, connection, name, key_id, iv, ciphertext, tag)
       select 'org_rot_01', connection, 'copied', key_id, iv, ciphertext, tag from organization_credentials
       where organization_id = 'org_rot_00' and connection = 'conn0' and name = 'secret_0'`,
    );
    await expect(loadCredentials(q, NEW, 'org_rot_01', 'conn0')).rejects.toMatchObject({ code: 'RQ1021' });
    await q("delete from organization_credentials where name = 'copied'");
  });

  it('keeps the audit log append-only: UPDATE, DELETE and TRUNCATE are refused even for the owner', async () => {
    const q = t.db.query.bind(t.db);
    const id = await recordAudit(q, {
      actor: { type: 'cli', id: 'alice' },
      organizationId: 'org_rot_00',
      action: 'dlq.show',
      resourceType: 'sync_error',
      count: 1,
      correlationId: 'c-1',
    });
    const [row] = await q<{ actor_type: string; actor_id: string; count: number; correlation_id: string }>(
      'select actor_type, actor_id, count, correlation_id from audit_log where id = ?',
      [id],
    );
    expect(row).toEqual({ actor_type: 'cli', actor_id: 'alice', count: 1, correlation_id: 'c-1' });
    await expect(q("update audit_log set actor_id = 'mallory' where id = ?", [id])).rejects.toThrow(/append-only/);
    await expect(q('delete from audit_log where id = ?', [id])).rejects.toThrow(/append-only/);
    await expect(q('truncate audit_log')).rejects.toThrow(/append-only/);
    await expect(
      q("insert into audit_log (actor, actor_type, action, resource_type) values ('x', 'free text', 'a', 'b')"),
    ).rejects.toThrow(/check/i);
    const [still] = await q<{ n: number }>('select count(*)::int as n from audit_log where id = ?', [id]);
    expect(still!.n).toBe(1);
  });
});
