/**
 * `patient_identities.evidence` accumulates: the contact record brings its WhatsApp inbox number, the messages stream
 * patches in what the contact wrote (normalized: E.164, lower-cased), and a later re-list of the contact (which
 * carries only the inbox part) keeps both. A patch never creates an identity.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { createOrganization, writeContext } from '../identity/test-support.ts';
import { type MappedRow, writeRows } from './writer.ts';

const kinds = await backends();
const ORG = 'evidence';

describe.each(kinds)('identity evidence on %s', (kind) => {
  let t: TestDb;
  const write = (rows: MappedRow[]) =>
    transaction(forOrganization(t.db, ORG), (q) => writeRows(q, writeContext(ORG, 'chatwoot'), rows));
  const evidenceOf = async (id: string) =>
    (
      await t.db.query<{ evidence: unknown }>(
        `select evidence from patient_identities where organization_id = ? and external_id = ?`,
        [ORG, id],
      )
    )[0]?.evidence;
  const sorted = (e: unknown) =>
    ((typeof e === 'string' ? JSON.parse(e) : e) as Array<{ value: string }>)
      .map((x) => x)
      .sort((a, b) => a.value.localeCompare(b.value));
  const contact: MappedRow = {
    target: 'patient_identities',
    mode: 'upsert',
    row: {
      external_id: '50001',
      display_name: 'Sarah Jones',
      first_name: 'Sarah',
      last_name: 'Jones',
      evidence: [{ kind: 'phone', value: '61412345678', origin: 'inbox' }],
    },
    sourceHash: 'h1',
  };
  const written = (id: string, evidence: unknown[]): MappedRow => ({
    target: 'patient_identities',
    mode: 'patch',
    row: { external_id: id, evidence },
    sourceHash: `m-${id}`,
  });

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('adds what messages say to what the contact record says, normalized, and a re-list keeps both', async () => {
    await write([contact]);
    // Two messages of one page: both are kept (rows of one key are folded into one patch).
    await write([
      written('50001', [{ kind: 'phone', value: '0498 765 432', origin: 'message' }]),
      written('50001', [
        { kind: 'email', value: 'Sarah.J@Example.com', origin: 'message' },
        { kind: 'phone', value: '12:30 25/11', origin: 'message' },
      ]),
    ]);
    const expected = [
      { kind: 'phone', value: '+61498765432', origin: 'message' },
      { kind: 'phone', value: '61412345678', origin: 'inbox' },
      { kind: 'email', value: 'sarah.j@example.com', origin: 'message' },
    ].sort((a, b) => a.value.localeCompare(b.value));
    expect(sorted(await evidenceOf('50001'))).toEqual(expected);
    await write([{ ...contact, sourceHash: 'h2' }]);
    expect(sorted(await evidenceOf('50001'))).toEqual(expected);
    // The contact's own channel fills the phone when the field is empty.
    const [row] = await t.db.query<{ phone_e164: string | null }>(
      `select phone_e164 from patient_identities where organization_id = ? and external_id = '50001'`,
      [ORG],
    );
    expect(row?.phone_e164).toBe('+61412345678');
  });

  it('evidence neither waits for nor sets a newer version', async () => {
    const [before] = await t.db.query<{ v: string }>(
      `select source_version::text as v from patient_identities where organization_id = ? and external_id = '50001'`,
      [ORG],
    );
    const old: MappedRow = {
      ...written('50001', [{ kind: 'email', value: 'old@example.com', origin: 'message' }]),
      version: '2001-01-01T00:00:00.000Z',
    };
    await write([old]);
    const [after] = await t.db.query<{ v: string; e: string }>(
      `select source_version::text as v, evidence::text as e from patient_identities where organization_id = ? and external_id = '50001'`,
      [ORG],
    );
    expect(after?.v).toBe(before?.v);
    expect(after?.e).toContain('old@example.com');
  });

  it('a message from a contact not stored yet creates nothing', async () => {
    await write([written('59999', [{ kind: 'email', value: 'x@example.com', origin: 'message' }])]);
    expect(await evidenceOf('59999')).toBeUndefined();
  });
});
