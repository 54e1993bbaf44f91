/**
 * A session analyzes the tables its writes grow (Session.analyzeAsGrown → routiq_analyze, migration 0017): from
 * 1,000 rows, then at each power of ten, under the organization's app-role scope (which may not ANALYZE by itself).
 * Without statistics the planner read an organization's rows per page (see relink-plan.integration.test.ts).
 */
import type { UnifiedTarget } from '@routiq/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import { ensureOrganization, openSession, type Session } from './session.ts';

const ORG = 'analyze_org';
const keys = (prefix: string, n: number) => new Set(Array.from({ length: n }, (_, i) => `${prefix}${i}`));

describe.each(await backends())('tables are analyzed as a session grows them (%s)', (kind) => {
  let t: TestDb;
  let session: Session;
  /** reltuples is -1 until a table's first ANALYZE (PostgreSQL 14 and later). */
  const analyzed = async (table: string) => {
    const [r] = await t.db.query<{ reltuples: number | string }>(
      `select reltuples from pg_class where oid = to_regclass(?)`,
      [table],
    );
    return Number(r?.reltuples) >= 0;
  };

  beforeAll(async () => {
    t = await openTestDb(kind);
    const conn = { connector: 'items', config: { base_url: 'http://127.0.0.1:9' } };
    const config = testConfig(connectorsDir({ items: itemsSpec('items') }), [org(ORG, [conn])]);
    const o = config.organizations[0]!;
    await ensureOrganization(t.db, o);
    session = await openSession({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger, env: {} });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('from 1,000 rows written, each table once per power of ten; new identities take patients and keys along', async () => {
    const written = (target: UnifiedTarget, n: number, prefix: string) =>
      session.analyzeAsGrown(new Map([[target, keys(prefix, n)]]));
    expect(await analyzed('messages')).toBe(false);
    await written('messages', 999, 'a');
    expect(await analyzed('messages')).toBe(false);
    await written('messages', 1, 'b');
    expect(await analyzed('messages')).toBe(true);
    expect(await analyzed('conversations')).toBe(false);

    expect(await analyzed('patients')).toBe(false);
    await written('patient_identities', 1500, 'p');
    for (const table of ['patient_identities', 'patients', 'identity_keys']) expect(await analyzed(table)).toBe(true);
  });

  it('routiq_analyze refuses a table that is not a unified table', async () => {
    await expect(t.db.query(`select routiq_analyze('organizations')`)).rejects.toThrow(/not a unified table/);
  });
});
