import { startWebhookReceiver } from '@routiq/cli/demo/receiver';
import { type ChatwootSim, startChatwoot } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blank, connectorRunner, iso } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';
import { silentLogger } from '../helpers/engine.ts';

/**
 * Issue #5 (Chatwoot): full sync, the account changes (new and edited messages, deletions, status changes,
 * contacts), webhooks delivered, incremental sync → the database equals the simulator's state.
 */
const ACCOUNT = 7;
const TOKEN = 'tok-e2e-chatwoot';
const SECRET = 'whsec-e2e';
const kinds = await backends();

describe.each(kinds)('Chatwoot connector against the simulator (%s)', (kind) => {
  let t: TestDb;
  let sim: ChatwootSim;
  beforeAll(async () => {
    t = await openTestDb(kind);
    // Rate limiting on for loopback too (Chatwoot exempts 127.0.0.1 by default), at the documented 3000/min.
    sim = await startChatwoot({
      accounts: [{ accountId: ACCOUNT, token: TOKEN, webhookSecret: SECRET }],
      seed: 9,
      scale: 2,
    });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  it('mirrors contacts, conversations, full message history and attachments; webhooks carry what REST cannot', async () => {
    const env = { CW_TOKEN: TOKEN, CW_SECRET: SECRET };
    const r = connectorRunner(
      t.db,
      'org_chatwoot_e2e',
      {
        connector: 'chatwoot',
        config: { base_url: sim.url, account_id: ACCOUNT },
        secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
      },
      env,
    );
    const receiver = await startWebhookReceiver(t.db, r.config, silentLogger, env);
    try {
      sim.webhooks.subscribe(ACCOUNT, {
        url: `${receiver.url}/webhooks/${r.org.id}/chatwoot`,
        subscriptions: [
          'message_created',
          'message_updated',
          'conversation_created',
          'conversation_updated',
          'conversation_status_changed',
          'contact_created',
          'contact_updated',
        ],
        secret: SECRET,
      });
      const first = await r.sync();
      expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
      const seen: Record<string, number> = {};
      for (let round = 0; round < 4; round++) {
        const m = sim.mutate(6);
        for (const [k, v] of Object.entries(m.counts)) seen[k] = (seen[k] ?? 0) + v;
        await sim.webhooks.idle();
        const inc = await r.sync();
        expect(inc.status, JSON.stringify(inc.streams)).toBe('succeeded');
      }
      expect(seen.message_incoming).toBeGreaterThan(0);
      expect(seen.message_edited ?? 0).toBeGreaterThan(0);
      expect(seen.message_deleted ?? 0).toBeGreaterThan(0);
      expect(receiver.stats().errors).toEqual([]);
      expect(sim.stats.rateLimited).toBe(0);

      const snap = sim.snapshot().accounts[0]!;
      const q = t.db.query.bind(t.db);
      const org = r.org.id;

      // conversations: every status, keyed by display id, linked to the contact's unified patient
      const convs = await q<Record<string, unknown>>(
        "select external_id, status, patient_external_id, started_at, last_activity_at, patient_id, deleted_at from conversations where organization_id = ? and source = 'chatwoot'",
        [org],
      );
      const convById = new Map(convs.map((c) => [String(c.external_id), c]));
      const statuses = new Set<string>();
      for (const c of snap.conversations) {
        const row = convById.get(String(c.id));
        expect(row, `conversation ${String(c.id)}`).toBeDefined();
        statuses.add(String(c.status));
        const sender = (c.meta as { sender?: { id?: number } }).sender;
        expect({
          status: row!.status,
          patient_external_id: row!.patient_external_id,
          started_at: iso(row!.started_at),
          last_activity_at: iso(row!.last_activity_at),
        }).toEqual({
          status: c.status,
          patient_external_id: sender?.id === undefined ? null : String(sender.id),
          started_at: iso(Number(c.created_at) * 1000),
          last_activity_at: iso(Number(c.last_activity_at) * 1000),
        });
        expect(row!.patient_id).not.toBeNull();
      }
      expect(statuses.size).toBeGreaterThanOrEqual(3);
      // Deleted conversations have no webhook and no tombstone: incremental passes cannot tell (only a complete
      // listing marks them, test/e2e/chatwoot-fidelity.test.ts); their rows stay (never hard-deleted).
      for (const id of snap.deleted.conversations)
        if (convById.has(String(id))) expect(convById.get(String(id))!.deleted_at).toBeNull();

      // messages: full history incl. private notes and activity, direction and sender type right, edits and deletes via webhooks
      const msgs = await q<Record<string, unknown>>(
        "select external_id, conversation_external_id, direction, sender_type, content, is_private, sent_at, deleted_at, conversation_id from messages where organization_id = ? and source = 'chatwoot'",
        [org],
      );
      const msgById = new Map(msgs.map((m) => [String(m.external_id), m]));
      expect(msgById.size).toBe(msgs.length);
      let expected = 0;
      const senderTypes = new Set<string>();
      const live = new Set(snap.conversations.map((c) => String(c.id)));
      for (const [display, list] of Object.entries(snap.messages)) {
        if (!live.has(display)) continue;
        for (const m of list) {
          expected++;
          const row = msgById.get(String(m.id));
          expect(row, `message ${String(m.id)}`).toBeDefined();
          const type = Number(m.message_type);
          const sender = m.sender as { type?: string } | undefined;
          const senderType =
            type === 2
              ? 'system'
              : type === 0
                ? 'patient'
                : // A template is a bot's (campaign) unless a person sent it (WhatsApp templates outside 24 h).
                  sender?.type === 'agent_bot' || (type === 3 && sender?.type !== 'user')
                  ? 'bot'
                  : 'agent';
          senderTypes.add(senderType);
          const deleted = (m.content_attributes as { deleted?: boolean } | undefined)?.deleted === true;
          expect({
            ...row,
            sent_at: iso(row!.sent_at),
            deleted_at: iso(row!.deleted_at),
            conversation_id: row!.conversation_id !== null,
          }).toEqual({
            external_id: String(m.id),
            conversation_external_id: display,
            direction: type === 0 ? 'inbound' : type === 1 || type === 3 ? 'outbound' : null,
            sender_type: senderType,
            content: blank(m.content),
            is_private: m.private === true,
            sent_at: iso(Number(m.created_at) * 1000),
            deleted_at: deleted ? iso(Number(m.created_at) * 1000) : null,
            conversation_id: true,
          });
        }
      }
      expect(senderTypes).toEqual(new Set(['patient', 'agent', 'bot', 'system']));
      const liveRows = msgs.filter((m) => live.has(String(m.conversation_external_id)));
      expect(liveRows.length).toBe(expected);

      // attachments of live messages
      const atts = await q<{ external_id: string; message_external_id: string; file_type: string; url: string }>(
        "select external_id, message_external_id, file_type, url from attachments where organization_id = ? and source = 'chatwoot'",
        [org],
      );
      const attById = new Map(atts.map((a) => [a.external_id, a]));
      let attCount = 0;
      for (const [display, list] of Object.entries(snap.messages)) {
        if (!live.has(display)) continue;
        for (const m of list) {
          for (const a of (m.attachments as Array<Record<string, unknown>> | undefined) ?? []) {
            attCount++;
            expect(attById.get(String(a.id))).toMatchObject({
              message_external_id: String(m.id),
              file_type: a.file_type,
              url: a.data_url,
            });
          }
        }
      }
      expect(attCount).toBeGreaterThan(0);

      // contacts: visible ones from /contacts, hidden ones (no email/phone/identifier) through their conversations
      const ids = await q<{
        external_id: string;
        email: string | null;
        phone: string | null;
        display_name: string | null;
      }>(
        "select external_id, email, phone, display_name from patient_identities where organization_id = ? and source = 'chatwoot'",
        [org],
      );
      const idById = new Map(ids.map((x) => [x.external_id, x]));
      const senders = new Set(
        snap.conversations.map((c) => String((c.meta as { sender?: { id?: number } }).sender?.id)),
      );
      for (const c of snap.contacts) {
        if (c._hidden && !senders.has(String(c.id))) continue;
        expect(idById.get(String(c.id)), `contact ${String(c.id)}`).toEqual({
          external_id: String(c.id),
          email: blank(c.email),
          phone: blank(c.phone_number),
          display_name: blank(c.name),
        });
      }
      expect(snap.contacts.some((c) => c._hidden && senders.has(String(c.id)))).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
