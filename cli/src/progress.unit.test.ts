import type { Progress } from '@routiq/runner';
import { describe, expect, it } from 'vitest';
import { stripAnsi } from './output.ts';
import { formatProgress, ProgressLine, progressLine } from './progress.ts';

const sync: Progress = {
  task: 'org_a / chatwoot',
  done: 2,
  total: 4,
  unit: 'streams',
  step: 'conversations',
  counts: { pages: 12, records: 1200, requests: 15, 'rate-limit waits': 0 },
};

/** A terminal-like stream that keeps what was written. */
function fakeTty(columns = 100) {
  const writes: string[] = [];
  return {
    isTTY: true as const,
    columns,
    writes,
    write(s: string) {
      writes.push(s);
      return true;
    },
  };
}

describe('formatProgress', () => {
  it('draws the bar, done/total, the step and the non-zero counts', () => {
    expect(formatProgress(sync, { width: 120, color: false })).toBe(
      'org_a / chatwoot  ██████████░░░░░░░░░░ 2/4 streams  conversations · 12 pages · 1,200 records · 15 requests',
    );
  });

  it('stays narrower than the terminal (a wrapped line cannot be redrawn) and clips the details first', () => {
    for (const width of [30, 60, 80]) {
      const line = formatProgress(sync, { width, color: false });
      expect(line.length).toBeLessThan(width);
    }
    expect(formatProgress(sync, { width: 60, color: false })).toMatch(
      /^org_a \/ chatwoot {2}█{10}░{10} 2\/4 streams {2}c.*…$/,
    );
  });

  it('says 1 page, 1 identity, 1 rate-limit wait; not_found reads not found', () => {
    const line = formatProgress(
      {
        ...sync,
        step: undefined,
        counts: { pages: 1, identities: 1, 'rate-limit waits': 1, not_found: 2, superseded: 1 },
      },
      { width: 200, color: false },
    );
    expect(line).toMatch(/ {2}1 page · 1 identity · 1 rate-limit wait · 2 not found · 1 superseded$/);
  });

  it('without a total: a spinner frame and the count; finished: a check mark', () => {
    const planning: Progress = { task: 'reconcile org_a', done: 0, unit: 'merges', step: 'matching 40 identities' };
    expect(formatProgress(planning, { width: 80, color: false, frame: 1 })).toBe(
      'reconcile org_a  ⠙ 0 merges  matching 40 identities',
    );
    expect(formatProgress({ ...planning, finished: true }, { width: 80, color: false })).toMatch(/ {2}✓ 0 merges/);
  });

  it('colours the bar only when asked, and the text is the same without the escapes', () => {
    const coloured = formatProgress(sync, { width: 120, color: true });
    expect(coloured).toContain('\x1b[32m██████████\x1b[0m');
    expect(stripAnsi(coloured)).toBe(formatProgress(sync, { width: 120, color: false }));
    expect(formatProgress(sync, { width: 120, color: false })).not.toContain('\x1b[');
  });
});

describe('ProgressLine', () => {
  it('redraws in place with a carriage return, keeps a finished task and erases what is left at close', () => {
    const tty = fakeTty();
    const line = new ProgressLine(tty, { color: false, intervalMs: 0 });
    line.update(sync);
    line.update({ ...sync, done: 3 });
    line.update({ ...sync, done: 4, finished: true });
    line.update({ ...sync, task: 'org_b / cliniko', done: 0 });
    line.close();
    expect(tty.writes.map(stripAnsi)).toEqual([
      expect.stringMatching(/^\r.*2\/4 streams/),
      expect.stringMatching(/^\r.*3\/4 streams/),
      expect.stringMatching(/^\r.*4\/4 streams/),
      '\n',
      expect.stringMatching(/^\rorg_b \/ cliniko.*0\/4 streams/),
      '\r',
    ]);
    expect(tty.writes.at(-1)).toBe('\r\x1b[K');
  });

  it('draws at most once per interval; the latest update is drawn when the interval ends', async () => {
    const tty = fakeTty();
    let now = 1000;
    let redrawn!: () => void;
    const second = new Promise<void>((r) => {
      redrawn = r;
    });
    const stream = {
      ...tty,
      write(s: string) {
        tty.write(s);
        if (tty.writes.length === 2) redrawn();
        return true;
      },
    };
    const line = new ProgressLine(stream, { color: false, intervalMs: 5, now: () => now });
    line.update({ ...sync, done: 1 });
    line.update({ ...sync, done: 2 });
    line.update({ ...sync, done: 3 });
    expect(tty.writes).toHaveLength(1);
    now += 5;
    await second;
    expect(tty.writes).toHaveLength(2);
    expect(tty.writes[1]).toContain('3/4 streams');
    line.close();
  });

  it('writes log lines above the progress line and draws it again', () => {
    const tty = fakeTty();
    const line = new ProgressLine(tty, { color: false, intervalMs: 0 });
    line.update(sync);
    line.logDestination().write('{"level":30,"msg":"sync started"}\n');
    expect(tty.writes.slice(1).map(stripAnsi)).toEqual([
      '\r',
      '{"level":30,"msg":"sync started"}\n',
      expect.stringMatching(/^\rorg_a \/ chatwoot/),
    ]);
  });

  it('exists only for a terminal without --json, in colour unless NO_COLOR is set', () => {
    expect(progressLine({ json: false, stream: { ...fakeTty(), isTTY: false } })).toBeUndefined();
    expect(progressLine({ json: true, stream: fakeTty() })).toBeUndefined();
    const plain = fakeTty();
    progressLine({ json: false, stream: plain, env: { NO_COLOR: '1' } })?.update(sync);
    expect(plain.writes.join('')).not.toContain('\x1b[32m');
    const coloured = fakeTty();
    progressLine({ json: false, stream: coloured, env: {} })?.update(sync);
    expect(coloured.writes.join('')).toContain('\x1b[32m█');
  });
});
