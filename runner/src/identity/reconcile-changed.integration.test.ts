/**
 * The reconcile pass over what changed (`scope: 'changed'`, neighbourhood.ts) plans the same merges as the pass over
 * the whole organization, step after step: a labelled identity set written in parts (a sync, then later ones), with
 * changed identities in between, each part followed by both plans (dry runs) and then the neighbourhood's pass.
 */

import { generateLabelledSet, toIdentityInput } from '@routiq/sandbox/identity';
import type { IdentityInput } from '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { forOrganization, transaction } from '../db/tx.ts';
import { writeRows } from '../engine/writer.ts';
import { clearMarks, loadMarks } from './neighbourhood.ts';
import { type ReconcileResult, reconcileOrganization } from './reconcile.ts';
import { createOrganization, patientOf, writeContext, writeIdentityPages } from './test-support.ts';

const kinds = await backends();
const ORG = 'org_reconcile_changed';

const merges = (r: ReconcileResult) => r.merges.map((m) => `${m.from}>${m.into}`).sort();

describe.each(kinds)('reconcile over what changed (%s)', (kind) => {
  let t: TestDb;
  const set = generateLabelledSet({ seed: 20261205, people: 300 });
  // Shuffled (a fixed permutation): contacts arrive before the records that link them, and people are split.
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const order = set.identities.map((l) => ({ l, k: random() })).sort((a, b) => a.k - b.k);
  const inputs = order.map(({ l }) => toIdentityInput(l));
  const personOf = new Map(order.map(({ l }) => [`${l.source}:${l.externalId}`, l.personId]));
  const marked = async () =>
    Number(
      (
        await t.db.query<{ n: string }>(
          'select count(*)::text as n from identity_reconcile_marks where organization_id = ?',
          [ORG],
        )
      )[0]?.n,
    );

  beforeAll(async () => {
    t = await openTestDb(kind);
    await createOrganization(t.db, ORG, { defaultCountry: set.defaultCountry });
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it('plans what the whole-organization pass plans after each part, and clears the marks it dealt with', async () => {
    // 664 identities: a first sync of 200, then later ones.
    const parts = [200, 350, 450, 550, inputs.length].map((end, k, ends) => inputs.slice(ends[k - 1] ?? 0, end));
    let first = true;
    let neighbourhoodMerges = 0;
    for (const part of parts) {
      await writeIdentityPages(t.db, ORG, part);
      expect(await marked()).toBe(part.length);
      const whole = await reconcileOrganization(t.db, { organizationId: ORG, dryRun: true });
      const near = await reconcileOrganization(t.db, { organizationId: ORG, dryRun: true, scope: 'changed' });
      expect(near.marked).toBe(part.length);
      expect(merges(near)).toEqual(merges(whole));
      if (first) {
        first = false;
      } else {
        // Later parts are small: their neighbourhood is planned, not the organization.
        expect(near.scope).toBe('changed');
        expect(near.identities).toBeLessThan(whole.identities);
        neighbourhoodMerges += near.merges.length;
      }
      const applied = await reconcileOrganization(t.db, { organizationId: ORG, actor: 'system', scope: 'changed' });
      expect(merges(applied)).toEqual(merges(near));
      expect(await marked()).toBe(0);
      expect((await reconcileOrganization(t.db, { organizationId: ORG, dryRun: true })).merges).toEqual([]);
    }
    // The later parts did bring people together (otherwise the comparison above proves little).
    expect(neighbourhoodMerges).toBeGreaterThan(0);

    // Changed identities: people still split over two patients get a cross-reference from one of their identities
    // to another (a clinic links the contact), which the neighbourhood's plan must see as the whole one does.
    const patients = await patientOf(t.db, ORG);
    const byPerson = new Map<string, IdentityInput[]>();
    for (const i of inputs) {
      const person = personOf.get(`${i.source}:${i.externalId}`)!;
      byPerson.set(person, [...(byPerson.get(person) ?? []), i]);
    }
    const changed: IdentityInput[] = [];
    for (const list of byPerson.values()) {
      const x = list[0]!;
      const y = list.find(
        (i) => patients.get(`${i.source}:${i.externalId}`) !== patients.get(`${x.source}:${x.externalId}`),
      );
      if (!y || changed.length >= 15) continue;
      changed.push({ ...x, crossRefs: [...(x.crossRefs ?? []), { source: y.source, externalId: y.externalId }] });
    }
    expect(changed.length).toBeGreaterThan(0);
    await writeIdentityPages(t.db, ORG, changed);
    expect(await marked()).toBeGreaterThan(0);
    const whole = await reconcileOrganization(t.db, { organizationId: ORG, dryRun: true });
    const near = await reconcileOrganization(t.db, { organizationId: ORG, dryRun: true, scope: 'changed' });
    expect(near.scope).toBe('changed');
    expect(merges(near)).toEqual(merges(whole));
    expect(near.merges.length).toBeGreaterThan(0);
  }, 300_000);

  /** Two clinic records of two Anns with different birth dates, on top of what `extra` gives them. */
  const annLee = (extra: Partial<IdentityInput> = {}): IdentityInput => ({
    source: 'cliniko',
    externalId: 'c1',
    firstName: 'Ann',
    lastName: 'Lee',
    dateOfBirth: '1980-02-11',
    ...extra,
  });
  const annSmith = (extra: Partial<IdentityInput> = {}): IdentityInput => ({
    ...annLee(extra),
    externalId: 'c2',
    lastName: 'Smith',
    dateOfBirth: '1991-07-23',
  });

  /**
   * Writes `first` one by one and reconciles the whole organization (nothing to merge), then writes `change`: the
   * neighbourhood's plan must find the one merge the whole organization's plan finds.
   */
  async function oneMergeAfter(org: string, first: IdentityInput[], change: IdentityInput) {
    await createOrganization(t.db, org, { defaultCountry: 'AU' });
    for (const i of first) await writeIdentityPages(t.db, org, [i]);
    expect((await reconcileOrganization(t.db, { organizationId: org, actor: 'system' })).merges).toEqual([]);
    await writeIdentityPages(t.db, org, [change]);
    const whole = await reconcileOrganization(t.db, { organizationId: org, dryRun: true });
    const near = await reconcileOrganization(t.db, { organizationId: org, dryRun: true, scope: 'changed' });
    expect(whole.merges).toHaveLength(1);
    expect(near.scope).toBe('changed');
    expect(merges(near)).toEqual(merges(whole));
  }

  it('looks at the holders of a key an identity lost (a phone changed from X to Y)', async () => {
    const X = '0412 345 678';
    // A WhatsApp contact "Ann" on the household phone: Ann Lee or Ann Smith? Neither, while both hold the phone.
    // Then Ann Lee's phone changes: the contact is Ann Smith's, which only a look at the phone's other holders
    // finds (Ann Lee's new number and name reach neither of them).
    const contact = { source: 'chatwoot', externalId: 'w1', firstName: 'Ann', phoneRaw: X };
    await oneMergeAfter(
      `${ORG}_lost`,
      [annLee({ phoneRaw: X }), annSmith({ phoneRaw: X }), contact],
      annLee({ phoneRaw: '0498 765 432' }),
    );
  });

  it('reads the decisions of a patient that a re-matched identity now links, though nothing near it changed', async () => {
    // A contact "Ann" that the clinic linked to both records: which one? Neither, while both can be her. Then the
    // first record turns out to be Bob's: the contact is Ann Smith's. Ann Smith's record shares no key with Bob's
    // (only the contact links them), so her decision — the other direction of the pair — is read because the
    // contact, re-matched, now links her patient.
    const contact = {
      source: 'chatwoot',
      externalId: 'w1',
      firstName: 'Ann',
      crossRefs: [
        { source: 'cliniko', externalId: 'c1' },
        { source: 'cliniko', externalId: 'c2' },
      ],
    };
    await oneMergeAfter(`${ORG}_far`, [annLee(), annSmith(), contact], annLee({ firstName: 'Bob' }));
  });

  it('marks an identity whose evidence a message patched (the pass re-matches it)', async () => {
    await clearMarks(t.db.query.bind(t.db), ORG, await loadMarks(t.db.query.bind(t.db), ORG));
    expect(await marked()).toBe(0);
    const first = inputs[0]!;
    await transaction(forOrganization(t.db, ORG), (q) =>
      writeRows(q, writeContext(ORG, first.source), [
        {
          target: 'patient_identities',
          mode: 'patch',
          row: {
            external_id: first.externalId,
            evidence: [{ kind: 'phone', value: '+61 400 111 222', origin: 'message' }],
          },
          sourceHash: 'patch',
        },
      ]),
    );
    expect(await marked()).toBe(1);
    const marks = await loadMarks(t.db.query.bind(t.db), ORG);
    const [row] = await t.db.query<{ id: string }>(
      'select id::text as id from patient_identities where organization_id = ? and source = ? and external_id = ?',
      [ORG, first.source, first.externalId],
    );
    expect(marks.map((m) => m.id)).toEqual([row!.id]);
    await clearMarks(t.db.query.bind(t.db), ORG, marks);
  });

  it('keeps the mark of an identity written again after the pass read it', async () => {
    await writeIdentityPages(t.db, ORG, [{ ...inputs[0]!, firstName: 'Renamed' }]);
    const marks = await loadMarks(t.db.query.bind(t.db), ORG);
    expect(marks.length).toBeGreaterThan(0);
    await writeIdentityPages(t.db, ORG, [{ ...inputs[0]!, firstName: 'Renamed again' }]);
    await clearMarks(t.db.query.bind(t.db), ORG, marks);
    expect(await marked()).toBe(1);
    await clearMarks(t.db.query.bind(t.db), ORG, await loadMarks(t.db.query.bind(t.db), ORG));
    expect(await marked()).toBe(0);
  });
});
