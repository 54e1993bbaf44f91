import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/**
 * `routiq connector test chatwoot` in a real terminal: tmux runs the CLI in a pseudo-terminal (its own server
 * socket, so nothing else's tmux is touched), keys are sent with send-keys and the screen read with capture-pane.
 * Proves the interactive read against the Chatwoot simulator shows records.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const SOCKET = `routiq-wb-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', 'wb');

const until = (what: string | RegExp) =>
  vi.waitFor(
    () => {
      const s = screen();
      if (typeof what === 'string' ? !s.includes(what) : !what.test(s))
        throw new Error(`waiting for ${String(what)}:\n${s}`);
      return s;
    },
    { timeout: 45_000, interval: 100 },
  );

describe('routiq connector test in tmux', () => {
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });

  it('reads the Chatwoot simulator interactively and shows records beside their rows', async () => {
    const cmd = `env -u CI NO_COLOR=1 node cli/bin/routiq.mjs connector test chatwoot --target simulator --pages 1 --partitions 1; echo "routiq exited $?"`;
    tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'wb', '-x', '180', '-y', '60', '-c', ROOT, cmd);
    tmux('set-option', '-t', 'wb', 'remain-on-exit', 'on');
    await until('Streams to read:');
    tmux('send-keys', '-t', 'wb', 'Enter');
    const report = await until(/✓ \d+ requests · \d+ pages · \d+ records/);
    // Streams in spec order: inboxes first, then contacts.
    expect(report).toMatch(/❯ ✓ inboxes/);
    tmux('send-keys', '-t', 'wb', 'Down');
    const contacts = await until('❯ ✓ contacts');
    expect(contacts).toContain('raw record');
    expect(contacts).toMatch(/mapped rows \(\d+\)/);
    expect(contacts).toContain('→ patient_identities');
    expect(contacts).toMatch(/"email":/);
    tmux('send-keys', '-t', 'wb', 'Down');
    const conv = await until('❯ ✓ conversations');
    expect(conv).toMatch(/conversations: \d+ pages, [1-9]\d* records/);
    tmux('send-keys', '-t', 'wb', 'q');
    // The exit status as the shell saw it: tmux records none when the pane's terminal closes before the process ends.
    await until('routiq exited 0');
  });
});
