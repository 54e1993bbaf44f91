/**
 * The page candidate lookups stay index scans inside an organization. Under row-level security (the app role,
 * forOrganization) PostgreSQL uses a condition as an index condition only when it is leakproof, so a page query
 * comparing `lower(email)` or probing jsonb `@>` filtered every row of the organization (docs/identity.md). Here an
 * organization of a few thousand identities (next to a bigger neighbour) is EXPLAINed: no sequential scan,
 * and every index scan is narrowed by a key, not just by the organization. Also checks that `identity_keys`
 * follows the identities' cross-references and message evidence (insert, update, delete).
 */

import type { IdentityInput } from '@routiq/sdk';
import { candidateQueryFor, identityNameKey } from '@routiq/sdk/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import type { Querier } from '../db/tx.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { findCandidates } from '../engine/writer.ts';
import { crossRefKey, identityKeyQuery, PageCandidates, pageCandidateQuery } from './page-candidates.ts';
import { createOrganization } from './test-support.ts';

const kinds = await backends();
const ORG = 'plan_org';
const OTHER = 'plan_other';
const N = 3000;
/** The neighbour's size: a shared database's tables are bigger than one organization (see seed). */
const NEIGHBOUR = 15000;

/** `n` identities in `org`, with phones, emails, names, dates of birth, cross-references and evidence. */
async function seed(t: TestDb, org: string, n: number): Promise<void> {
  await t.db.query(
    `insert into patients (organization_id, last_name) select ?, 'Person' || g from generate_series(1, ${n}) g`,
    [org],
  );
  await t.db.query(
    `insert into patient_identities (organization_id, patient_id, source, external_id, first_name, last_name, email,
        phone_e164, date_of_birth, name_key, cross_refs, evidence)
      select p.organization_id, p.id, 'chatwoot', 'c' || g, 'Ann' || g, 'Person' || g, 'Ann' || g || '@Example.com',
        '+6141' || lpad(g::text, 7, '0'), date '1980-01-01' + g::int, 'ann person' || g,
        jsonb_build_array(jsonb_build_object('source', 'cliniko', 'external_id', 'k' || g)),
        jsonb_build_array(jsonb_build_object('kind', 'phone', 'value', '+6143' || lpad(g::text, 7, '0'), 'origin', 'message'))
      from (select id, organization_id, row_number() over (order by id) g from patients where organization_id = ?) p`,
    [org],
  );
}

/** A page of 25 identities whose keys hit stored rows through every kind of key. */
function page(): IdentityInput[] {
  return Array.from({ length: 25 }, (_, n) => {
    const g = 100 + n * 97;
    return {
      source: 'cliniko',
      externalId: `k${g}`,
      firstName: `Ann${g}`,
      lastName: `Person${g}`,
      email: ` ann${g}@example.COM`,
      phoneRaw: `+6143${String(g).padStart(7, '0')}`,
      dateOfBirth: '1990-05-06',
      crossRefs: [{ source: 'chatwoot', externalId: `c${g + 1}` }],
    };
  });
}

async function explain(t: TestDb, sql: string, params: unknown[]): Promise<string> {
  const rows = await transaction(forOrganization(t.db, ORG), (q) =>
    q<Record<string, string>>(`explain ${sql}`, params),
  );
  return rows.map((r) => String(Object.values(r)[0])).join('\n');
}

/** Every scan of `table` is an index scan whose condition names one of `keys` (not the organization alone). */
function expectKeyedIndexScans(plan: string, table: string, keys: RegExp): void {
  expect(plan, plan).not.toMatch(new RegExp(`Seq Scan on ${table}\\b`));
  const lines = plan.split('\n');
  const scans = lines.flatMap((l, n) =>
    new RegExp(`Index (Only )?Scan (using|on) \\w+ on ${table}\\b|Bitmap Index Scan on ${table}_`).test(l) ? [n] : [],
  );
  expect(scans.length, plan).toBeGreaterThan(0);
  for (const n of scans) {
    const cond = lines.slice(n + 1).find((l) => /Index Cond:/.test(l)) ?? '';
    expect(cond, plan).toMatch(keys);
  }
}

describe.each(kinds)('page candidate plans on %s', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG);
    await createOrganization(t.db, OTHER);
    await seed(t, ORG, N);
    // The planner weighs a scan of the whole table against the index probes of a page (50 and more values), so
    // the table must be as big as a shared database's for the probes to win: under row-level security with a
    // non-leakproof condition there is no index path at all, whatever the size.
    await seed(t, OTHER, NEIGHBOUR);
    await t.db.query('analyze patients');
    await t.db.query('analyze patient_identities');
    await t.db.query('analyze identity_keys');
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it('keeps one row per cross-reference and message evidence value, following updates and deletes', async () => {
    const keys = await t.db.query<{ kind: string; value: string }>(
      `select k.kind, k.value from identity_keys k join patient_identities i on i.id = k.identity_id
        where i.organization_id = ? and i.external_id = 'c7' order by k.kind`,
      [ORG],
    );
    expect(keys).toEqual([
      { kind: 'evidence', value: '+61430000007' },
      { kind: 'xref', value: crossRefKey('cliniko', 'k7') },
    ]);
    await transaction(forOrganization(t.db, ORG), async (q) => {
      await q(
        `update patient_identities set cross_refs = '[{"source": "manychat", "external_id": "m7"}]',
           evidence = '[{"kind": "email", "value": "x@y.z", "origin": "inbox"}]' where external_id = 'c7'`,
      );
      expect(
        await q(
          `select k.kind, k.value from identity_keys k join patient_identities i on i.id = k.identity_id
            where i.external_id = 'c7'`,
        ),
      ).toEqual([{ kind: 'xref', value: crossRefKey('manychat', 'm7') }]);
      const [before] = await q<{ n: number }>('select count(*)::int as n from identity_keys');
      await q(`delete from patient_identities where external_id = 'c7'`);
      const [after] = await q<{ n: number }>('select count(*)::int as n from identity_keys');
      expect((before?.n ?? 0) - (after?.n ?? 0)).toBe(1);
      // Inside the organization only its own keys are visible.
      expect(after?.n).toBe(2 * N - 2);
      expect(await q('select 1 from identity_keys where organization_id = ?', [OTHER])).toEqual([]);
    });
  });

  it('writes the keys of an identity inserted with only evidence or only cross-references, none without (0019)', async () => {
    await transaction(forOrganization(t.db, ORG), async (q) => {
      const [p] = await q<{ id: string }>(
        `insert into patients (organization_id, last_name) values (?, 'K') returning id`,
        [ORG],
      );
      await q(
        `insert into patient_identities (organization_id, patient_id, source, external_id, cross_refs, evidence) values
           (?, ?, 'manychat', 'ev-only', default, '[{"kind": "phone", "value": "+61439999001", "origin": "message"}]'),
           (?, ?, 'manychat', 'xref-only', '[{"source": "cliniko", "external_id": "k-x"}]', null),
           (?, ?, 'manychat', 'none', default, null)`,
        [ORG, p!.id, ORG, p!.id, ORG, p!.id],
      );
      const keys = await q<{ external_id: string; kind: string; value: string }>(
        `select i.external_id, k.kind, k.value from identity_keys k join patient_identities i on i.id = k.identity_id
          where i.source = 'manychat' order by i.external_id`,
      );
      expect(keys).toEqual([
        { external_id: 'ev-only', kind: 'evidence', value: '+61439999001' },
        { external_id: 'xref-only', kind: 'xref', value: crossRefKey('cliniko', 'k-x') },
      ]);
      // A key added later to an identity inserted without any comes through the update trigger.
      await q(
        `update patient_identities set cross_refs = '[{"source": "cliniko", "external_id": "k-n"}]' where external_id = 'none'`,
      );
      expect(
        await q(
          `select k.value from identity_keys k join patient_identities i on i.id = k.identity_id where i.external_id = 'none'`,
        ),
      ).toEqual([{ value: crossRefKey('cliniko', 'k-n') }]);
      await q(`delete from patient_identities where source = 'manychat'`);
      await q('delete from patients where id = ?', [p!.id]);
    });
  });

  it('finds identity ids by cross-reference and evidence through the key index', async () => {
    const keys = identityKeyQuery(ORG, 'AU', page());
    expect(keys).not.toBeNull();
    const plan = await explain(t, keys!.sql, keys!.params);
    expectKeyedIndexScans(plan, 'identity_keys', /value/);
    const ids = await transaction(forOrganization(t.db, ORG), (q) => q(keys!.sql, keys!.params));
    // Per page identity: its evidence phone (+6143…g) and its own key cliniko:k<g> (stored as a cross-reference).
    expect(ids.length).toBe(50);
  });

  it('fetches the candidates with index scans keyed by each condition', async () => {
    const keys = identityKeyQuery(ORG, 'AU', page());
    const ids = await transaction(forOrganization(t.db, ORG), (q) =>
      q<{ identity_id: string }>(keys!.sql, keys!.params),
    );
    const { sql, params } = pageCandidateQuery(
      ORG,
      'AU',
      page(),
      ids.map((r) => String(r.identity_id)),
    );
    const plan = await explain(t, sql, params);
    expectKeyedIndexScans(
      plan,
      'patient_identities',
      /phone_e164|email_lower|external_id|name_key|last_name_lower|\bid\b/,
    );
    const rows = await transaction(forOrganization(t.db, ORG), (q) => q<{ external_id: string }>(sql, params));
    // Per page identity g: c<g> (email, name, evidence, cross-reference to k<g>) and c<g+1> (its cross-reference).
    expect(new Set(rows.map((r) => r.external_id)).size).toBe(50);
  });

  it('probes by keys for an organization the statistics do not know yet (new, in an analyzed shared table)', async () => {
    const NEW = 'plan_new';
    await createOrganization(t.db, NEW);
    // Written after the last ANALYZE: the planner takes the organization to hold about one row.
    await seed(t, NEW, 2000);
    const rows = await transaction(forOrganization(t.db, NEW), async (q) => {
      const { sql, params } = pageCandidateQuery(NEW, 'AU', page(), []);
      const plan = (await q<Record<string, string>>(`explain ${sql}`, params))
        .map((r) => String(Object.values(r)[0]))
        .join('\n');
      expectKeyedIndexScans(plan, 'patient_identities', /phone_e164|email_lower|external_id|name_key|last_name_lower/);
      return q<{ external_id: string }>(sql, params);
    });
    // The 20 page identities with g ≤ 2,000: c<g> and c<g+1> each (as in the organization above).
    expect(new Set(rows.map((r) => r.external_id)).size).toBe(40);
  });

  it('finds keys holding quotes, backslashes, commas and braces (array parameters)', async () => {
    const odd = `x"y\\z,{1} 'w'`;
    await transaction(forOrganization(t.db, ORG), async (q) => {
      const [p] = await q<{ id: string }>(
        `insert into patients (organization_id, last_name) values (?, 'O') returning id`,
        [ORG],
      );
      await q(
        `insert into patient_identities (organization_id, patient_id, source, external_id, email, last_name, date_of_birth)
         values (?, ?, 'manychat', ?, ?, ?, '1990-01-02')`,
        [ORG, p!.id, odd, `a"b\\c@example.com`, `O'Br"ien`],
      );
      const input: IdentityInput = { source: 'manychat', externalId: odd };
      const { sql, params } = pageCandidateQuery(ORG, 'AU', [input], []);
      expect((await q<{ external_id: string }>(sql, params)).map((r) => r.external_id)).toEqual([odd]);
      const byEmail = pageCandidateQuery(
        ORG,
        'AU',
        [{ source: 'cliniko', externalId: 'n1', email: `A"B\\c@example.com` }],
        [],
      );
      expect((await q<{ external_id: string }>(byEmail.sql, byEmail.params)).map((r) => r.external_id)).toEqual([odd]);
      const byDob = pageCandidateQuery(
        ORG,
        'AU',
        [{ source: 'cliniko', externalId: 'n2', firstName: 'Zed', lastName: `O'Br"ien`, dateOfBirth: '1990-01-02' }],
        [],
      );
      expect((await q<{ external_id: string }>(byDob.sql, byDob.params)).map((r) => r.external_id)).toEqual([odd]);
      await q(`delete from patient_identities where source = 'manychat'`);
      await q('delete from patients where id = ?', [p!.id]);
    });
  });

  it('keeps the per-identity candidate query (hooks, hot keys) on index scans too', async () => {
    const plans: string[] = [];
    await transaction(forOrganization(t.db, ORG), (q) =>
      findCandidates(
        async <T>(sql: string, params: readonly unknown[] = []) => {
          const plan = await q<Record<string, string>>(`explain ${sql}`, params);
          plans.push(plan.map((r) => String(Object.values(r)[0])).join('\n'));
          // The key lookup's answer feeds the identity query; the identity query's rows are not needed here.
          return (sql.includes('from identity_keys') ? await q(sql, params) : []) as T[];
        },
        ORG,
        {
          phonesE164: ['+61430000500'],
          emails: ['ann500@example.com'],
          crossRefs: [{ source: 'chatwoot', externalId: 'c501' }],
          lastNameDob: { lastName: 'person500', dateOfBirth: '1981-05-16' },
          nameKeys: ['anne person'],
        },
        { source: 'cliniko', externalId: 'k500' },
      ),
    );
    expect(plans).toHaveLength(2);
    expectKeyedIndexScans(plans[0]!, 'identity_keys', /value/);
    expectKeyedIndexScans(
      plans[1]!,
      'patient_identities',
      /phone_e164|email_lower|external_id|name_key|last_name_lower|\bid\b/,
    );
  });

  it('a page over the row limit is fetched in halves: every identity covered, one hot identity left to its own query', async () => {
    const org = 'plan_halves';
    await createOrganization(t.db, org);
    const surnames = ['Adams', 'Baker', 'Clark', 'Davis', 'Evans', 'Foster', 'Grant', 'Hughes', 'Irwin', 'Jones'];
    // Ten people with a phone and an email each, and twelve namesakes "Zoe Namesake" (as in a large practice).
    const stored = [
      ...surnames.map((last, n) => ({
        first: 'Ann',
        last,
        phone: `+6141000000${n}`,
        email: `ann.${last}@example.com`,
      })),
      ...Array.from({ length: 12 }, () => ({ first: 'Zoe', last: 'Namesake', phone: null, email: null })),
    ];
    await transaction(forOrganization(t.db, org), async (q) => {
      for (const [n, r] of stored.entries()) {
        const [p] = await q<{ id: string }>(
          'insert into patients (organization_id, last_name) values (?, ?) returning id::text as id',
          [org, r.last],
        );
        const key = identityNameKey({ source: 'chatwoot', externalId: `s${n}`, firstName: r.first, lastName: r.last });
        await q(
          `insert into patient_identities (organization_id, patient_id, source, external_id, first_name, last_name,
             phone_e164, email, name_key) values (?, ?::uuid, 'chatwoot', ?, ?, ?, ?, ?, ?)`,
          [org, p!.id, `s${n}`, r.first, r.last, r.phone, r.email, key],
        );
      }
    });
    const inputs: IdentityInput[] = [
      ...surnames.map((last, n) => ({
        source: 'cliniko',
        externalId: `k${n}`,
        firstName: 'Ann',
        lastName: last,
        phoneRaw: `+6141000000${n}`,
        email: `ANN.${last}@example.com`,
      })),
      ...[1, 2, 3].map((n) => ({
        source: 'cliniko',
        externalId: `zn${n}`,
        firstName: 'Zoe',
        lastName: 'Namesake',
        dateOfBirth: `200${n}-01-01`,
      })),
    ];
    const load = (maxRows: number) =>
      transaction(forOrganization(t.db, org), async (q) => {
        let queries = 0;
        const counting: Querier = <T>(sql: string, params: readonly unknown[] = []) => {
          queries++;
          return q<T>(sql, params);
        };
        const pc = await PageCandidates.load(counting, org, 'AU', inputs, maxRows);
        // What each identity's own query returns, for comparison.
        const own = [];
        for (const i of inputs) {
          const query = candidateQueryFor(i, 'AU');
          const self = { source: i.source, externalId: i.externalId };
          own.push({
            covered: pc.covers(query, self),
            page: pc.find(query, self),
            db: await findCandidates(q, org, query, self),
          });
        }
        return { queries, own };
      });
    const ids = (xs: Array<{ source: string; externalId: string }>) =>
      xs.map((x) => `${x.source}:${x.externalId}`).sort();

    // One query pair for the whole page under the default limit.
    const whole = await load(5000);
    expect(whole.queries).toBe(2);
    expect(whole.own.every((o) => o.covered)).toBe(true);
    // 22 candidate rows: under a limit of 13 the page is fetched in halves (the namesakes' half alone has 12),
    // everything covered, each identity's candidates those of its own query.
    const split = await load(13);
    expect(split.own.every((o) => o.covered)).toBe(true);
    for (const o of split.own) expect(ids(o.page)).toEqual(ids(o.db));
    expect(ids(split.own.at(-1)!.page)).toHaveLength(12);
    expect(split.queries).toBeGreaterThan(2);
    expect(split.queries).toBeLessThan(2 * inputs.length);
    // Under a limit of 10 a namesake alone has 12: those three are left to their own query, the rest still covered.
    const hot = await load(10);
    expect(hot.own.map((o) => o.covered)).toEqual(inputs.map((i) => !i.externalId.startsWith('zn')));
    for (const o of hot.own.filter((x) => x.covered)) expect(ids(o.page)).toEqual(ids(o.db));
  });

  it('a hot key is not halved down to single identities: small chunks over the limit go to their own queries', async () => {
    const org = 'plan_hot';
    await createOrganization(t.db, org);
    // The clinic's landline on 60 stored patients: no chunk of the page gets under a limit of 50 by halving.
    await transaction(forOrganization(t.db, org), async (q) => {
      for (let n = 0; n < 60; n++) {
        const [p] = await q<{ id: string }>(
          "insert into patients (organization_id, last_name) values (?, 'Landline') returning id::text as id",
          [org],
        );
        await q(
          `insert into patient_identities (organization_id, patient_id, source, external_id, first_name, last_name, phone_e164)
           values (?, ?::uuid, 'chatwoot', ?, ?, 'Landline', '+61298765432')`,
          [org, p!.id, `h${n}`, `Guest${'abcdefghij'[n % 10]}`],
        );
      }
    });
    const inputs: IdentityInput[] = Array.from({ length: 10 }, (_, n) => ({
      source: 'cliniko',
      externalId: `k${n}`,
      firstName: 'Ann',
      lastName: `Caller${'abcdefghij'[n]}`,
      phoneRaw: '(02) 9876 5432',
    }));
    const { queries, covered } = await transaction(forOrganization(t.db, org), async (q) => {
      let queries = 0;
      const counting: Querier = <T>(sql: string, params: readonly unknown[] = []) => {
        queries++;
        return q<T>(sql, params);
      };
      const pc = await PageCandidates.load(counting, org, 'AU', inputs, 50);
      const covered = inputs.map((i) =>
        pc.covers(candidateQueryFor(i, 'AU'), { source: i.source, externalId: i.externalId }),
      );
      return { queries, covered };
    });
    expect(covered.every((c) => !c)).toBe(true);
    // Halved while a chunk averages at most 25 candidates an identity (10 → 5 → 3 → 2 identities: 11 chunks, two
    // queries each), not down to single identities (19 chunks).
    expect(queries).toBe(22);
  });
});
