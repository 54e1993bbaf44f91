import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ManyChatSim, startManyChat } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blank, CONNECTORS_DIR, iso } from '../helpers/connectors.ts';
import { backends } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService } from './serve-harness.ts';

/**
 * Issue #18, "Must show": ManyChat External Requests through `routiq serve` over a real port into the unified
 * tables, in every body shape the connector accepts: the Full Contact Data (`{{user}}`) as the body, and an
 * author's template carrying the contact in `data` or `user`, as a JSON string or as an object, next to (or
 * without) subscriber_id and text. The token is checked where the spec says: the bundled spec reads the
 * X-Routiq-Token header; a copy of it that reads a `token` query parameter stands for a flow that can only put
 * the token in its URL. A wrong, missing or misplaced token is a 401 that writes nothing.
 */
const PAGE = '104729000000001';
const API_KEY = `${PAGE}:0123456789abcdef0123456789abcdef`;
const HOOK = 'hook-token-serve';
const HEADER_ORG = 'org_mc_header';
const QUERY_ORG = 'org_mc_query';
const CLOSED = 'http://127.0.0.1:9/closed';
const env = { MC_KEY: API_KEY, MC_HOOK: HOOK };
const kinds = await backends();

/** Connectors dir: the bundled manychat spec, and `manychat_query`, the same spec verifying a query parameter. */
function connectorsWithQueryVariant(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'routiq-serve-mc-'));
  cpSync(path.join(CONNECTORS_DIR, 'manychat'), path.join(dir, 'manychat'), { recursive: true });
  cpSync(path.join(CONNECTORS_DIR, 'manychat'), path.join(dir, 'manychat_query'), { recursive: true });
  const file = path.join(dir, 'manychat_query', 'connector.yaml');
  const text = readFileSync(file, 'utf8');
  // The bundled spec takes the token in the header or the query; the variant takes it in the query only.
  const changed = text.replace(/\n\s+header: X-Routiq-Token/, '');
  if (changed === text || !/query: token/.test(changed))
    throw new Error('the manychat spec no longer verifies the X-Routiq-Token header and the token query parameter');
  writeFileSync(file, changed);
  return dir;
}

interface Push {
  orgId: string;
  subscriberId: string;
  text: string;
  /** The Full Contact Data of the subscriber at the time of the push. */
  user: Record<string, unknown>;
}

describe.each(kinds)('routiq serve: ManyChat External Requests over HTTP (%s)', (kind) => {
  let sim: ManyChatSim;
  let svc: RunningService;
  let dir: string;
  beforeAll(async () => {
    sim = await startManyChat({ pages: [{ pageId: PAGE, token: API_KEY }], seed: 7, scale: 1 });
    dir = connectorsWithQueryVariant();
    const conn = (connector: string) => ({
      connector,
      name: 'manychat',
      config: { base_url: sim.url },
      secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
    });
    const config = testConfig(dir, [org(HEADER_ORG, [conn('manychat')]), org(QUERY_ORG, [conn('manychat_query')])], {
      deadlineSeconds: 300,
    });
    svc = await startService(kind, config, env);
  });
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('takes every body shape with the token where the spec reads it, refuses a wrong one, and writes each push once', async () => {
    const subs = sim.snapshot().pages[0]!.subscribers.map((s) => String(s.id));
    expect(subs.length).toBeGreaterThanOrEqual(8);
    const headerUrl = `${svc.url}/webhooks/${HEADER_ORG}/manychat`;
    const queryUrl = (token: string) => `${svc.url}/webhooks/${QUERY_ORG}/manychat?token=${encodeURIComponent(token)}`;
    const pushes: Push[] = [];
    let n = 0;
    const text = () => `Push ${++n}: is Thursday 4pm free? ${'🙂'.repeat(n % 2)}`;

    // A contact writes; the flow's External Request, as the simulator renders and sends it, reaches the service.
    const flow = async (orgId: string, url: string, sid: string, o: Record<string, unknown>) => {
      const t = text();
      const r = await sim.simulateInbound({ pageId: PAGE, subscriberId: sid, text: t, url, ...o });
      expect(r?.status, r?.responseBody).toBe(202);
      const body = JSON.parse(r!.requestBody) as Record<string, unknown>;
      const carried = body.key ? body : (body.data ?? body.user);
      const user = (typeof carried === 'string' ? JSON.parse(carried) : carried) as Record<string, unknown>;
      pushes.push({ orgId, subscriberId: sid, text: t, user });
      return body;
    };
    // A contact writes and the flow's body is built here (a shape the simulator's templates cannot render): the
    // Full Contact Data of that moment is what the simulator sent to a closed port.
    const custom = async (sid: string, shape: (user: Record<string, unknown>, text: string) => unknown) => {
      const t = text();
      const r = await sim.simulateInbound({ pageId: PAGE, subscriberId: sid, text: t, url: CLOSED });
      const user = JSON.parse(r!.requestBody) as Record<string, unknown>;
      const body = JSON.stringify(shape(user, t));
      const res = await post(headerUrl, body, { 'X-Routiq-Token': HOOK });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      pushes.push({ orgId: HEADER_ORG, subscriberId: sid, text: t, user });
      return body;
    };
    const header = { 'X-Routiq-Token': HOOK };

    // Refused: a wrong token (in either place the bundled spec reads), no token, and the header where the variant
    // reads only the query.
    const some = JSON.stringify({ subscriber_id: subs[0], text: 'hello', data: '{}' });
    expect(await post(headerUrl, some, { 'X-Routiq-Token': 'nope' })).toEqual({
      status: 401,
      body: { error: 'webhook rejected: missing or wrong token' },
    });
    expect((await post(headerUrl, some)).status).toBe(401);
    expect((await post(`${headerUrl}?token=nope`, some)).status).toBe(401);
    expect((await post(queryUrl('nope'), some)).status).toBe(401);
    expect((await post(`${svc.url}/webhooks/${QUERY_ORG}/manychat`, some, header)).status).toBe(401);
    const refused = await svc.db.query<{
      organization_id: string;
      status: string;
      body: string | null;
      headers: unknown;
    }>('select organization_id, status, body, headers from webhook_inbox order by id');
    expect(refused.map((r) => [r.organization_id, r.status, r.body])).toEqual([
      [HEADER_ORG, 'rejected', null],
      [HEADER_ORG, 'rejected', null],
      [HEADER_ORG, 'rejected', null],
      [QUERY_ORG, 'rejected', null],
      [QUERY_ORG, 'rejected', null],
    ]);
    for (const r of refused) expect(JSON.stringify(r.headers)).not.toMatch(/x-routiq-token|nope|hook-token/i);
    const none = await svc.db.query('select external_id from messages');
    expect(none).toEqual([]);

    // Header token: the Full Contact Data; the default author template ("data": "{{user}}", a JSON string); a
    // template with "user": "{{user}}"; the contact as an object in data or user; data alone (no subscriber_id/text).
    await flow(HEADER_ORG, headerUrl, subs[0]!, { template: 'full_contact', headers: header });
    await flow(HEADER_ORG, headerUrl, subs[1]!, { template: 'custom', headers: header });
    await flow(HEADER_ORG, headerUrl, subs[2]!, {
      template: 'custom',
      bodyTemplate: '{"subscriber_id":"{{subscriber_id}}","text":"{{last_input_text}}","user":"{{user}}"}',
      headers: header,
    });
    await custom(subs[3]!, (user, t) => ({ subscriber_id: String(user.id), text: t, data: user, canal: 'WA' }));
    await custom(subs[4]!, (user, t) => ({ subscriber_id: String(user.id), text: t, user }));
    await custom(subs[5]!, (user) => ({ data: user }));
    // A second message of an already pushed contact.
    await flow(HEADER_ORG, headerUrl, subs[0]!, { template: 'custom', headers: header });
    // Query token: the Full Contact Data and the default template.
    await flow(QUERY_ORG, queryUrl(HOOK), subs[6]!, { template: 'full_contact' });
    await flow(QUERY_ORG, queryUrl(HOOK), subs[7]!, { template: 'custom' });
    await svc.service.idle();

    // A redelivered request (ManyChat does not retry, a flow may run twice) is the same row.
    const again = sim.externalRequests.filter((r) => r.status === 202).at(-1)!;
    expect((await post(queryUrl(HOOK), again.requestBody)).status).toBe(202);
    await svc.service.idle();

    const q = svc.db.query.bind(svc.db);
    for (const orgId of [HEADER_ORG, QUERY_ORG]) {
      const mine = pushes.filter((p) => p.orgId === orgId);
      const msgs = await q<Record<string, unknown>>(
        "select external_id, conversation_external_id, content, sent_at, direction, sender_type, sender_external_id, conversation_id from messages where organization_id = ? and source = 'manychat' order by external_id",
        [orgId],
      );
      const expected = mine
        .map((p) => ({
          external_id: `${p.subscriberId}:${Date.parse(String(p.user.last_interaction))}`,
          conversation_external_id: p.subscriberId,
          content: p.text,
          sent_at: iso(String(p.user.last_interaction)),
          direction: 'inbound',
          sender_type: 'patient',
          sender_external_id: p.subscriberId,
          conversation_id: true,
        }))
        .sort((a, b) => a.external_id.localeCompare(b.external_id));
      expect(msgs.map((m) => ({ ...m, sent_at: iso(m.sent_at), conversation_id: m.conversation_id !== null }))).toEqual(
        expected,
      );

      // One identity and one conversation per pushed contact, as the pushed contact data had them.
      const last = new Map(mine.map((p) => [p.subscriberId, p.user]));
      const ids = await q<Record<string, unknown>>(
        "select external_id, first_name, last_name, display_name, email, phone, patient_id is not null as linked from patient_identities where organization_id = ? and source = 'manychat' order by external_id",
        [orgId],
      );
      expect(ids).toEqual(
        [...last.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([sid, u]) => ({
            external_id: sid,
            first_name: blank(u.first_name) || null,
            last_name: blank(u.last_name) || null,
            display_name: blank(u.name) || null,
            email: blank(u.email) || null,
            phone: (blank(u.whatsapp_phone) || blank(u.phone) || null) as string | null,
            linked: true,
          })),
      );
      const convs = await q<{ external_id: string; patient_external_id: string; linked: boolean }>(
        "select external_id, patient_external_id, patient_id is not null as linked from conversations where organization_id = ? and source = 'manychat' order by external_id",
        [orgId],
      );
      expect(convs).toEqual(
        [...last.keys()].sort().map((sid) => ({ external_id: sid, patient_external_id: sid, linked: true })),
      );
    }

    // Every accepted request was stored once and processed once, nothing was dead-lettered.
    const inbox = await q<{ status: string; attempts: number; result: unknown }>(
      "select status, attempts, result from webhook_inbox where status <> 'rejected' order by id",
    );
    expect(inbox.map((r) => [r.status, r.attempts])).toEqual([...pushes, again].map(() => ['processed', 1]));
    const results = inbox.map((r) => (typeof r.result === 'string' ? JSON.parse(r.result) : r.result));
    expect(results.every((r) => r.status === 'accepted' && r.deadLetters === 0)).toBe(true);
    expect(results.at(-1)).toMatchObject({ written: 0 });
    expect(await q('select error_code, message from sync_errors')).toEqual([]);
  });
});
