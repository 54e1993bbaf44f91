import { describe, expect, it } from 'vitest';
import { ChatwootModel } from './model.ts';

describe('chatwoot scale', () => {
  it('generates 1e5+ messages cheaply and builds them lazily, identically on every read', () => {
    const model = new ChatwootModel({
      seed: 1,
      scale: 100,
      nowMs: Date.parse('2025-11-24T00:00:00Z'),
      accounts: [{ accountId: 1, token: 't' }],
    });
    expect(model.times.length).toBeGreaterThan(100_000);
    // "Cheaply" is the memory bound below; time is a benchmark's business, never a test's (it fails under load).
    // ~13 bytes per message of typed arrays; content is never stored.
    const bytes = model.times.byteLength + model.ids.byteLength + model.kinds.byteLength;
    expect(bytes / model.times.length).toBeLessThanOrEqual(13);
    const conv = model.accounts[0]!.conversations[123]!;
    const a = model.messageAt(conv, 0);
    const b = model.messageAt(conv, 0);
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
    // Ids are unique and increase with created_at inside a conversation.
    const idx = model.messageIndex(conv);
    for (let i = 1; i < idx.length; i++) {
      expect(idx[i]!.id).toBeGreaterThan(idx[i - 1]!.id);
      expect(idx[i]!.t).toBeGreaterThan(idx[i - 1]!.t);
    }
    expect(new Set(model.ids).size).toBe(model.ids.length);
  });
});
