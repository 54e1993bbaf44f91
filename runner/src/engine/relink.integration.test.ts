/**
 * Relinking what a write touched (writer.ts relinkWritten, run by writePage in each page's or delivery's
 * transaction) gives the links the organization-wide pass (relinkOrganization) gives, whatever order identities,
 * parents and children arrive in: several seeded random arrival orders, in pages of several records and in single
 * records as webhooks deliver them, with renames and a patch that repoints a conversation. The reference is a second
 * organization fed the same transactions without any relink, then linked by one organization-wide pass.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import '@routiq/sdk';
import { forOrganization, transaction } from '../db/tx.ts';
import { writeContext } from '../identity/test-support.ts';
import type { ParentInfo } from './map.ts';
import { openSession } from './session.ts';
import { writePage } from './write-page.ts';
import { type MappedRow, relinkOrganization, writeRows } from './writer.ts';

const kinds = await backends();
const SOURCE = 'items';
/** Rows per writeRows call in a page's transaction: a page spans several calls, as with runner.batch_size. */
const BATCH = 4;

/** A small deterministic generator (mulberry32): each seed is one reproducible arrival order. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function row(target: MappedRow['target'], r: Record<string, unknown>, mode: MappedRow['mode'] = 'upsert'): MappedRow {
  return { target, mode, row: r, sourceHash: `h:${target}:${String(r.external_id)}:${JSON.stringify(r)}` };
}

/**
 * Every record of one organization: identities, inboxes, appointment types, conversations, appointments, messages
 * and attachments, some naming a parent that never arrives (p99, c99); two renames and a repointing patch.
 */
function records(): MappedRow[] {
  const out: MappedRow[] = [];
  for (let k = 0; k < 10; k++)
    out.push(row('patient_identities', { external_id: `p${k}`, first_name: `Given${k}`, last_name: `Family${k}` }));
  for (let k = 0; k < 3; k++) out.push(row('inboxes', { external_id: `i${k}`, name: `Inbox ${k}` }));
  out.push(row('inboxes', { external_id: 'i1', name: 'Inbox 1 renamed' }));
  for (let k = 0; k < 3; k++) out.push(row('appointment_types', { external_id: `t${k}`, name: `Type ${k}` }));
  out.push(row('appointment_types', { external_id: 't0', name: 'Type 0 renamed' }));
  for (let k = 0; k < 12; k++)
    out.push(
      row('conversations', {
        external_id: `c${k}`,
        patient_external_id: k === 11 ? 'p99' : `p${k % 10}`,
        inbox: `i${k % 3}`,
        status: 'open',
      }),
    );
  out.push(row('conversations', { external_id: 'c3', patient_external_id: 'p7' }, 'patch'));
  for (let k = 0; k < 12; k++)
    out.push(
      row('appointments', {
        external_id: `a${k}`,
        patient_external_id: `p${(k * 3) % 10}`,
        appointment_type_external_id: `t${k % 3}`,
        status: 'booked',
      }),
    );
  for (let k = 0; k < 24; k++)
    out.push(
      row('messages', {
        external_id: `m${k}`,
        conversation_external_id: k === 23 ? 'c99' : `c${k % 12}`,
        sender_type: 'patient',
        sent_at: `2025-06-01T10:${String(k).padStart(2, '0')}:00Z`,
      }),
    );
  for (let k = 0; k < 12; k++)
    out.push(row('attachments', { external_id: `f${k}`, message_external_id: `m${(k * 2) % 24}`, url: `u${k}` }));
  return out;
}

/** The records in a random order, cut into transactions: mostly single records (webhooks), some pages. */
function arrivals(seed: number): MappedRow[][] {
  const next = random(seed);
  const all = records();
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const chunks: MappedRow[][] = [];
  for (let i = 0; i < all.length; ) {
    const n = next() < 0.6 ? 1 : 2 + Math.floor(next() * 12);
    chunks.push(all.slice(i, i + n));
    i += n;
  }
  return chunks;
}

function parent(r: MappedRow, n: number): ParentInfo {
  return { raw: r.row, key: `${n}`, hash: r.sourceHash, rows: [r], produced: [[r.target, String(r.row.external_id)]] };
}

/** Every link, by natural keys (patients by their identity's external_id: each identity is its own patient here). */
async function links(t: TestDb, orgId: string): Promise<unknown[]> {
  return transaction(forOrganization(t.db, orgId), (q) =>
    q(
      `select 'conversation' as kind, c.external_id, i.external_id as link, c.inbox_name as value
         from conversations c left join patient_identities i on i.patient_id = c.patient_id
       union all
       select 'appointment', a.external_id, i.external_id, a.appointment_type
         from appointments a left join patient_identities i on i.patient_id = a.patient_id
       union all
       select 'message', m.external_id, c.external_id, null from messages m left join conversations c on c.id = m.conversation_id
       union all
       select 'attachment', f.external_id, m.external_id, null from attachments f left join messages m on m.id = f.message_id
       order by 1, 2`,
    ),
  );
}

describe.each(kinds)('relink of what a write touched (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it.each([1, 2, 3, 4])('gives the links of the organization-wide relink (arrival order %i)', async (seed) => {
    const scoped = `org_relink_${seed}`;
    const reference = `org_relink_ref_${seed}`;
    const o1 = org(scoped, [{ connector: SOURCE, config: { base_url: 'http://127.0.0.1:9' } }]);
    const session = await openSession({
      db: t.db,
      config: testConfig(connectorsDir({ [SOURCE]: itemsSpec(SOURCE) }), [o1], { batchSize: BATCH }),
      org: o1,
      conn: o1.connections[0]!,
      logger: silentLogger,
    });
    await t.db.query(`insert into organizations (id, name, default_country) values (?, 'Reference', 'AU')`, [
      reference,
    ]);
    const chunks = arrivals(seed);
    expect(chunks.some((c) => c.length === 1)).toBe(true);
    expect(chunks.some((c) => c.length > BATCH)).toBe(true);
    for (const chunk of chunks) {
      // As a page or a webhook delivery is written: one transaction, several writeRows batches, the scoped relink.
      await writePage(session, {
        stream: 'items',
        runId: null,
        parents: chunk.map(parent),
        dead: [],
        marking: {},
        storeRaw: false,
      });
      await transaction(forOrganization(t.db, reference), async (q) => {
        for (let i = 0; i < chunk.length; i += BATCH)
          await writeRows(q, writeContext(reference, SOURCE), chunk.slice(i, i + BATCH));
      });
    }
    const referenceBefore = await links(t, reference);
    await transaction(forOrganization(t.db, reference), (q) => relinkOrganization(q, reference, SOURCE));
    const expected = await links(t, reference);
    // The arrival order did put children before their parents: the writes alone leave links for the relink to set.
    expect(referenceBefore).not.toEqual(expected);

    const got = await links(t, scoped);
    expect(got).toEqual(expected);
    // And the organization-wide pass finds nothing left to link.
    await transaction(forOrganization(t.db, scoped), (q) => relinkOrganization(q, scoped, SOURCE));
    expect(await links(t, scoped)).toEqual(got);

    // The links are set where a parent exists, and only there.
    const byKey = new Map(
      (got as Array<{ kind: string; external_id: string; link: string | null; value: string | null }>).map((r) => [
        `${r.kind}:${r.external_id}`,
        r,
      ]),
    );
    // c3: p3 from its record, p7 from the patch if that came after it (a patch before the record changes nothing).
    expect(['p3', 'p7']).toContain(byKey.get('conversation:c3')?.link);
    expect(byKey.get('conversation:c11')?.link).toBeNull();
    expect(byKey.get('conversation:c1')?.value).toMatch(/^Inbox 1/);
    expect(byKey.get('appointment:a0')?.value).toMatch(/^Type 0/);
    expect(byKey.get('message:m5')?.link).toBe('c5');
    expect(byKey.get('message:m23')?.link).toBeNull();
    expect(byKey.get('attachment:f3')?.link).toBe('m6');
  });
});

// Two transactions at once need two connections: the embedded database has one, so its writes never overlap.
describe.each(kinds.filter((k) => k === 'postgres'))('relink of concurrent writes (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('links a child and its parent written by two transactions that do not see each other', async () => {
    const o1 = org('org_relink_race', [{ connector: SOURCE, config: { base_url: 'http://127.0.0.1:9' } }]);
    const session = await openSession({
      db: t.db,
      config: testConfig(connectorsDir({ [SOURCE]: itemsSpec(SOURCE) }), [o1]),
      org: o1,
      conn: o1.connections[0]!,
      logger: silentLogger,
    });
    const write = (r: MappedRow, finish?: () => Promise<void>) =>
      writePage(session, {
        stream: 'items',
        runId: null,
        parents: [parent(r, 0)],
        dead: [],
        marking: {},
        storeRaw: false,
        finish,
      });
    let inTransaction!: () => void;
    const messageWritten = new Promise<void>((resolve) => {
      inTransaction = resolve;
    });
    let release!: () => void;
    const conversationCommitted = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The message's transaction stays open (its last step waits) until the conversation's has committed: neither
    // sees the other's row while it links.
    const message = write(
      row('messages', {
        external_id: 'm1',
        conversation_external_id: 'c1',
        sender_type: 'patient',
        sent_at: '2025-06-01T10:00:00Z',
      }),
      async () => {
        inTransaction();
        await conversationCommitted;
      },
    );
    await messageWritten;
    await write(row('conversations', { external_id: 'c1', status: 'open' }));
    release();
    await message;
    const linked = await t.db.query<{ conversation: string | null }>(
      `select c.external_id as conversation from messages m left join conversations c on c.id = m.conversation_id
          where m.organization_id = ? and m.external_id = 'm1'`,
      [o1.id],
    );
    expect(linked).toEqual([{ conversation: 'c1' }]);
  });
});

describe.each(kinds)('names set with the row (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name, default_country) values ('org_names', 'Names', 'AU')");
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("a row written after its parent takes the parent's name in its own statement, before any relink", async () => {
    const write = (rows: MappedRow[]) =>
      transaction(forOrganization(t.db, 'org_names'), (q) => writeRows(q, writeContext('org_names', SOURCE), rows));
    await write([
      row('appointment_types', { external_id: 't1', name: 'Initial consult' }),
      row('inboxes', { external_id: 'i1', name: 'Clinic WhatsApp' }),
    ]);
    await write([
      row('appointments', { external_id: 'a1', appointment_type_external_id: 't1', status: 'booked' }),
      row('appointments', { external_id: 'a2', appointment_type_external_id: 't9', status: 'booked' }),
      // A mapping that sets the name itself: the parent's name wins where the parent is there (as the relink would
      // set it), the mapped one where it is not.
      row('appointments', {
        external_id: 'a3',
        appointment_type_external_id: 't1',
        appointment_type: 'As mapped',
        status: 'booked',
      }),
      row('appointments', {
        external_id: 'a4',
        appointment_type_external_id: 't9',
        appointment_type: 'As mapped',
        status: 'booked',
      }),
      row('conversations', { external_id: 'c1', inbox: 'i1', status: 'open' }),
    ]);
    const got = await transaction(forOrganization(t.db, 'org_names'), (q) =>
      q<{ k: string; v: string | null }>(
        `select external_id as k, appointment_type as v from appointments
         union all select external_id, inbox_name from conversations order by 1`,
      ),
    );
    expect(got).toEqual([
      { k: 'a1', v: 'Initial consult' },
      { k: 'a2', v: null },
      { k: 'a3', v: 'Initial consult' },
      { k: 'a4', v: 'As mapped' },
      { k: 'c1', v: 'Clinic WhatsApp' },
    ]);
  });
});
