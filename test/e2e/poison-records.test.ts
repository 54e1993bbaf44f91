import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ConnectionSummary, syncConnection } from '@routiq/runner';
import { type ChatwootSim, startChatwoot } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../helpers/engine.ts';

/**
 * Issue #17, "Must show": poison records end to end, on both databases. One character a patient can type, a
 * record nested absurdly deep, or a value the database refuses must cost only that record: it is stored sanitized
 * and flagged (`sanitized = true`), or dead-lettered with a clear code; every stream ends ok, and so does the next
 * sync. The poison goes into the Chatwoot simulator's data (its model and message overrides, the simulator's own
 * test surface) and comes back through its REST API and the real connector; nesting of 10,000 levels cannot be
 * serialized by the simulator (JSON.stringify overflows), so a small raw-text API serves that one.
 */
const ACCOUNT = 5;
const TOKEN = 'tok-poison';
const kinds = await backends();

const REPLACEMENT = '\uFFFD';
/** The six characters backslash, u, 0, 0, 0, 0: valid text that must be stored as typed. */
const ESCAPED_NUL = 'Pay \\u0000 now';

/** `{"a":{"a":…}}` nested `depth` levels (built iteratively: the point is that recursion cannot). */
function nest(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let o = root;
  for (let i = 1; i < depth; i++) {
    const next: Record<string, unknown> = {};
    o.a = next;
    o = next;
  }
  o.leaf = 'bottom';
  return root;
}

function nestedText(depth: number): string {
  return `${'{"a":'.repeat(depth - 1)}{"leaf":"bottom"}${'}'.repeat(depth - 1)}`;
}

/** A string PostgreSQL cannot store as it is: a NUL or a lone UTF-16 surrogate, anywhere in the value. */
function hasPoison(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000') || !v.isWellFormed();
  if (Array.isArray(v)) return v.some(hasPoison);
  if (v && typeof v === 'object')
    return Object.entries(v as Record<string, unknown>).some(([k, x]) => hasPoison(k) || hasPoison(x));
  return false;
}

const bool = (v: unknown) => v === true || v === 't' || v === 'true';
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function streamsOk(s: ConnectionSummary): void {
  expect(s.status, JSON.stringify(s.streams)).toBe('succeeded');
  for (const st of s.streams)
    expect({ stream: st.stream, status: st.status }).toEqual({ stream: st.stream, status: 'ok' });
}

describe.each(kinds)('poison records in a Chatwoot sync (%s)', (kind) => {
  let t: TestDb;
  let sim: ChatwootSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    sim = await startChatwoot({ accounts: [{ accountId: ACCOUNT, token: TOKEN }], seed: 17, scale: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('stores each poisoned record sanitized and flagged, or dead-letters it; every stream ends ok, twice', async () => {
    const { model } = sim;
    const account = model.accounts[0]!;
    // Messages in the middle of a conversation: the conversation list item embeds only its newest messages, so a
    // poisoned middle message reaches the engine once, through the messages stream.
    const middles: Array<{ conv: number; id: number }> = [];
    for (const conv of account.conversations) {
      if (conv.deleted) continue;
      const n = model.messageCount(conv);
      const later = Array.from({ length: n }, (_, s) => s).filter((s) => s > 1 && model.kindAt(conv, s) !== 'activity');
      if (n >= 4 && later.length > 0) middles.push({ conv: conv.displayId, id: model.messageAt(conv, 1).id });
    }
    expect(middles.length).toBeGreaterThanOrEqual(4);
    const [six, nul, deep, refused] = middles as [
      (typeof middles)[0],
      (typeof middles)[0],
      (typeof middles)[0],
      (typeof middles)[0],
    ];
    model.overrides.set(six.id, { content: ESCAPED_NUL });
    model.overrides.set(nul.id, { content: 'Hello\u0000world' });
    model.overrides.set(deep.id, { contentAttributes: nest(100) });
    // attachments.size is bigint; the unified schema bounds it below only: 10^19 passes validation and the
    // database refuses it (numeric value out of range), for the whole message record.
    model.overrides.set(refused.id, {
      attachments: [
        {
          id: 990_001,
          messageId: refused.id,
          accountId: ACCOUNT,
          fileType: 'file',
          extension: 'pdf',
          fileName: 'scan.pdf',
          fileSize: 1e19,
          width: null,
          height: null,
        },
      ],
    });
    // Contacts that are not the senders in the poisoned messages' conversations (each poison checked on its own).
    const chosen = new Set(
      [six, nul, deep, refused].map((m) => model.conversationByDisplayId(account, m.conv)?.contactId),
    );
    const visible = account.contacts.filter(
      (c) => !c.deleted && (c.email || c.phone || c.identifier) && !chosen.has(c.id),
    );
    const metaContact = visible[0]!;
    const nameContact = visible[1]!;
    metaContact.customAttributes = { ...metaContact.customAttributes, note: 'allergic to\u0000latex' };
    nameContact.name = 'Zo\uD83D Quinn';

    const r = connectorRunner(
      t.db,
      'org_poison',
      { connector: 'chatwoot', config: { base_url: sim.url, account_id: ACCOUNT }, secrets: { api_token: '${CW}' } },
      { CW: TOKEN },
    );
    const q = t.db.query.bind(t.db);
    const first = await r.sync();
    streamsOk(first);

    // Messages: every message except the too-deep and the refused one, each flagged exactly when its record
    // carried a NUL or a lone surrogate (the poisoned message, and those whose sender is a poisoned contact).
    const snap = sim.snapshot().accounts[0]!;
    const restMessages = Object.values(snap.messages).flat();
    const dead = new Set([String(deep.id), String(refused.id)]);
    const msgs = await q<{ external_id: string; content: string | null; sanitized: unknown }>(
      "select external_id, content, sanitized from messages where organization_id = ? and source = 'chatwoot'",
      [r.org.id],
    );
    const msgById = new Map(msgs.map((m) => [m.external_id, m]));
    expect([...msgById.keys()].sort()).toEqual(
      restMessages
        .map((m) => String(m.id))
        .filter((id) => !dead.has(id))
        .sort(),
    );
    for (const m of restMessages) {
      const row = msgById.get(String(m.id));
      if (row) expect({ id: m.id, sanitized: bool(row.sanitized) }).toEqual({ id: m.id, sanitized: hasPoison(m) });
    }
    expect(msgById.get(String(six.id))).toEqual({
      external_id: String(six.id),
      content: ESCAPED_NUL,
      sanitized: false,
    });
    expect(msgById.get(String(nul.id))).toMatchObject({ content: `Hello${REPLACEMENT}world` });
    expect(bool(msgById.get(String(nul.id))?.sanitized)).toBe(true);

    // Contacts: the NUL in a JSON-mapped field and the lone surrogate in the name are replaced and flagged.
    const idents = await q<{
      external_id: string;
      display_name: string | null;
      first_name: string | null;
      metadata: unknown;
      sanitized: unknown;
    }>(
      "select external_id, display_name, first_name, metadata, sanitized from patient_identities where organization_id = ? and source = 'chatwoot'",
      [r.org.id],
    );
    const identById = new Map(idents.map((x) => [x.external_id, x]));
    const metaRow = identById.get(String(metaContact.id));
    expect((json(metaRow?.metadata) as { custom_attributes: { note: string } }).custom_attributes.note).toBe(
      `allergic to${REPLACEMENT}latex`,
    );
    expect(bool(metaRow?.sanitized)).toBe(true);
    const nameRow = identById.get(String(nameContact.id));
    expect(nameRow).toMatchObject({ display_name: `Zo${REPLACEMENT} Quinn`, first_name: `Zo${REPLACEMENT}` });
    expect(bool(nameRow?.sanitized)).toBe(true);
    for (const c of snap.contacts) {
      const row = identById.get(String(c.id));
      if (row) expect({ id: c.id, sanitized: bool(row.sanitized) }).toEqual({ id: c.id, sanitized: hasPoison(c) });
    }
    // Conversations: all there; flagged when the contact they embed was poisoned.
    const convs = await q<{ external_id: string; sanitized: unknown }>(
      "select external_id, sanitized from conversations where organization_id = ? and source = 'chatwoot'",
      [r.org.id],
    );
    expect(convs.map((c) => c.external_id).sort()).toEqual(snap.conversations.map((c) => String(c.id)).sort());
    const convPoison = new Map(snap.conversations.map((c) => [String(c.id), hasPoison(c)]));
    expect(
      convs
        .filter((c) => bool(c.sanitized))
        .map((c) => c.external_id)
        .sort(),
    ).toEqual(
      [...convPoison]
        .filter(([, p]) => p)
        .map(([id]) => id)
        .sort(),
    );
    expect([...convPoison.values()].some(Boolean)).toBe(true);

    // Lineage: the raw payloads kept are the sanitized ones; the six characters stay as typed.
    const raw = await q<{ external_id: string; payload: unknown }>(
      "select external_id, payload from raw_records where organization_id = ? and stream = 'messages' and external_id in (?, ?)",
      [r.org.id, String(six.id), String(nul.id)],
    );
    const rawById = new Map(raw.map((x) => [x.external_id, json(x.payload) as { content: string }]));
    expect(rawById.get(String(six.id))?.content).toBe(ESCAPED_NUL);
    expect(rawById.get(String(nul.id))?.content).toBe(`Hello${REPLACEMENT}world`);

    // The dead letters: exactly the two records, each with its code and a reason a person can act on.
    const letters = async () =>
      q<{
        stream: string;
        error_class: string;
        error_code: string;
        message: string;
        record_key: string | null;
        payload: unknown;
        details: unknown;
      }>(
        'select stream, error_class, error_code, message, record_key, payload, details from sync_errors where organization_id = ? order by error_code',
        [r.org.id],
      );
    const dl = await letters();
    expect(dl.map((d) => [d.stream, d.error_class, d.error_code])).toEqual([
      ['messages', 'write', 'RQ5004'],
      ['messages', 'validation', 'RQ5009'],
    ]);
    const [write, tooDeep] = dl as [(typeof dl)[0], (typeof dl)[0]];
    expect(write.record_key).toBe(String(refused.id));
    expect(write.message).toMatch(/out of range/i);
    expect((json(write.payload) as { id: number }).id).toBe(refused.id);
    expect(tooDeep.message).toMatch(/deeper than 64/);
    expect((json(tooDeep.payload) as { excerpt: string }).excerpt).toContain(`"id":${deep.id}`);
    expect((json(tooDeep.details) as { partition?: string }).partition).toBe(String(deep.conv));

    // The next sync (incremental) and a full refresh: nothing fails, nothing new is lost.
    const second = await r.sync();
    streamsOk(second);
    const third = await r.sync({ fullRefresh: true });
    streamsOk(third);
    const again = await q<{ n: string }>(
      "select count(*)::text as n from messages where organization_id = ? and source = 'chatwoot'",
      [r.org.id],
    );
    expect(Number(again[0]?.n)).toBe(msgs.length);
    const after = await letters();
    expect(new Set(after.map((d) => d.error_code))).toEqual(new Set(['RQ5004', 'RQ5009']));
  });
});

/** A one-route API that serves page bodies as raw text (nesting no serializer in this process can produce). */
async function rawApi(pages: string[]): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    const page = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('page') ?? 1);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(pages[page - 1] ?? '{"data":[]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => n,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const DEEP_SPEC = `spec_version: 1
name: deep
version: 1.0.0
connection:
  properties:
    base_url: { type: string, format: uri }
  required: [base_url]
base_url: "{{ $config.base_url }}"
auth: { type: none }
streams:
  - name: items
    request: { path: /items }
    records: data
    pagination: { type: page_number, size: 3 }
    map:
      - target: practitioners
        expression: |
          { "external_id": id, "display_name": name, "metadata": { "extra": extra } }
`;

describe.each(kinds)('records nested 100 and 10,000 levels deep (%s)', (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(kind);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('dead-letters each deep record as an excerpt (RQ5009); the rest of the stream is stored, twice', async () => {
    const rec = (id: string, extra: string) => `{"id":"${id}","name":"Dr ${id}","extra":${extra}}`;
    const api = await rawApi([
      `{"data":[${rec('p1', '1')},${rec('p2', nestedText(100))},${rec('p3', '"x"')}]}`,
      `{"data":[${rec('p4', nestedText(10_000))},${rec('p5', '[1,2]')},${rec('p6', JSON.stringify(nest(60)))}]}`,
      `{"data":[${rec('p7', 'null')}]}`,
    ]);
    try {
      const dir = connectorsDir({ deep: DEEP_SPEC });
      const o = org('org_deep', [{ connector: 'deep', config: { base_url: api.url } }]);
      const config = testConfig(dir, [o]);
      const run = () => syncConnection({ db: t.db, config, org: o, conn: o.connections[0]!, logger: silentLogger });
      const first = await run();
      streamsOk(first);
      expect(first.streams[0]).toMatchObject({ records: 7, inserted: 5, deadLetters: 2 });
      const rows = await t.db.query<{ external_id: string }>(
        'select external_id from practitioners where organization_id = ? order by external_id',
        [o.id],
      );
      // 60 levels of metadata plus the record's own two stay within the limit of 64.
      expect(rows.map((x) => x.external_id)).toEqual(['p1', 'p3', 'p5', 'p6', 'p7']);
      const dl = await t.db.query<{ error_code: string; payload: unknown; message: string }>(
        'select error_code, payload, message from sync_errors where organization_id = ? order by created_at',
        [o.id],
      );
      expect(dl.map((d) => d.error_code)).toEqual(['RQ5009', 'RQ5009']);
      for (const d of dl) expect(d.message).toMatch(/deeper than 64/);
      const excerpts = dl.map((d) => (json(d.payload) as { excerpt: string }).excerpt);
      expect(excerpts[0]?.startsWith('{"id":"p2"')).toBe(true);
      for (const e of excerpts) expect(e.length).toBeLessThanOrEqual(4096);
      const second = await run();
      streamsOk(second);
    } finally {
      await api.close();
    }
  });
});
