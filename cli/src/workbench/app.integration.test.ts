import path from 'node:path';
import type { WorkbenchReport } from '@routiq/runner/workbench';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { runWorkbench } from '../commands/connector.ts';
import { App, type AppProps } from './app.ts';
import { listTargets } from './targets.ts';

/**
 * The interactive workbench driven by keystrokes (ink-testing-library), over real test reads: the Chatwoot
 * simulator, the recorded fixtures, and a configured connection whose secret is missing (the error view).
 */
const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const KEY = { down: '\u001B[B', up: '\u001B[A', right: '\u001B[C', left: '\u001B[D', enter: '\r' };

function setup() {
  const o = org('org_clinic', [
    {
      connector: 'chatwoot',
      config: { base_url: 'https://chat.example.com', account_id: 3 },
      secrets: { api_token: '${ROUTIQ_TEST_UNSET_TOKEN}' },
    },
  ]);
  const config = testConfig(CONNECTORS, [o]);
  const exits: Array<Parameters<NonNullable<AppProps['onExit']>>[0]> = [];
  const props: AppProps = {
    connector: 'chatwoot',
    streams: [{ name: 'contacts' }, { name: 'conversations' }, { name: 'messages', parent: 'conversations' }],
    choices: listTargets(config, 'chatwoot'),
    run: (choice, streams, onEvent) =>
      runWorkbench(
        config,
        silentLogger,
        'chatwoot',
        choice,
        { streams, maxPages: 1, maxPartitions: 1, samples: 5, incremental: false, record: false, write: false },
        onEvent,
      ),
    onExit: (r) => exits.push(r),
    noColor: true,
  };
  return { props, exits };
}

const until = (frame: () => string | undefined, text: string | RegExp) =>
  vi.waitFor(
    () => {
      const f = frame() ?? '';
      if (typeof text === 'string' ? !f.includes(text) : !text.test(f))
        throw new Error(`waiting for ${String(text)} in:\n${f}`);
    },
    { timeout: 30_000, interval: 20 },
  );

describe('routiq connector test (interactive)', () => {
  it('picks the simulator with the keyboard, shows live progress, then browses records beside their rows', async () => {
    const { props, exits } = setup();
    const ui = render(createElement(App, props));
    await until(ui.lastFrame, 'Test against:');
    expect(ui.lastFrame()).toContain('❯ Org org_clinic (org_clinic) / chatwoot');
    ui.stdin.write(KEY.down);
    await until(ui.lastFrame, '❯ the bundled chatwoot simulator');
    ui.stdin.write(KEY.enter);
    await until(ui.lastFrame, 'Streams to read:');
    expect(ui.lastFrame()).toContain('[x] messages (per conversations)');
    ui.stdin.write(' '); // contacts off
    await until(ui.lastFrame, '❯ [ ] contacts');
    ui.stdin.write(KEY.enter);
    await until(ui.lastFrame, /requests \d+ · pages \d+ · records \d+/);
    await until(ui.lastFrame, /✓ \d+ requests/);
    // Progress frames were rendered while reading: a stream in progress and the last request.
    expect(ui.frames.some((f) => f.includes('… reading conversations'))).toBe(true);
    expect(
      ui.frames.some((f) =>
        /GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/accounts\/1\/conversations\?.* → 200/.test(f.replaceAll('\n', '')),
      ),
    ).toBe(true);
    const report = ui.lastFrame() ?? '';
    expect(report, report).toContain('❯ ✓ conversations');
    expect(report).not.toContain('contacts');
    expect(report).toContain('record 1/5');
    expect(report).toContain('raw record');
    expect(report).toContain('→ conversations');
    ui.stdin.write(KEY.right);
    await until(ui.lastFrame, 'record 2/5');
    ui.stdin.write(KEY.left);
    await until(ui.lastFrame, 'record 1/5');
    ui.stdin.write('3');
    await until(ui.lastFrame, 'next (incremental) run:');
    expect(ui.lastFrame()).toMatch(/would save: \d+/);
    expect(ui.lastFrame()).toContain('from cursor');
    ui.stdin.write(KEY.down);
    await until(ui.lastFrame, '❯ ✓ messages');
    expect(ui.lastFrame()).toMatch(/after=\d+/);
    ui.stdin.write('2');
    await until(ui.lastFrame, 'no failures');
    ui.stdin.write('4');
    await until(ui.lastFrame, 'no warnings');
    ui.stdin.write('q');
    await vi.waitFor(() => expect(exits).toHaveLength(1));
    expect(exits[0]?.report?.ok).toBe(true);
    expect(exits[0]?.error).toBeUndefined();
    ui.unmount();
  });

  it('shows the error view when the target cannot be read, goes back with b', async () => {
    const { props, exits } = setup();
    const ui = render(createElement(App, props));
    await until(ui.lastFrame, 'Test against:');
    ui.stdin.write(KEY.enter); // the configured connection, whose token variable is not set
    await until(ui.lastFrame, 'Streams to read:');
    ui.stdin.write(KEY.enter);
    await until(ui.lastFrame, '✗ RQ1004');
    expect(ui.lastFrame()).toContain('ROUTIQ_TEST_UNSET_TOKEN');
    ui.stdin.write('b');
    await until(ui.lastFrame, 'Test against:');
    ui.stdin.write('q');
    await vi.waitFor(() => expect(exits).toHaveLength(1));
    ui.unmount();
  });

  it('replays the recorded fixtures offline and shows a failed stream in red text with its error', async () => {
    const { props, exits } = setup();
    const failing: AppProps = {
      ...props,
      choices: props.choices.filter((c) => c.kind === 'fixtures'),
      streams: [{ name: 'contacts' }],
    };
    const ui = render(createElement(App, failing));
    await until(ui.lastFrame, '❯ recorded fixtures');
    ui.stdin.write(KEY.enter);
    await until(ui.lastFrame, 'Streams to read:');
    ui.stdin.write(KEY.enter);
    await until(ui.lastFrame, /✓ \d+ requests/);
    expect(ui.lastFrame()).toMatch(/✓ contacts: \d+ pages, \d+ records → patient_identities \d+/);
    ui.stdin.write('q');
    await vi.waitFor(() => expect(exits).toHaveLength(1));
    const r = exits[0]?.report as WorkbenchReport;
    expect(r.target.kind).toBe('fixtures');
    expect(r.streams[0]?.records).toBeGreaterThan(0);
    ui.unmount();
  });
});
