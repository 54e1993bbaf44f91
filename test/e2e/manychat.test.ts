import { startWebhookReceiver } from '@routiq/cli/demo/receiver';
import { type ManyChatSim, startManyChat } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blank, connectorRunner, iso } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { silentLogger } from '../helpers/engine.ts';

/**
 * Issue #5 (ManyChat): no history endpoint exists. Inbound messages arrive as External Requests (both the Full
 * Contact Data body and an author's custom template with {{user}} as a JSON string); the next sync enriches every
 * pushed subscriber with getInfo. The database then equals what ManyChat pushed and what getInfo says.
 */
const PAGE = '104729000000001';
const TOKEN = `${PAGE}:0123456789abcdef0123456789abcdef`;
const kinds = await backends();

describe.each(kinds)('ManyChat connector against the simulator (%s)', (kind) => {
  let t: TestDb;
  let sim: ManyChatSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    sim = await startManyChat({ pages: [{ pageId: PAGE, token: TOKEN }], seed: 5, scale: 2 });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('ingests pushed messages, rejects a wrong token, and enriches pushed subscribers with getInfo', async () => {
    const env = { MC_KEY: TOKEN, MC_HOOK: 'hook-token-1' };
    const r = connectorRunner(
      t.db,
      'org_manychat_e2e',
      {
        connector: 'manychat',
        config: { base_url: sim.url },
        secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
      },
      env,
    );
    const receiver = await startWebhookReceiver(t.db, r.config, silentLogger, env);
    try {
      const url = `${receiver.url}/webhooks/${r.org.id}/manychat`;
      const subs = sim.snapshot().pages[0]!.subscribers.slice(0, 10);
      // A wrong token is refused and writes nothing.
      const bad = await sim.externalRequest({
        pageId: PAGE,
        subscriberId: String(subs[0]!.id),
        url,
        headers: { 'X-Routiq-Token': 'nope' },
        text: 'hello',
      });
      expect(bad.status).toBe(401);
      const none = await t.db.query<{ n: string }>(
        'select count(*)::text as n from messages where organization_id = ?',
        [r.org.id],
      );
      expect(none[0]?.n).toBe('0');

      sim.setAutomation(PAGE, { url, headers: { 'X-Routiq-Token': env.MC_HOOK }, template: 'full_contact' });
      for (const [i, s] of subs.entries()) {
        const res = await sim.simulateInbound({
          pageId: PAGE,
          subscriberId: String(s.id),
          text: `Message ${i} — can I book?`,
          ...(i % 2 ? { template: 'custom' as const } : {}),
        });
        expect(res?.status, res?.responseBody).toBe(200);
      }
      sim.mutate(5);
      await sim.idle();

      const first = await r.sync();
      expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
      expect(sim.stats.rateLimited).toBe(0);

      const pushed = sim.externalRequests.filter((x) => x.status === 200);
      const q = t.db.query.bind(t.db);
      const msgs = await q<{
        external_id: string;
        content: string;
        sent_at: unknown;
        sender_type: string;
        direction: string;
        conversation_id: string | null;
      }>(
        'select external_id, content, sent_at, sender_type, direction, conversation_id from messages where organization_id = ? order by external_id',
        [r.org.id],
      );
      const expected = new Map<string, { content: string; sent_at: string | null }>();
      for (const p of pushed) {
        const body = JSON.parse(p.requestBody) as Record<string, unknown>;
        const user = (typeof body.data === 'string' ? JSON.parse(body.data) : body.id ? body : body.data) as Record<
          string,
          unknown
        >;
        const text = (body.text ?? user.last_input_text) as string;
        const at = user.last_interaction as string;
        expected.set(`${p.subscriberId}:${Date.parse(at)}`, { content: text, sent_at: iso(at) });
      }
      expect(msgs.map((m) => [m.external_id, m.content, iso(m.sent_at)])).toEqual(
        [...expected.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.content, v.sent_at]),
      );
      expect(
        msgs.every((m) => m.sender_type === 'patient' && m.direction === 'inbound' && m.conversation_id !== null),
      ).toBe(true);

      // Every pushed subscriber was enriched from getInfo, exactly once per push.
      const snap = sim.snapshot().pages[0]!.subscribers;
      const pushedIds = new Set(pushed.map((p) => p.subscriberId));
      const ids = await q<{
        external_id: string;
        first_name: string | null;
        last_name: string | null;
        email: string | null;
        phone: string | null;
      }>(
        "select external_id, first_name, last_name, email, phone from patient_identities where organization_id = ? and source = 'manychat' order by external_id",
        [r.org.id],
      );
      expect(ids.map((x) => x.external_id)).toEqual([...pushedIds].sort());
      for (const row of ids) {
        const s = snap.find((x) => String(x.id) === row.external_id)!;
        expect(row).toEqual({
          external_id: String(s.id),
          first_name: blank(s.first_name) || null,
          last_name: blank(s.last_name) || null,
          email: blank(s.email) || null,
          phone: (blank(s.whatsapp_phone) || blank(s.phone) || null) as string | null,
        });
      }
      expect(first.streams.find((s) => s.stream === 'subscribers')?.partitions).toBe(pushedIds.size);

      // Nothing pushed since: the next sync asks ManyChat nothing.
      const before = sim.stats.requests;
      const again = await r.sync();
      expect(again.status).toBe('succeeded');
      expect(sim.stats.requests - before).toBe(0);
    } finally {
      await receiver.close();
    }
  });
});
