import { type ChatwootSim, startChatwoot } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorRunner } from '../helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../helpers/db.ts';

/**
 * Issue #21: what polling alone must get right against the Chatwoot simulator, without webhooks.
 * - A snoozed conversation reopened by Chatwoot's scheduled job (no message, last_activity_at unchanged) is `open`
 *   after the next incremental pass (the `conversation_updates` view, `updated_within`).
 * - A template sent by an agent is `agent`; a campaign template (no sender) is `bot`.
 * - A conversation deleted on the platform (no webhook, no tombstone) gets `deleted_at` after a complete listing,
 *   never after a partial or failed one, and keeps it.
 * - Conversations carry their inbox's name (`/inboxes`), not only its id.
 */
const ACCOUNT = 5;
const TOKEN = 'tok-e2e-fidelity';
const DAY = 86_400_000;
const kinds = await backends();

describe.each(kinds)('Chatwoot data fidelity by polling (%s)', (kind) => {
  let t: TestDb;
  let sim: ChatwootSim;
  let r: ReturnType<typeof connectorRunner>;
  const q = <T>(sql: string, params: unknown[] = []) => t.db.query<T>(sql, params);

  beforeAll(async () => {
    t = await openTestDb(kind);
    // The platform's clock a week behind ours: `advance` below moves it forward by days, and updated_within is
    // measured against our clock (as it is against a real Chatwoot's, give or take the lookback).
    sim = await startChatwoot({
      accounts: [{ accountId: ACCOUNT, token: TOKEN }],
      seed: 21,
      scale: 1,
      now: Date.now() - 7 * DAY,
    });
    r = connectorRunner(
      t.db,
      'org_cw_fidelity',
      { connector: 'chatwoot', config: { base_url: sim.url, account_id: ACCOUNT }, secrets: { api_token: '${CW}' } },
      { CW: TOKEN },
    );
    const first = await r.sync();
    expect(first.status, JSON.stringify(first.streams)).toBe('succeeded');
  });
  afterAll(async () => {
    await sim?.close();
    await t?.drop();
  });

  const status = async (id: number) =>
    (
      await q<{ status: string }>(
        "select status from conversations where organization_id = ? and source = 'chatwoot' and external_id = ?",
        [r.org.id, String(id)],
      )
    )[0]?.status;

  it('a snoozed conversation reopened by the scheduled job is open after the next incremental pass', async () => {
    const account = sim.model.accounts[0]!;
    const snoozed = account.conversations.filter((c) => !c.deleted && c.status === 'snoozed');
    const timed = snoozed.filter((c) => c.snoozedUntilMs !== null);
    expect(timed.length).toBeGreaterThan(0);
    for (const c of snoozed) expect(await status(c.displayId)).toBe('snoozed');
    const activity = new Map(timed.map((c) => [c.displayId, c.lastActivityAtMs]));

    const latest = Math.max(...timed.map((c) => c.snoozedUntilMs ?? 0));
    const reopened = sim.advance(latest - sim.now() + 5 * 60_000);
    expect(new Set(reopened.map((a) => a.conversationId))).toEqual(new Set(timed.map((c) => c.displayId)));
    for (const c of timed) {
      expect(c.status).toBe('open');
      // No message: the newest-first listing by last_activity_at cannot see the change.
      expect(c.lastActivityAtMs).toBe(activity.get(c.displayId));
    }

    const inc = await r.sync();
    expect(inc.status, JSON.stringify(inc.streams)).toBe('succeeded');
    for (const c of timed) expect(await status(c.displayId), `conversation ${c.displayId}`).toBe('open');
    // Snoozed "until next reply" is not the job's business: still snoozed on both sides.
    for (const c of snoozed.filter((x) => x.snoozedUntilMs === null && x.status === 'snoozed'))
      expect(await status(c.displayId)).toBe('snoozed');
    // The view is one unpaginated request, not a re-listing.
    expect(inc.streams.find((s) => s.stream === 'conversation_updates')?.pages).toBe(1);
  });

  it('a deleted conversation gets deleted_at after a complete listing and keeps it across partial and failed ones', async () => {
    const deletedAt = async (id: number) =>
      (
        await q<{ deleted_at: unknown }>(
          "select deleted_at from conversations where organization_id = ? and source = 'chatwoot' and external_id = ?",
          [r.org.id, String(id)],
        )
      )[0]?.deleted_at;
    const live = sim.model.accounts[0]!.conversations.filter((c) => !c.deleted);
    const victim = live[2]!;
    const res = await fetch(`${sim.url}/api/v1/accounts/${ACCOUNT}/conversations/${victim.displayId}`, {
      method: 'DELETE',
      headers: { api_access_token: TOKEN },
    });
    expect(res.status).toBe(200);

    // An incremental pass lists only what changed: it cannot tell a deletion from an old conversation.
    const partial = await r.sync();
    expect(partial.status).toBe('succeeded');
    expect(await deletedAt(victim.displayId)).toBeNull();

    // A day after the last complete listing (the spec's full_listing_every: P1D), the pass lists everything
    // again, ignoring its cursor, and marks it — only it.
    await q(
      `update sync_state set metadata = metadata || '{"last_complete_listing_at": "2000-01-01T00:00:00Z"}'::jsonb
       where organization_id = ? and stream = 'conversations' and partition = ''`,
      [r.org.id],
    );
    const full = await r.sync();
    expect(full.status, JSON.stringify(full.streams)).toBe('succeeded');
    const listing = full.streams.find((x) => x.stream === 'conversations');
    expect(listing?.markedDeleted).toBe(1);
    expect(listing?.records).toBe(live.length - 1);
    const marked = await deletedAt(victim.displayId);
    expect(marked).not.toBeNull();
    const flagged = await q<{ external_id: string }>(
      "select external_id from conversations where organization_id = ? and source = 'chatwoot' and deleted_at is not null",
      [r.org.id],
    );
    expect(flagged.map((x) => x.external_id)).toEqual([String(victim.displayId)]);

    // Neither a partial pass nor a failed one clears it, and the row (with its messages) stays.
    expect((await r.sync()).status).toBe('succeeded');
    const refused = connectorRunner(
      t.db,
      r.org.id,
      { connector: 'chatwoot', config: { base_url: sim.url, account_id: ACCOUNT }, secrets: { api_token: '${CW}' } },
      { CW: 'not-the-token' },
    );
    expect((await refused.sync({ fullRefresh: true })).status).toBe('failed');
    expect(await deletedAt(victim.displayId)).toEqual(marked);
    const msgs = await q<{ n: number }>(
      "select count(*)::int as n from messages where organization_id = ? and source = 'chatwoot' and conversation_external_id = ?",
      [r.org.id, String(victim.displayId)],
    );
    expect(msgs[0]!.n).toBeGreaterThan(0);
  });

  it("conversations carry their inbox's name as well as its id", async () => {
    const account = sim.model.accounts[0]!;
    const names = new Map(account.inboxes.map((i) => [String(i.id), i.name]));
    const rows = await q<{ external_id: string; inbox: string; inbox_name: string | null }>(
      "select external_id, inbox, inbox_name from conversations where organization_id = ? and source = 'chatwoot'",
      [r.org.id],
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.inbox_name, `conversation ${row.external_id}`).toBe(names.get(row.inbox));
    expect(new Set(rows.map((x) => x.inbox_name))).toContain(`${account.name} WhatsApp`);
  });

  it('an agent-sent template is agent, a campaign template is bot', async () => {
    const rows = await q<{ sender_type: string; raw: string | null; n: number }>(
      `select sender_type, metadata->>'sender_type_raw' as raw, count(*)::int as n from messages
       where organization_id = ? and source = 'chatwoot' and (metadata->>'message_type')::int = 3
       group by 1, 2 order by 1, 2`,
      [r.org.id],
    );
    const snap = sim.snapshot().accounts[0]!;
    const templates = Object.values(snap.messages)
      .flat()
      .filter((m) => m.message_type === 3);
    const byAgent = templates.filter((m) => (m.sender as { type?: string } | undefined)?.type === 'user').length;
    const campaign = templates.filter((m) => !m.sender).length;
    expect(byAgent).toBeGreaterThan(0);
    expect(campaign).toBeGreaterThan(0);
    expect(rows).toEqual([
      { sender_type: 'agent', raw: 'user', n: byAgent },
      { sender_type: 'bot', raw: null, n: campaign },
    ]);
  });
});
