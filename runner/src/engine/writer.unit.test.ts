import type { UnifiedTarget } from '@routiq/schemas';
import type { IdentityInput, MatchContext, MatchResult } from '@routiq/sdk';
import { describe, expect, it } from 'vitest';
import type { Querier } from '../db/tx.ts';
import { crossRefKey } from '../identity/page-candidates.ts';
import { canonicalJson, hashRecord } from './record-hash.ts';
import {
  findCandidates,
  type MappedRow,
  relinkOrganization,
  relinkQueries,
  relinkWritten,
  resolvedKey,
  toIso,
  type WriteContext,
  writeRows,
} from './writer.ts';

/**
 * The writer's SQL goes through an injected querier: here one that records each statement and its parameters
 * and answers from a small script, so the statements the writer builds can be checked without a database.
 * (What that SQL does to real rows is covered by the integration tests against PGlite and PostgreSQL.)
 */
interface Call {
  /** The statement, or the write a marking statement wraps (`with w as (…)`, identity/marks.ts). */
  sql: string;
  params: readonly unknown[];
}

/** The write inside a statement that also marks identities for the reconcile pass. */
const unwrapMarking = (sql: string) => sql.replace(/^with w as \(/, '');
/** A PostgreSQL array literal as pgArray writes it, back to its values. */
function parsePgArray(text: string): Array<string | null> {
  const out: Array<string | null> = [];
  let i = 1;
  while (i < text.length - 1) {
    if (text.startsWith('NULL', i)) {
      out.push(null);
      i += 4;
    } else {
      let v = '';
      for (i++; text[i] !== '"'; i++) v += text[i] === '\\' ? text[++i] : text[i];
      out.push(v);
      i++;
    }
    if (text[i] === ',') i++;
  }
  return out;
}

/**
 * The parameters as the rows they carry: the column arrays of an `unnest(?::text[], …)` FROM item (valuesClause)
 * are read back row by row, in the order a VALUES list had them, so assertions read values per row.
 */
function asRows(sql: string, params: readonly unknown[]): readonly unknown[] {
  const m = /unnest\(((?:\?::text\[\](?:, )?)+)\)/.exec(sql);
  if (!m) return params;
  const before = (sql.slice(0, m.index).match(/\?/g) ?? []).length;
  const n = (m[1]!.match(/\?/g) ?? []).length;
  const cols = params.slice(before, before + n).map((p) => parsePgArray(String(p)));
  const rows = cols[0]!.flatMap((_, r) => cols.map((c) => c[r]));
  return [...params.slice(0, before), ...rows, ...params.slice(before + n)];
}

function recorder(answer: (sql: string, params: readonly unknown[]) => unknown[] = () => []) {
  const calls: Call[] = [];
  /** The statements as sent (a marking statement whole). */
  const sent: string[] = [];
  const q: Querier = async <T>(sql: string, params: readonly unknown[] = []) => {
    const write = unwrapMarking(sql);
    calls.push({ sql: write, params: asRows(sql, params) });
    sent.push(sql);
    return answer(write, params) as T[];
  };
  return { q, calls, sent };
}

/** The column list of an `insert into <table> … (cols)` statement. */
function insertColumns(sql: string): string[] {
  const m = /insert into \w+(?: as t)? \(([^)]*)\)/.exec(sql);
  if (!m?.[1]) throw new Error(`not an insert: ${sql.slice(0, 80)}`);
  return m[1].split(',').map((c) => c.trim());
}

function ctx(over: Partial<WriteContext> = {}): WriteContext {
  return {
    organizationId: 'org_w',
    source: 'chatwoot',
    specVersion: '2.1.0',
    stream: 'contacts',
    runId: '00000000-0000-4000-8000-000000000001',
    defaultCountry: 'AU',
    matchIdentity: async () => ({ patientId: null, method: 'new', confidence: 1 }),
    hookContext: (q) => ({
      organizationId: 'org_w',
      connector: 'chatwoot',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      db: { query: (sql, params) => q(sql, params) },
      settings: {},
      defaultCountry: 'AU',
    }),
    sourcePriority: ['cliniko', 'chatwoot', 'manychat'],
    ...over,
  };
}

const row = (
  target: MappedRow['target'],
  r: Record<string, unknown>,
  mode: MappedRow['mode'] = 'upsert',
): MappedRow => ({
  target,
  mode,
  row: r,
  sourceHash: hashRecord(r),
});

/** Answers an upsert's `returning external_id, inserted` with the given keys. */
const returning =
  (inserted: string[], updated: string[] = []) =>
  (sql: string) =>
    /^\s*insert into \w+ as t/.test(sql)
      ? [
          ...inserted.map((k) => ({ external_id: k, inserted: true })),
          ...updated.map((k) => ({ external_id: k, inserted: false })),
        ]
      : [];

describe('toIso', () => {
  it('normalizes ISO strings with offsets to UTC', () => {
    expect(toIso('2026-03-01T10:00:00+11:00')).toBe('2026-02-28T23:00:00.000Z');
    expect(toIso('2026-03-01T10:00:00Z')).toBe('2026-03-01T10:00:00.000Z');
  });

  it('reads unix seconds (integer, float, numeric string) and unix milliseconds', () => {
    expect(toIso(1_760_000_000)).toBe('2025-10-09T08:53:20.000Z');
    expect(toIso(1_760_000_000.25)).toBe('2025-10-09T08:53:20.250Z');
    expect(toIso('1760000000')).toBe('2025-10-09T08:53:20.000Z');
    expect(toIso('1760000000.5')).toBe('2025-10-09T08:53:20.500Z');
    expect(toIso(1_760_000_000_123)).toBe('2025-10-09T08:53:20.123Z');
  });

  it('passes Dates through, leaves unparsable strings for the database to refuse, and is null for other types', () => {
    expect(toIso(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe('2026-01-02T03:04:05.000Z');
    expect(toIso('next tuesday')).toBe('next tuesday');
    expect(toIso(true)).toBeNull();
    expect(toIso({})).toBeNull();
  });
});

describe('writeRows: upserts', () => {
  it('writes parents before children whatever the input order, one statement per target', async () => {
    const { q, calls } = recorder(returning([]));
    await writeRows(q, ctx(), [
      row('messages', { external_id: 'm1', conversation_external_id: 'c1', content: 'hi' }),
      row('conversations', { external_id: 'c1', status: 'open' }),
      row('practitioners', { external_id: 'p1', display_name: 'Dr P' }),
      row('messages', { external_id: 'm2', conversation_external_id: 'c1', content: 'yo' }),
    ]);
    expect(calls.map((c) => /insert into (\w+)/.exec(c.sql)?.[1])).toEqual([
      'practitioners',
      'conversations',
      'messages',
    ]);
  });

  it('writes only the columns the mapping produced, plus bookkeeping columns', async () => {
    const { q, calls } = recorder(returning(['p1']));
    await writeRows(q, ctx(), [row('practitioners', { external_id: 'p1', display_name: 'Dr P' })]);
    const cols = insertColumns(calls[0]!.sql);
    expect(cols.slice(0, 4)).toEqual(['organization_id', 'source', 'external_id', 'display_name']);
    expect(cols).toEqual(expect.arrayContaining(['source_hash', 'spec_version', 'stream', 'last_sync_run_id']));
    // Columns no row of the batch produced are not written (a later step may own them).
    for (const absent of ['first_name', 'last_name', 'title', 'active', 'deleted_at', 'metadata'])
      expect(cols).not.toContain(absent);
    // Unchanged rows are skipped by the database, not rewritten.
    expect(calls[0]!.sql).toMatch(/is distinct from/);
    expect(calls[0]!.params.slice(0, 3)).toEqual(['2.1.0', 'contacts', '00000000-0000-4000-8000-000000000001']);
  });

  it('renders values as text literals by column type, in schema column order', async () => {
    const { q, calls } = recorder(returning(['m1']));
    const r = row('messages', {
      external_id: 'm1',
      conversation_external_id: 'c1',
      content: 'hi',
      content_type: '',
      is_private: 0,
      sent_at: 1_760_000_000,
      sender_external_id: null,
      metadata: { k: 'v' },
    });
    await writeRows(q, ctx(), [r]);
    const { sql, params } = calls[0]!;
    const mapped = [
      'external_id',
      'conversation_external_id',
      'sender_external_id',
      'content',
      'content_type',
      'is_private',
      'sent_at',
      'metadata',
    ];
    expect(insertColumns(sql).slice(2, 2 + mapped.length)).toEqual(mapped);
    // The VALUES tuple: organization, source, the mapped columns in the same order, then lineage.
    const at = params.indexOf('org_w');
    expect(params.slice(at, at + 2 + mapped.length + 1)).toEqual([
      'org_w',
      'chatwoot',
      'm1',
      'c1',
      null,
      'hi',
      '',
      'false',
      '2025-10-09T08:53:20.000Z',
      '{"k":"v"}',
      r.sourceHash,
    ]);
    expect(sql).toContain('v.sent_at::timestamptz');
    expect(sql).toContain('v.is_private::boolean');
    expect(sql).toContain('v.metadata::jsonb');
  });

  it('never sends U+0000, which PostgreSQL text and jsonb refuse', async () => {
    const { q, calls } = recorder(returning(['m1']));
    await writeRows(q, ctx(), [
      row('messages', {
        external_id: 'm1',
        conversation_external_id: 'c1',
        content: 'a\u0000b',
        metadata: { k: 'v\u0000' },
      }),
    ]);
    const sent = calls[0]!.params.filter((p): p is string => typeof p === 'string');
    expect(sent.some((p) => p.includes('\u0000') || p.includes('\\u0000'))).toBe(false);
  });

  it('fills metadata with {} when a mapping leaves it empty, and truncates integers', async () => {
    const { q, calls } = recorder(returning(['a1']));
    await writeRows(q, ctx(), [
      row('appointment_types', { external_id: 'a1', metadata: null, duration_minutes: '45.9' }),
    ]);
    const { params, sql } = calls[0]!;
    const at = params.indexOf('org_w');
    expect(params.slice(at, at + 5)).toEqual(['org_w', 'chatwoot', 'a1', '45', '{}']);
    expect(sql).toContain('v.duration_minutes::integer');
  });

  it('resolves references by natural key and never clears a link it cannot resolve', async () => {
    const { q, calls } = recorder(returning(['c1']));
    await writeRows(q, ctx(), [row('conversations', { external_id: 'c1', patient_external_id: 'w9' })]);
    const sql = calls[0]!.sql;
    expect(insertColumns(sql)).toContain('patient_id');
    expect(sql).toContain(
      'select x.patient_id from patient_identities x where x.organization_id = v.organization_id and x.source = v.source and x.external_id = v.patient_external_id',
    );
    expect(sql).toContain('patient_id = coalesce(excluded.patient_id, t.patient_id)');
    // Without the field in the batch, the reference is not touched at all.
    const other = recorder(returning(['c2']));
    await writeRows(other.q, ctx(), [row('conversations', { external_id: 'c2', status: 'open' })]);
    expect(other.calls[0]!.sql).not.toContain('patient_id');
  });

  it('keeps the last version of a key in a batch (ON CONFLICT cannot touch a row twice)', async () => {
    const { q, calls } = recorder(returning(['p1']));
    await writeRows(q, ctx(), [
      row('practitioners', { external_id: 'p1', display_name: 'Old' }),
      row('practitioners', { external_id: 'p1', display_name: 'New' }),
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.params).toContain('New');
    expect(calls[0]!.params).not.toContain('Old');
  });

  it('counts inserted, updated and unchanged rows, and reports the changed keys per target', async () => {
    const { q } = recorder((sql) =>
      /insert into practitioners/.test(sql)
        ? [
            { external_id: 'p1', inserted: true },
            { external_id: 'p2', inserted: 't' },
            { external_id: 'p3', inserted: false },
          ]
        : [],
    );
    const r = await writeRows(
      q,
      ctx(),
      ['p1', 'p2', 'p3', 'p4', 'p5'].map((id) => row('practitioners', { external_id: id, display_name: id })),
    );
    expect({ inserted: r.inserted, updated: r.updated, unchanged: r.unchanged }).toEqual({
      inserted: 2,
      updated: 1,
      unchanged: 2,
    });
    expect(r.changed.get('practitioners')).toEqual(new Set(['p1', 'p2', 'p3']));
  });
});

describe('writeRows: patches', () => {
  it('updates only the patched fields of existing rows and inserts nothing', async () => {
    const { q, calls } = recorder((sql) => (sql.startsWith('update') ? [{ external_id: 'a1' }] : []));
    const r = await writeRows(q, ctx(), [
      row('appointments', { external_id: 'a1', deleted_at: '2026-01-01T00:00:00Z' }, 'patch'),
      row('appointments', { external_id: 'a2', deleted_at: '2026-01-02T00:00:00Z' }, 'patch'),
    ]);
    expect(calls).toHaveLength(1);
    const sql = calls[0]!.sql;
    expect(sql).toMatch(/^update appointments as t set deleted_at = v\.deleted_at::timestamptz,/);
    expect(sql).not.toMatch(/\b(status|notes|starts_at|patient_id) =/);
    expect(calls[0]!.params.slice(0, 2)).toEqual(['2.1.0', '00000000-0000-4000-8000-000000000001']);
    expect(calls[0]!.params).toContain('2026-01-02T00:00:00.000Z');
    expect(r).toMatchObject({ inserted: 0, updated: 1, unchanged: 1 });
    expect(r.changed.get('appointments')).toEqual(new Set(['a1']));
  });

  it('a patch with nothing but the key sends no statement', async () => {
    const { q, calls } = recorder();
    const r = await writeRows(q, ctx(), [row('messages', { external_id: 'm1' }, 'patch')]);
    expect(calls).toEqual([]);
    expect(r.unchanged).toBe(1);
  });

  it('a patched identity refreshes its unified patient', async () => {
    const { q, calls } = recorder((sql) =>
      sql.startsWith('update patient_identities') ? [{ external_id: 'w1' }] : [],
    );
    await writeRows(q, ctx(), [
      row('patient_identities', { external_id: 'w1', deleted_at: '2026-01-01T00:00:00Z' }, 'patch'),
    ]);
    expect(calls.map((c) => c.sql.trim().split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'update patient_identities',
      'update patients',
    ]);
    expect(calls[1]!.params).toEqual(['org_w', 'chatwoot', 'w1']);
  });

  it('marks a patched identity for the reconcile pass (evidence a message brought), not a patched message', async () => {
    const { q, sent } = recorder((sql) => (sql.startsWith('update') ? [{ external_id: 'w1' }] : []));
    await writeRows(q, ctx(), [
      row('patient_identities', { external_id: 'w1', evidence: [{ kind: 'phone', value: '+61400000001' }] }, 'patch'),
      row('messages', { external_id: 'm1', deleted_at: '2026-01-01T00:00:00Z' }, 'patch'),
    ]);
    const identity = sent.find((x) => x.includes('update patient_identities'))!;
    expect(identity).toMatch(/^with w as \(update patient_identities/);
    expect(identity).toContain('insert into identity_reconcile_marks');
    expect(identity).toContain('on conflict (organization_id, identity_id) do update set marked_at = now()');
    const message = sent.find((x) => x.includes('update messages'))!;
    expect(message).not.toContain('identity_reconcile_marks');
  });
});

describe('writeRows: identities', () => {
  const PATIENT = '11111111-1111-4111-8111-111111111111';

  it('locks identity resolution per organization, creates a patient for an unmatched identity and links it', async () => {
    const seen: IdentityInput[] = [];
    const { q, calls } = recorder((sql) => (/^\s*insert into patients/.test(sql) ? [{ id: PATIENT }] : []));
    const r = await writeRows(
      q,
      ctx({
        matchIdentity: async (input) => {
          seen.push(input);
          return { patientId: null, method: 'new', confidence: 1 };
        },
      }),
      [
        row('patient_identities', {
          external_id: 'w1',
          display_name: 'Alice Nguyen',
          phone: '0411 111 111',
          email: '',
          cross_refs: [{ source: 'cliniko', external_id: 77 }],
        }),
      ],
    );
    expect(calls[0]).toEqual({ sql: 'select pg_advisory_xact_lock(hashtext(?))', params: ['routiq:identity:org_w'] });
    expect(calls[1]!.sql).toMatch(
      /^select external_id from patient_identities where organization_id = \? and source = \?/,
    );
    expect(calls[1]!.params).toEqual(['org_w', 'chatwoot', 'w1']);
    expect(seen).toEqual([
      {
        source: 'chatwoot',
        externalId: 'w1',
        firstName: null,
        lastName: null,
        displayName: 'Alice Nguyen',
        email: null,
        phoneRaw: '0411 111 111',
        phoneE164: '+61411111111',
        dateOfBirth: null,
        countryHint: null,
        crossRefs: [{ source: 'cliniko', externalId: '77' }],
      },
    ]);
    // The page's candidates in two indexed queries (identity keys, then the identities), then the new patient and
    // the link.
    expect(calls[2]!.sql).toMatch(/^select k\.identity_id from identity_keys k where k\.organization_id = \?/);
    expect(calls[3]!.sql).toMatch(
      /^select i\.id, .* from patient_identities i\s+where i\.organization_id = \(select \?::text\)/s,
    );
    // The patient's id is chosen here (the page's new patients are written together, see below).
    expect(calls[4]!.sql).toMatch(/insert into patients \(id, organization_id, .*from \(values/s);
    const patientId = calls[4]!.params[0];
    expect(patientId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(calls[4]!.params.slice(1)).toEqual([
      'org_w',
      null,
      null,
      'Alice Nguyen',
      null,
      '+61411111111',
      null,
      'chatwoot',
    ]);
    const link = calls[5]!;
    expect(link.sql).toMatch(/^insert into patient_identities/);
    // …, source_hash, phone_e164, phone_valid, patient_id, match_method, match_confidence, name_key
    expect(link.params.slice(-7)).toEqual([
      expect.any(String),
      '+61411111111',
      'true',
      patientId,
      'new',
      '1',
      'alice nguyen',
    ]);
    expect(calls).toHaveLength(6);
    expect(r).toMatchObject({ inserted: 1, updated: 0, unchanged: 0 });
    expect(r.changed.get('patient_identities')).toEqual(new Set(['w1']));
  });

  it('writes the unmatched identities of a page in two statements, before anything reads the database', async () => {
    const { q, calls } = recorder();
    const reads: number[] = [];
    const matchIdentity = async (input: IdentityInput, m: MatchContext) => {
      // The third identity's hook reads the database itself: the two before it must be written by then.
      if (input.externalId === 'n3') {
        await m.db.query('select 1');
        reads.push(calls.filter((c) => /^\s*insert into patient_identities/.test(c.sql)).length);
      }
      return { patientId: null, method: 'new', confidence: 1 } as MatchResult;
    };
    const r = await writeRows(q, ctx({ matchIdentity }), [
      row('patient_identities', { external_id: 'n1', display_name: 'A One' }),
      row('patient_identities', { external_id: 'n2', display_name: 'B Two' }),
      row('patient_identities', { external_id: 'n3', display_name: 'C Three' }),
      row('patient_identities', { external_id: 'n4', display_name: 'D Four' }),
    ]);
    const inserts = calls.filter((c) => /^\s*insert into (patients|patient_identities)/.test(c.sql));
    expect(inserts.map((c) => c.sql.trim().split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'insert into patients',
      'insert into patient_identities',
      'insert into patients',
      'insert into patient_identities',
    ]);
    expect(reads).toEqual([1]);
    // n1, n2 in the first pair of statements (before the hook's read), n3, n4 in the second; 9 values a patient.
    expect(inserts[0]!.params).toHaveLength(18);
    expect(inserts[2]!.params).toHaveLength(18);
    const patientIds = [inserts[0]!, inserts[2]!].flatMap((c) => [c.params[0], c.params[9]]);
    expect(new Set(patientIds).size).toBe(4);
    // Each identity links to its own patient: patient_id is the 4th value from the end of each identity's tuple.
    const linked = [inserts[1]!, inserts[3]!].flatMap((c) => {
      const perRow = (c.params.length - 3) / 2;
      return [c.params[3 + perRow - 4], c.params[3 + 2 * perRow - 4]];
    });
    expect(linked).toEqual(patientIds);
    expect(r).toMatchObject({ inserted: 4, updated: 0, unchanged: 0 });
  });

  it('links a matched identity to the existing patient, promoting it when this source has priority', async () => {
    const { q, calls } = recorder((sql) =>
      sql.startsWith('select primary_source') ? [{ primary_source: 'manychat' }] : [],
    );
    const match: MatchResult = { patientId: PATIENT, method: 'phone', confidence: 0.95 };
    await writeRows(q, ctx({ matchIdentity: async () => match }), [
      row('patient_identities', { external_id: 'w2', phone: '+61 400 000 002' }),
    ]);
    const kinds = calls.map((c) => c.sql.trim().split(/\s+/).slice(0, 3).join(' '));
    expect(kinds).toEqual([
      'select pg_advisory_xact_lock(hashtext(?))',
      'select external_id from',
      'select k.identity_id from',
      'select i.id, i.patient_id,',
      'insert into patient_identities',
      'select primary_source from',
      'update patients set',
      'update patients p',
    ]);
    expect(calls.some((c) => /^\s*insert into patients/.test(c.sql))).toBe(false);
    expect(calls[4]!.params.slice(-4)).toEqual([PATIENT, 'phone', '0.95', null]);
    expect(calls[6]!.params).toEqual(['chatwoot', PATIENT]);
  });

  it('does not promote over a source with higher priority', async () => {
    const { q, calls } = recorder((sql) =>
      sql.startsWith('select primary_source') ? [{ primary_source: 'cliniko' }] : [],
    );
    await writeRows(q, ctx({ matchIdentity: async () => ({ patientId: PATIENT, method: 'email', confidence: 1 }) }), [
      row('patient_identities', { external_id: 'w3', email: 'a@example.com' }),
    ]);
    expect(calls.some((c) => c.sql.startsWith('update patients set primary_source'))).toBe(false);
  });

  it('updates known identities set-based and hands the hook a candidate search bound to this identity', async () => {
    const searches: Call[] = [];
    const { q, calls, sent } = recorder((sql, params) => {
      if (sql.startsWith('select external_id from patient_identities')) return [{ external_id: 'known' }];
      if (sql.trim().startsWith('update patient_identities')) return [{ external_id: 'known' }];
      if (/^\s*insert into patients/.test(sql)) return [{ id: PATIENT }];
      if (/^select .* from (patient_identities i|identity_keys k)\s/s.test(sql)) searches.push({ sql, params });
      return [];
    });
    const matchIdentity = async (_i: IdentityInput, m: MatchContext) => {
      await m.findCandidates({ phonesE164: [], emails: ['B@Example.com '], crossRefs: [] });
      return { patientId: null, method: 'new', confidence: 1 } as MatchResult;
    };
    const r = await writeRows(q, ctx({ matchIdentity }), [
      row('patient_identities', { external_id: 'known', display_name: 'K' }),
      row('patient_identities', { external_id: 'fresh', display_name: 'F', email: 'b@example.com' }),
    ]);
    // One query for the page's new identities (the known one is not matched again); the hook's search for the
    // fresh identity's email is answered from it, bound to that identity (its own cross-reference).
    expect(searches.filter((c) => c.sql.includes('limit 200'))).toEqual([]);
    expect(searches).toHaveLength(2);
    // Identity keys first: cross-references naming this identity, message evidence naming its email.
    expect(searches[0]!.sql).toMatch(/from identity_keys k/);
    expect(searches[0]!.params).toContain(crossRefKey('chatwoot', 'fresh'));
    expect(searches[0]!.params).toContain('b@example.com');
    // Then the candidates, each kind of key an array parameter (pgArray).
    expect(searches[1]!.params).toContain('{"b@example.com"}');
    expect(searches[1]!.params).toEqual(expect.arrayContaining(['chatwoot', '{"fresh"}']));
    const update = calls.find((c) => c.sql.trim().startsWith('update patient_identities'))!;
    expect(update.params.slice(0, 3)).toEqual(['2.1.0', 'contacts', '00000000-0000-4000-8000-000000000001']);
    expect(update.params.at(-1)).toBe('2.1.0');
    // Both writes mark the identities for the reconcile pass; the update keeps their fields as they were.
    const sentUpdate = sent.find((x) => x.startsWith('with w as (update patient_identities'))!;
    expect(sentUpdate).toContain('insert into identity_reconcile_marks');
    expect(sentUpdate).toContain('previous = coalesce(r.previous, excluded.previous)');
    expect(sentUpdate).toMatch(/jsonb_build_object\('first_name', o\.first_name/);
    expect(sent.find((x) => x.startsWith('with w as (insert into patient_identities as t'))).toContain(
      'insert into identity_reconcile_marks',
    );
    expect(r).toMatchObject({ inserted: 1, updated: 1, unchanged: 0 });
    expect(r.changed.get('patient_identities')).toEqual(new Set(['fresh', 'known']));
  });
});

describe('findCandidates', () => {
  const ID = '00000000-0000-4000-8000-000000000009';
  it('ORs every key it is given, lower-cases emails, and excludes nothing but deleted identities', async () => {
    const { q, calls } = recorder((sql) =>
      sql.startsWith('select k.identity_id')
        ? [{ identity_id: ID }]
        : [
            {
              id: ID,
              patient_id: 'p',
              source: 'cliniko',
              external_id: 'c1',
              first_name: 'A',
              last_name: 'B',
              display_name: null,
              email: 'a@b.c',
              phone: null,
              phone_e164: '+61400000001',
              date_of_birth: '1990-01-02',
              cross_refs: '[{"source":"chatwoot","external_id":"w1"}]',
            },
          ],
    );
    const found = await findCandidates(q, 'org_w', {
      phonesE164: ['+61400000001', '+61400000002'],
      emails: [' A@B.C'],
      crossRefs: [{ source: 'cliniko', externalId: 'c1' }],
      lastNameDob: { lastName: 'Nguyen', dateOfBirth: '1990-01-02' },
    });
    // Message evidence (a phone or email written in a conversation) through identity_keys, by plain equality.
    expect(calls[0]!.sql).toContain(
      "from identity_keys k where k.organization_id = ? and ((k.kind = 'evidence' and k.value in (?, ?, ?)))",
    );
    expect(calls[0]!.params).toEqual(['org_w', '+61400000001', '+61400000002', 'a@b.c']);
    const sql = calls[1]!.sql;
    expect(sql).toContain('i.organization_id = ? and i.deleted_at is null');
    expect(sql).toContain(
      '(i.phone_e164 in (?, ?) or i.email_lower in (?) or (i.source = ? and i.external_id = ?) or (i.last_name_lower = ? and i.date_of_birth = ?::date) or i.id in (?::uuid))',
    );
    expect(calls[1]!.params).toEqual([
      'org_w',
      '+61400000001',
      '+61400000002',
      'a@b.c',
      'cliniko',
      'c1',
      'nguyen',
      '1990-01-02',
      ID,
    ]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      patientId: 'p',
      source: 'cliniko',
      externalId: 'c1',
      crossRefs: [{ source: 'chatwoot', externalId: 'w1' }],
    });
  });

  it('asks nothing when there is no key to search by', async () => {
    const { q, calls } = recorder();
    expect(await findCandidates(q, 'org_w', { phonesE164: [], emails: [], crossRefs: [] })).toEqual([]);
    expect(calls).toEqual([]);
  });
});

describe('relink', () => {
  const table = (c: Call) => /^\s*update (\w+)/.exec(c.sql)?.[1];

  it('relinks patients, conversations, appointment types, inbox names and attachments of one organization and source', async () => {
    const { q, calls } = recorder();
    await relinkOrganization(q, 'org_w', 'cliniko');
    expect(calls.map(table)).toEqual([
      'conversations',
      'appointments',
      'messages',
      'appointments',
      'conversations',
      'attachments',
    ]);
    expect(calls[4]!.sql).toContain('c.inbox_name is distinct from p.name');
    for (const c of calls) expect(c.params).toEqual(['org_w', 'cliniko']);
    // Idempotent: only rows whose link differs are touched.
    expect(calls[0]!.sql).toContain('c.patient_id is distinct from p.patient_id');
    expect(calls[2]!.sql).toContain('c.conversation_id is null');
  });

  it('relinks only what was written: the written children by their key, the children of written parents by reference', async () => {
    const written = new Map([
      ['patient_identities', new Set(['p1', 'p2'])],
      ['conversations', new Set(['c1'])],
      ['practitioners', new Set(['d1'])],
      ['appointments', new Set<string>()],
    ]) as Map<UnifiedTarget, Set<string>>;
    const calls = relinkQueries('org_w', 'chatwoot', written);
    // Conversations written: their patient and inbox name; identities written: their conversations and appointments;
    // conversations written as parents: their messages. Nothing for practitioners nor for an empty set.
    expect(calls.map((c) => [table(c), c.params.slice(2)])).toEqual([
      ['conversations', ['c1']],
      ['conversations', ['p1', 'p2']],
      ['appointments', ['p1', 'p2']],
      ['messages', ['c1']],
      ['conversations', ['c1']],
    ]);
    expect(calls[0]!.sql).toContain('c.external_id in (?)');
    expect(calls[1]!.sql).toContain('c.patient_external_id in (?, ?)');
    // Each child probes its parent by the parent's natural key, and is left alone when the parent is missing.
    expect(calls[1]!.sql).toContain('p.external_id = c.patient_external_id');
    expect(calls[1]!.sql).toContain('(select p.patient_id is distinct from c.patient_id from patient_identities p');
    expect(calls[3]!.sql).toContain('c.conversation_id is null and (select true from conversations p');
    for (const c of calls) expect(c.params.slice(0, 2)).toEqual(['org_w', 'chatwoot']);
    // relinkWritten sends them in one message, parameters in order.
    const sent = recorder();
    await relinkWritten(sent.q, 'org_w', 'chatwoot', written);
    expect(sent.calls).toEqual([{ sql: calls.map((c) => c.sql).join(';\n'), params: calls.flatMap((c) => c.params) }]);
  });

  it('leaves out of the child direction the children whose own write resolved that link', () => {
    const written = new Map([
      ['patient_identities', new Set(['p1'])],
      ['appointments', new Set(['a1', 'a2', 'a3'])],
    ]) as Map<UnifiedTarget, Set<string>>;
    // a1 and a2 were upserted with patient_external_id and appointment_type_external_id; a3 only patched.
    const resolved = new Map([
      [resolvedKey('appointments', 'patient_external_id'), new Set(['a1', 'a2'])],
      [resolvedKey('appointments', 'appointment_type_external_id'), new Set(['a1', 'a2', 'a3'])],
    ]);
    const calls = relinkQueries('org_w', 'cliniko', written, resolved);
    expect(calls.map((c) => [table(c), c.sql.match(/c\.(\w+) in \(/)?.[1], c.params.slice(2)])).toEqual([
      ['conversations', 'patient_external_id', ['p1']],
      ['appointments', 'external_id', ['a3']],
      ['appointments', 'patient_external_id', ['p1']],
    ]);
    // Without `resolved` (the post-commit pass), every written child is relinked.
    expect(relinkQueries('org_w', 'cliniko', written).map((c) => c.params.slice(2))).toEqual([
      ['p1'],
      ['a1', 'a2', 'a3'],
      ['p1'],
      ['a1', 'a2', 'a3'],
    ]);
  });

  it('reports the links an upsert resolved, not those of a patch', async () => {
    const { q } = recorder(() => [{ external_id: 'a1', inserted: true }]);
    const res = await writeRows(q, ctx(), [
      {
        target: 'appointments',
        mode: 'upsert',
        row: { external_id: 'a1', patient_external_id: 'p1' },
        sourceHash: 'h',
      },
    ]);
    expect([...res.resolved.keys()]).toEqual([resolvedKey('appointments', 'patient_external_id')]);
    expect([...res.resolved.get(resolvedKey('appointments', 'patient_external_id'))!]).toEqual(['a1']);
    const patched = await writeRows(recorder(() => [{ external_id: 'a1' }]).q, ctx(), [
      { target: 'appointments', mode: 'patch', row: { external_id: 'a1', patient_external_id: 'p2' }, sourceHash: 'h' },
    ]);
    expect(patched.resolved.size).toBe(0);
  });

  it('asks nothing when nothing was written', async () => {
    const { q, calls } = recorder();
    await relinkWritten(q, 'org_w', 'chatwoot', new Map());
    expect(calls).toEqual([]);
  });
});
