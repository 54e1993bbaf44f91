/**
 * `node --import tsx test/bench/identity-step.ts [rounds]`: CPU cost of the identity step of the writer
 * (`upsertIdentities` in runner/src/engine/writer.ts) without the database, in µs per matched identity: the derived
 * columns, the page's candidate queries, the page store, `matchIdentity` against it and the identity joining the
 * store, as the writer does them. Candidate rows come from an in-memory "database" that hands out fresh objects on
 * every read, as SQL rows are. Two cases:
 *  - cliniko: the Cliniko records of the field-noise labelled set (1,000 people) written in pages of 50, after the
 *    chat contacts;
 *  - webhook: a batch of 200 Chatwoot message deliveries for 50 contacts (deduplicated to 50 identity rows by the
 *    writer) whose phones and names are those of 50 stored Cliniko patients. Each batch brings 50 first-seen
 *    contacts (a known contact is not matched again) against the same stored candidates and is not kept, so every
 *    batch sees the same organization: the first batch is cold, the later ones show what survives between batches;
 *  - webhookTemplate: the same, with the contacts of test/bench/service-load.ts (all 50 carry one name, phone and
 *    email), so that each contact's candidates are the contacts before it in the batch.
 */

import { generateLabelledSet, toIdentityInput } from '@routiq/sandbox/identity';
import type { CandidateQuery, IdentityInput, MatchContext, StoredIdentity } from '@routiq/sdk';
import { matchIdentity } from '@routiq/sdk';
import {
  candidateQueryFor,
  evidenceForStorage,
  identityNameKey,
  MemoryIdentityStore,
  normalizeIdentityForStorage,
} from '@routiq/sdk/identity';
import { normalizePhone } from '@routiq/sdk/phone';

const rounds = Number(process.argv[2] ?? 10);
const country = 'AU';
const logger = { debug() {}, info() {}, warn() {}, error() {} };
let nextPatient = 0;

/** The writer's identity step for one page; `keep` false leaves `db` as it was (a batch that is measured again). */
async function writePage(db: MemoryIdentityStore, page: IdentityInput[], keep = true): Promise<void> {
  const derived = page.map((i) => {
    const e164 = normalizePhone(i.phoneRaw ?? null, { defaultCountry: country, countryHint: i.countryHint ?? null });
    if (i.evidence) evidenceForStorage(i, country);
    identityNameKey(i);
    return e164.e164;
  });
  const rowOf = (i: IdentityInput, k: number): IdentityInput => ({ ...i, phoneE164: derived[k] ?? null });
  const fresh = page.map(rowOf);
  // PageCandidates.load: the page's keys (computed twice, as identityKeyQuery and pageCandidateQuery do), one read.
  const queries = fresh.map((i) => candidateQueryFor(i, country));
  for (const i of fresh) candidateQueryFor(i, country);
  const rows = new Map<string, StoredIdentity>();
  for (const q of queries)
    for (const s of db.findCandidates({ ...q, crossRefs: [...q.crossRefs] }))
      rows.set(`${s.source}:${s.externalId}`, s);
  const store = new MemoryIdentityStore();
  for (const r of rows.values()) store.add(r);
  const added: StoredIdentity[] = [];
  for (const [k, i] of page.entries()) {
    const input = rowOf(i, k);
    const self = { source: input.source, externalId: input.externalId };
    const ctx = {
      settings: {},
      logger,
      defaultCountry: country,
      findCandidates: async (q: CandidateQuery) => store.findCandidates({ ...q, crossRefs: [...q.crossRefs, self] }),
    } as unknown as MatchContext;
    const m = await matchIdentity(input, ctx);
    const stored = {
      ...normalizeIdentityForStorage(input, country),
      phoneE164: derived[k] ?? null,
      patientId: m.patientId ?? `p${nextPatient++}`,
    };
    store.add(stored);
    added.push(stored);
  }
  if (keep) for (const s of added) db.add(s);
}

function cpu(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const set = generateLabelledSet({ seed: 1, people: 1000, noise: 'field' });
const all = set.identities.map(toIdentityInput);
const clinikoIn = all.filter((i) => i.source === 'cliniko');
const chat = all.filter((i) => i.source !== 'cliniko');
const pages = (xs: IdentityInput[], n: number) =>
  Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, k * n + n));

const clinikoUs: number[] = [];
const cold: number[] = [];
const warm: number[] = [];
const template: number[] = [];
for (let round = 0; round < rounds; round++) {
  const db = new MemoryIdentityStore();
  for (const p of pages(chat, 50)) await writePage(db, p);
  let t0 = cpu();
  for (const p of pages(clinikoIn, 50)) await writePage(db, p);
  clinikoUs.push((cpu() - t0) / clinikoIn.length);

  // 50 Cliniko patients with a phone; each gets a Chatwoot contact (display name, phone as WhatsApp shows it).
  const people = clinikoIn.filter((i) => i.phoneRaw && i.firstName && i.lastName).slice(0, 50);
  for (let b = 0; b < 20; b++) {
    const deliveries: IdentityInput[] = Array.from({ length: 200 }, (_, n) => {
      const p = people[n % 50]!;
      return {
        source: 'chatwoot',
        externalId: String(900_000 + b * 100 + (n % 50)),
        displayName: `${p.firstName} ${p.lastName}`,
        phoneRaw: p.phoneRaw ?? null,
        evidence: [{ kind: 'phone', value: (p.phoneRaw ?? '').replace(/\D/g, ''), origin: 'inbox' }],
      };
    });
    // The writer deduplicates a batch's rows by key (the last one wins).
    const batch = [...new Map(deliveries.map((d) => [d.externalId, d])).values()];
    t0 = cpu();
    await writePage(db, batch, false);
    (b === 0 ? cold : warm).push((cpu() - t0) / batch.length);
    if (b > 0 && round < 2) warm.pop();
  }
  // The deliveries of test/bench/service-load.ts: every contact of an organization carries the template's sender
  // (same name, phone and email; only the id varies), so each first-seen contact has the ones before it as
  // candidates.
  for (let b = 0; b < 5; b++) {
    const deliveries: IdentityInput[] = Array.from({ length: 200 }, (_, n) => ({
      source: 'chatwoot',
      externalId: String(800_000 + b * 100 + (n % 50)),
      displayName: 'Jordan Smith',
      email: 'jordan.smith@example.com',
      phoneRaw: '+61 412 345 678',
    }));
    const batch = [...new Map(deliveries.map((d) => [d.externalId, d])).values()];
    t0 = cpu();
    await writePage(db, batch, false);
    if (round >= 2) template.push((cpu() - t0) / batch.length);
  }
}
// The first two rounds warm the JIT and the process-wide phone and name memos: left out of the medians.
const median = (xs: number[]) => {
  const kept = xs.length > 3 ? xs.slice(2) : xs;
  return [...kept].sort((a, b) => a - b)[Math.floor(kept.length / 2)]!;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
console.log(
  JSON.stringify({
    rounds,
    clinikoIdentities: clinikoIn.length,
    chatIdentities: chat.length,
    cpuUsPerIdentity: {
      clinikoPages: { median: r1(median(clinikoUs)), all: clinikoUs.map(r1) },
      webhookBatchCold: { median: r1(median(cold)), all: cold.map(r1) },
      webhookBatchWarm: { median: r1([...warm].sort((a, b) => a - b)[Math.floor(warm.length / 2)]!) },
      webhookTemplateBatch: { median: r1([...template].sort((a, b) => a - b)[Math.floor(template.length / 2)]!) },
    },
  }),
);
