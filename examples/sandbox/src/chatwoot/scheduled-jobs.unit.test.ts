import { describe, expect, it } from 'vitest';
import { ChatwootModel, type CwEvent } from './model.ts';

const DAY = 86_400_000;

describe('chatwoot scheduled jobs', () => {
  it('ReopenSnoozedConversationsJob: open, snoozed_until reset, updated_at bumped, events fired, no message', () => {
    const model = new ChatwootModel({
      seed: 5,
      scale: 1,
      nowMs: Date.parse('2026-06-01T00:00:00Z'),
      accounts: [{ accountId: 1, token: 't' }],
    });
    const convs = model.accounts[0]!.conversations;
    const timed = convs.filter((c) => c.status === 'snoozed' && c.snoozedUntilMs !== null);
    const untilReply = convs.filter((c) => c.status === 'snoozed' && c.snoozedUntilMs === null);
    expect(timed.length).toBeGreaterThan(0);
    const before = new Map(
      timed.map((c) => [c.displayId, { at: c.lastActivityAtMs, n: model.messageCount(c), up: c.updatedAtUs }]),
    );
    const events: CwEvent[] = [];
    model.listener = (e) => events.push(e);

    // Nothing is due before the earliest snoozed_until.
    const first = Math.min(...timed.map((c) => c.snoozedUntilMs!));
    expect(model.advance(first - model.clock.nowMs - 1)).toEqual([]);

    const actions = model.advance(6 * DAY);
    expect(actions.map((a) => a.conversationId).sort()).toEqual(timed.map((c) => c.displayId).sort());
    for (const c of timed) {
      const b = before.get(c.displayId)!;
      expect(c.status).toBe('open');
      expect(c.snoozedUntilMs).toBeNull();
      expect(c.updatedAtUs).toBeGreaterThan(b.up);
      expect(c.lastActivityAtMs).toBe(b.at);
      expect(model.messageCount(c)).toBe(b.n);
      const mine = events.filter((e) => 'conversation' in e && e.conversation === c).map((e) => e.event);
      expect(mine).toEqual(['conversation_status_changed', 'conversation_updated']);
    }
    for (const c of untilReply) expect(c.status).toBe('snoozed');
    // Runs on the 5-minute grid, at the first run at or after snoozed_until.
    for (const c of timed) expect((c.updatedAtUs / 1000) % (5 * 60_000)).toBeLessThan(1);
  });
});
