/**
 * `node --import tsx test/bench/identity.ts [people...]` (default 5000 20000): identity matching through the real
 * writer into PostgreSQL (embedded when the server is unreachable), on the field-noise labelled set, in pages of 25
 * identities of one source as a sync writes them. Prints per size: µs per identity, SQL statements per page (and
 * candidate lookups per page: one when the page query covers it), sequential scans of
 * patient_identities during the writes (0 = every candidate lookup used an index), the reconcile pass, pairwise
 * quality, and the plan of one page's candidate query. Cost per identity should not grow with the organization.
 */

import { forOrganization, transaction } from '@routiq/runner';
import { reconcileOrganization } from '@routiq/runner/identity';
import {
  createOrganization,
  identityKeyQuery,
  pageCandidateQuery,
  patientOf,
  writeIdentityPages,
} from '@routiq/runner/testing';
import { generateLabelledSet, toIdentityInput } from '@routiq/sandbox/identity';
import { backends, openTestDb } from '../helpers/db.ts';

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const kind = (await backends()).includes('postgres') ? 'postgres' : 'embedded';
const choose2 = (n: number) => (n * (n - 1)) / 2;

async function scans(db: Awaited<ReturnType<typeof openTestDb>>['db']) {
  const rows = await db.query<{ seq_scan: string; idx_scan: string }>(
    "select seq_scan, idx_scan from pg_stat_user_tables where relname = 'patient_identities'",
  );
  return { seq: Number(rows[0]?.seq_scan ?? 0), idx: Number(rows[0]?.idx_scan ?? 0) };
}

for (const people of sizes.length ? sizes : [5000, 20000]) {
  const t = await openTestDb(kind);
  try {
    const org = 'org_bench';
    await createOrganization(t.db, org);
    const set = generateLabelledSet({ seed: 1, people, noise: 'field' });
    const inputs = set.identities.map(toIdentityInput);
    // Analyze once the table is big enough for the planner to prefer indexes, as autovacuum would.
    const half = Math.floor(inputs.length / 2);
    await writeIdentityPages(t.db, org, inputs.slice(0, half));
    await t.db.query('analyze patient_identities');
    await new Promise((r) => setTimeout(r, 600)); // statistics collector flush (pg_stat is not transactional)
    const before = await scans(t.db);
    const count = { pages: 0, statements: 0, candidateQueries: 0 };
    const t0 = performance.now();
    await writeIdentityPages(t.db, org, inputs.slice(half), 25, count);
    const writeMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 600));
    const after = await scans(t.db);
    const r0 = performance.now();
    const rec = await reconcileOrganization(t.db, { organizationId: org, actor: 'system' });
    const reconcileMs = performance.now() - r0;

    const patient = await patientOf(t.db, org);
    const cell = new Map<string, number>();
    const byPatient = new Map<string, number>();
    const byPerson = new Map<string, number>();
    for (const l of set.identities) {
      const p = patient.get(`${l.source}:${l.externalId}`)!;
      cell.set(`${p} ${l.personId}`, (cell.get(`${p} ${l.personId}`) ?? 0) + 1);
      byPatient.set(p, (byPatient.get(p) ?? 0) + 1);
      byPerson.set(l.personId, (byPerson.get(l.personId) ?? 0) + 1);
    }
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, n) => a + choose2(n), 0);
    const tp = sum(cell);
    const precision = tp / sum(byPatient);
    const recall = tp / sum(byPerson);

    const page = inputs.filter((i) => i.source === 'cliniko').slice(0, 25);
    // Planned as the writer runs it: inside the organization (app role, row-level security).
    const plan = await transaction(forOrganization(t.db, org), async (q) => {
      const keys = identityKeyQuery(org, 'AU', page);
      const ids = keys ? await q<{ identity_id: string }>(keys.sql, keys.params) : [];
      const { sql, params } = pageCandidateQuery(
        org,
        'AU',
        page,
        ids.map((r) => String(r.identity_id)),
      );
      return [
        ...(keys ? await q<Record<string, string>>(`explain ${keys.sql}`, keys.params) : []),
        ...(await q<Record<string, string>>(`explain ${sql}`, params)),
      ];
    });
    // The node lines only (index conditions repeat the parameters).
    const planText = plan
      .map((r) => String(Object.values(r)[0]))
      .filter((l) => /Scan|BitmapOr|Limit/.test(l))
      .map((l) => l.replace(/ \(cost=.*$/, ''))
      .filter((l, i, all) => all.indexOf(l) === i)
      .join('\n');
    console.log(
      JSON.stringify({
        backend: kind,
        people,
        identities: inputs.length,
        written: inputs.length - half,
        us_per_identity: Math.round(((writeMs * 1000) / (inputs.length - half)) * 10) / 10,
        pages: count.pages,
        statements_per_page: Math.round((count.statements / count.pages) * 10) / 10,
        candidate_queries_per_page: Math.round((count.candidateQueries / count.pages) * 100) / 100,
        seq_scans_patient_identities: after.seq - before.seq,
        index_scans_patient_identities: after.idx - before.idx,
        reconcile_ms: Math.round(reconcileMs),
        reconcile_merges: rec.merges.length,
        precision: Math.round(precision * 10000) / 10000,
        recall: Math.round(recall * 10000) / 10000,
        f1: Math.round(((2 * precision * recall) / (precision + recall)) * 10000) / 10000,
      }),
    );
    console.log(`plan of one page's candidate query (${people} people):\n${planText}`);
  } finally {
    await t.drop();
  }
}
