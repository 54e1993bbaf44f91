/**
 * Migration 0013: identities written before 0010 get their name keys, in batches, without touching keys already
 * set, and a second run changes nothing.
 */
import { NAME_KEY_BACKFILL_BATCH } from '@routiq/migrations';
import { identityNameKey } from '@routiq/sdk/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { migrate } from './migrate.ts';

const kinds = await backends();
/** More rows than two batches, so the keyset walk crosses batch boundaries. */
const ROWS = NAME_KEY_BACKFILL_BATCH * 2 + 37;

describe.each(kinds)('name key backfill on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind, { migrate: false });
    await t.db.orm.getMigrator().up({ to: '0011_credentials_and_audit' });
    await t.db.query("insert into organizations (id, name) values ('org_a', 'A'), ('org_b', 'B')");
    await t.db.query(
      `insert into patients (id, organization_id)
       select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, case when g % 2 = 0 then 'org_a' else 'org_b' end
       from generate_series(1, ${ROWS}) g`,
    );
    // Cliniko-style rows (first/last), chat rows (a decorated display name cut at the first space), a row with no
    // surname (no key) and one whose key was already written by the engine (kept).
    await t.db.query(
      `insert into patient_identities (organization_id, patient_id, source, external_id, first_name, last_name, display_name, name_key)
       select case when g % 2 = 0 then 'org_a' else 'org_b' end,
              ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
              case when g % 3 = 0 then 'chatwoot' else 'cliniko' end, g::text,
              case when g = 5 then 'Mia' when g % 3 = 0 then '🌸' else 'Robert' end,
              case when g = 5 then null when g % 3 = 0 then 'Bob Smith ' || g || ' | Mum of 3' else 'Smith' end,
              case when g % 3 = 0 then '🌸 Bob Smith ' || g || ' | Mum of 3' else null end,
              case when g = 7 then 'kept key' else null end
       from generate_series(1, ${ROWS}) g`,
    );
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('fills every computable key as the sdk computes it; keeps keys already set', async () => {
    const r = await migrate(t.db);
    expect(r.applied).toContain('0013_backfill_identity_name_keys');
    const rows = await t.db.query<{
      external_id: string;
      first_name: string | null;
      last_name: string | null;
      display_name: string | null;
      name_key: string | null;
    }>('select external_id, first_name, last_name, display_name, name_key from patient_identities');
    expect(rows).toHaveLength(ROWS);
    let keyed = 0;
    for (const row of rows) {
      if (row.external_id === '7') {
        expect(row.name_key).toBe('kept key');
        continue;
      }
      const expected = identityNameKey({
        source: 'x',
        externalId: row.external_id,
        firstName: row.first_name,
        lastName: row.last_name,
        displayName: row.display_name,
      });
      expect(row.name_key, row.external_id).toBe(expected);
      if (expected) keyed++;
    }
    expect(keyed).toBe(ROWS - 2); // the surname-less Mia and the kept row
    // Nicknames and decorations fold: Robert Smith (Cliniko) and "🌸 Bob Smith 3 | Mum of 3" share the form.
    const smith = rows.find((x) => x.external_id === '1')!.name_key;
    expect(smith).toBe(identityNameKey({ source: 'x', externalId: '1', firstName: 'Bob', lastName: 'Smith' }));
  });

  it('is idempotent: running it again changes nothing', async () => {
    const before = await t.db.query<{ id: string; name_key: string | null; updated_at: string }>(
      'select id, name_key, updated_at::text from patient_identities order by id',
    );
    await t.db.query("delete from routiq_migrations where name like '0013_%'");
    const r = await migrate(t.db);
    expect(r.applied).toEqual(['0013_backfill_identity_name_keys']);
    const after = await t.db.query<{ id: string; name_key: string | null; updated_at: string }>(
      'select id, name_key, updated_at::text from patient_identities order by id',
    );
    expect(after).toEqual(before);
  });
});
