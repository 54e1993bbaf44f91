/**
 * The interactive workbench (Ink): a thin view over testRead()'s events and report. Screens: pick the target, pick
 * the streams, the read's live progress, then the report (records beside their rows, failures with their expression,
 * cursor and next run, warnings), or the error. Written with createElement so the CLI needs no JSX build step.
 */
import type { StreamReport, WorkbenchEvent, WorkbenchReport } from '@routiq/runner/workbench';
import { Box, type Key, Text, useApp, useInput } from 'ink';
import { createElement as h, type ReactNode, useRef, useState } from 'react';
import type { TargetChoice } from './targets.ts';

export interface AppProps {
  connector: string;
  streams: Array<{ name: string; parent?: string | undefined }>;
  choices: TargetChoice[];
  preselected?: TargetChoice;
  selectedStreams?: string[];
  run(choice: TargetChoice, streams: string[], onEvent: (e: WorkbenchEvent) => void): Promise<WorkbenchReport>;
  /** Called when the user quits: the report shown (if any) and the error shown (if any). */
  onExit?(result: { report?: WorkbenchReport; error?: { code: string; message: string } }): void;
  /** NO_COLOR: no colours, only text. */
  noColor?: boolean;
}

type Phase = 'target' | 'streams' | 'running' | 'report' | 'error';
type Tab = 'records' | 'failures' | 'cursor' | 'warnings';
const TABS: Tab[] = ['records', 'failures', 'cursor', 'warnings'];

/** A few lines of pretty JSON (a record browser pane). */
export function clip(v: unknown, lines: number, width = 200): string {
  const all = (JSON.stringify(v, null, 2) ?? 'undefined')
    .split('\n')
    .map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
  return all.length > lines
    ? [...all.slice(0, lines), `… ${all.length - lines} more lines`].join('\n')
    : all.join('\n');
}

export function App(p: AppProps): ReactNode {
  const { exit } = useApp();
  const [phase, setPhase] = useState<Phase>(p.preselected ? 'streams' : 'target');
  const [cursor, setCursor] = useState(0);
  const [choice, setChoice] = useState<TargetChoice | undefined>(p.preselected);
  const [picked, setPicked] = useState<Set<string>>(new Set(p.selectedStreams ?? p.streams.map((s) => s.name)));
  const [events, setEvents] = useState<{
    last?: WorkbenchEvent | undefined;
    done: StreamReport[];
    current?: string | undefined;
    lastRequest?: string | undefined;
  }>({ done: [] });
  const [report, setReport] = useState<WorkbenchReport | undefined>();
  const [error, setError] = useState<{ code: string; message: string } | undefined>();
  const [stream, setStream] = useState(0);
  const [tab, setTab] = useState<Tab>('records');
  const [sample, setSample] = useState(0);
  const color = (c: string) => (p.noColor ? {} : { color: c });

  const quit = () => {
    p.onExit?.({ ...(report ? { report } : {}), ...(error ? { error } : {}) });
    exit();
  };

  const start = (c: TargetChoice, streams: string[]) => {
    setPhase('running');
    setEvents({ done: [] });
    p.run(c, streams, (e) =>
      setEvents((prev) => ({
        last: e,
        done: e.type === 'stream_done' ? [...prev.done, e.stream] : prev.done,
        current: e.type === 'stream' ? e.stream : prev.current,
        lastRequest: e.type === 'request' ? `${e.method} ${e.url} → ${e.status} (${e.ms} ms)` : prev.lastRequest,
      })),
    ).then(
      (r) => {
        setReport(r);
        setStream(
          Math.max(
            0,
            r.streams.findIndex((s) => !s.asParent),
          ),
        );
        setSample(0);
        if (r.error) {
          setError(r.error);
          setPhase('error');
        } else setPhase('report');
      },
      (e: unknown) => {
        setError({ code: (e as { code?: string }).code ?? 'RQ6002', message: (e as Error).message ?? String(e) });
        setPhase('error');
      },
    );
  };

  // Keys go to the handler of the latest render: a key typed right after a screen change (before Ink re-subscribes
  // the new handler) must not reach the previous screen's.
  const onKey = useRef<(input: string, key: Key) => void>(() => {});
  useInput((input, key) => onKey.current(input, key));
  onKey.current = (input, key) => {
    if (input === 'q' || (key.ctrl && input === 'c')) {
      if (phase !== 'running' || (key.ctrl && input === 'c')) quit();
      return;
    }
    if (phase === 'target') {
      if (key.upArrow || input === 'k') setCursor((c) => Math.max(0, c - 1));
      if (key.downArrow || input === 'j') setCursor((c) => Math.min(p.choices.length - 1, c + 1));
      if (key.return && p.choices[cursor]) {
        setChoice(p.choices[cursor]);
        setCursor(0);
        setPhase('streams');
      }
    } else if (phase === 'streams') {
      if (key.upArrow || input === 'k') setCursor((c) => Math.max(0, c - 1));
      if (key.downArrow || input === 'j') setCursor((c) => Math.min(p.streams.length - 1, c + 1));
      if (input === ' ') {
        const name = p.streams[cursor]?.name;
        if (name)
          setPicked((s) => {
            const n = new Set(s);
            if (n.has(name)) n.delete(name);
            else n.add(name);
            return n;
          });
      }
      if (input === 'a')
        setPicked((s) => (s.size === p.streams.length ? new Set() : new Set(p.streams.map((x) => x.name))));
      if (key.escape && !p.preselected) setPhase('target');
      if (key.return && choice && picked.size)
        start(
          choice,
          p.streams.map((s) => s.name).filter((n) => picked.has(n)),
        );
    } else if (phase === 'report' && report) {
      if (key.upArrow || input === 'k') {
        setStream((s) => Math.max(0, s - 1));
        setSample(0);
      }
      if (key.downArrow || input === 'j') {
        setStream((s) => Math.min(report.streams.length - 1, s + 1));
        setSample(0);
      }
      if (key.tab) setTab((t) => TABS[(TABS.indexOf(t) + 1) % TABS.length] as Tab);
      const n = Number(input);
      if (n >= 1 && n <= TABS.length) {
        setTab(TABS[n - 1] as Tab);
        setSample(0);
      }
      if (input === 'r' && choice)
        start(
          choice,
          p.streams.map((s) => s.name).filter((x) => picked.has(x)),
        );
      const max =
        tab === 'failures'
          ? (report.streams[stream]?.failures.length ?? 0)
          : (report.streams[stream]?.samples.length ?? 0);
      if (key.rightArrow || input === 'l') setSample((i) => Math.min(Math.max(0, max - 1), i + 1));
      if (key.leftArrow || input === 'h') setSample((i) => Math.max(0, i - 1));
    } else if (phase === 'error') {
      if (input === 'b') {
        setError(undefined);
        setReport(undefined);
        setPhase(p.preselected ? 'streams' : 'target');
      }
    }
  };

  const title = h(
    Text,
    { bold: true },
    `routiq connector test ${p.connector}`,
    choice ? h(Text, { dimColor: true }, ` — ${choice.label}`) : null,
  );

  if (phase === 'target') {
    return h(
      Box,
      { flexDirection: 'column' },
      title,
      h(Text, null, 'Test against:'),
      ...p.choices.map((c, i) =>
        h(Text, { key: c.id, ...(i === cursor ? color('cyan') : {}) }, `${i === cursor ? '❯' : ' '} ${c.label}`),
      ),
      p.choices.length ? null : h(Text, color('red'), 'No target: configure a connection, or record fixtures.'),
      h(Text, { dimColor: true }, '↑/↓ move · enter select · q quit'),
    );
  }
  if (phase === 'streams') {
    return h(
      Box,
      { flexDirection: 'column' },
      title,
      h(Text, null, 'Streams to read:'),
      ...p.streams.map((s, i) =>
        h(
          Text,
          { key: s.name, ...(i === cursor ? color('cyan') : {}) },
          `${i === cursor ? '❯' : ' '} [${picked.has(s.name) ? 'x' : ' '}] ${s.name}${s.parent ? ` (per ${s.parent})` : ''}`,
        ),
      ),
      h(
        Text,
        { dimColor: true },
        `↑/↓ move · space toggle · a all/none · enter run${p.preselected ? '' : ' · esc back'} · q quit`,
      ),
    );
  }
  if (phase === 'running') {
    const t = events.last?.totals;
    return h(
      Box,
      { flexDirection: 'column' },
      title,
      ...events.done.map((s) => h(StreamLine, { key: s.stream, s, color })),
      events.current && !events.done.some((d) => d.stream === events.current)
        ? h(Text, color('yellow'), `… reading ${events.current}`)
        : null,
      h(
        Text,
        null,
        `requests ${t?.requests ?? 0} · pages ${t?.pages ?? 0} · records ${t?.records ?? 0} · rows ${t?.rows ?? 0} · failures ${t?.failures ?? 0} · retries ${t?.retries ?? 0} · rate-limit waits ${t?.rateLimitWaits ?? 0} (${t?.waitedMs ?? 0} ms)`,
      ),
      events.lastRequest ? h(Text, { dimColor: true }, events.lastRequest) : null,
    );
  }
  if (phase === 'error' || !report) {
    return h(
      Box,
      { flexDirection: 'column' },
      title,
      h(Text, { ...color('red'), bold: true }, `✗ ${error?.code ?? 'RQ6002'} ${error?.message ?? 'no report'}`),
      h(Text, { dimColor: true }, 'b back · q quit'),
    );
  }
  const s = report.streams[stream];
  const t = report.totals;
  return h(
    Box,
    { flexDirection: 'column' },
    title,
    h(
      Text,
      report.ok ? color('green') : color('red'),
      `${report.ok ? '✓' : '✗'} ${t.requests} requests · ${t.pages} pages · ${t.records} records · ${t.rows} rows · ${t.failures} failures · ${t.retries} retries · ${t.rateLimitWaits} rate-limit waits · ${report.warnings.length} warnings · ${report.durationMs} ms`,
    ),
    h(
      Box,
      { flexDirection: 'row' },
      h(
        Box,
        {
          flexDirection: 'column',
          marginRight: 2,
          flexShrink: 0,
          width: Math.max(...report.streams.map((x) => x.stream.length)) + 5,
        },
        ...report.streams.map((x, i) =>
          h(
            Text,
            { key: x.stream, ...(i === stream ? color('cyan') : {}) },
            `${i === stream ? '❯' : ' '} ${x.status === 'ok' ? '✓' : x.status === 'failed' ? '✗' : '–'} ${x.stream}`,
          ),
        ),
      ),
      h(
        Box,
        { flexDirection: 'column', flexGrow: 1 },
        h(Text, null, TABS.map((x, i) => (x === tab ? `[${i + 1} ${x}]` : ` ${i + 1} ${x} `)).join(' ')),
        s ? h(StreamPane, { s, tab, sample, report, color }) : null,
      ),
    ),
    h(Text, { dimColor: true }, '↑/↓ stream · 1-4 or tab view · ←/→ record · r re-run · q quit'),
  );
}

type ColorFn = (c: string) => { color?: string };

function StreamLine({ s, color }: { s: StreamReport; color: ColorFn }): ReactNode {
  const rows = Object.entries(s.rows)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return h(
    Text,
    s.status === 'failed' ? color('red') : s.status === 'skipped' ? { dimColor: true } : color('green'),
    `${s.status === 'ok' ? '✓' : s.status === 'failed' ? '✗' : '–'} ${s.stream}: ${s.pages} pages, ${s.records} records${rows ? ` → ${rows}` : ''}${s.failureCount ? `, ${s.failureCount} failures` : ''}${s.error ? ` — ${s.error.code} ${s.error.message}` : ''}${s.note ? ` (${s.note})` : ''}`,
  );
}

function StreamPane({
  s,
  tab,
  sample,
  report,
  color,
}: {
  s: StreamReport;
  tab: Tab;
  sample: number;
  report: WorkbenchReport;
  color: ColorFn;
}): ReactNode {
  const head = h(StreamLine, { s, color });
  if (tab === 'records') {
    const r = s.samples[sample];
    if (!r) return h(Box, { flexDirection: 'column' }, head, h(Text, { dimColor: true }, 'no sample records'));
    return h(
      Box,
      { flexDirection: 'column' },
      head,
      h(
        Text,
        null,
        `record ${sample + 1}/${s.samples.length}${r.key !== null ? ` · key ${r.key}` : ''}${r.partition ? ` · partition ${r.partition}` : ''}`,
      ),
      h(
        Box,
        { flexDirection: 'row' },
        h(
          Box,
          { flexDirection: 'column', width: '50%', marginRight: 1 },
          h(Text, { bold: true }, 'raw record'),
          h(Text, null, clip(r.raw, 24, 70)),
        ),
        h(
          Box,
          { flexDirection: 'column', width: '50%' },
          h(Text, { bold: true }, `mapped rows (${r.rows.length})`),
          ...r.rows.map((x, i) =>
            h(
              Text,
              { key: String(i) },
              `→ ${x.target}${x.mode === 'patch' ? ' (patch)' : ''}\n${clip(x.row, 24 / Math.max(1, r.rows.length), 70)}`,
            ),
          ),
        ),
      ),
    );
  }
  if (tab === 'failures') {
    const f = s.failures[sample];
    if (!f) return h(Box, { flexDirection: 'column' }, head, h(Text, color('green'), 'no failures'));
    return h(
      Box,
      { flexDirection: 'column' },
      head,
      h(
        Text,
        color('red'),
        `failure ${sample + 1}/${s.failures.length} (${s.failureCount} in all): ${f.code} ${f.message}`,
      ),
      f.expression
        ? h(
            Text,
            null,
            `expression${f.target ? ` (→ ${f.target})` : ''}:\n${f.expression.split('\n').slice(0, 14).join('\n')}`,
          )
        : null,
      h(Text, null, `record:\n${clip(f.record, 14, 100)}`),
    );
  }
  if (tab === 'cursor') {
    const c = s.cursor ?? s.partitions[0]?.cursor;
    return h(
      Box,
      { flexDirection: 'column' },
      head,
      c
        ? h(
            Text,
            null,
            `cursor ${c.field} (${c.type}, ${c.order}${c.lookback ? `, lookback ${c.lookback}` : ''})\n  stored: ${String(c.stored)}  read from: ${String(c.startedFrom)}  would save: ${String(c.wouldSave)}${s.partitions.length ? `  (partition ${s.partitions[0]?.partition}; ${s.partitions.length} read)` : ''}`,
          )
        : h(Text, { dimColor: true }, 'no incremental cursor: read in full every run'),
      s.firstRequest ? h(Text, null, `first request: ${s.firstRequest.method} ${s.firstRequest.url}`) : null,
      h(Text, { bold: true }, 'next (incremental) run:'),
      ...s.nextRun.map((n, i) =>
        h(
          Text,
          { key: String(i) },
          `  ${n.method} ${n.url}${n.body !== undefined ? ` ${JSON.stringify(n.body)}` : ''}\n    ${n.note}`,
        ),
      ),
    );
  }
  const ws = report.warnings.filter((w) => !w.stream || w.stream === s.stream);
  return h(
    Box,
    { flexDirection: 'column' },
    head,
    ws.length
      ? h(
          Box,
          { flexDirection: 'column' },
          ...ws.map((w, i) =>
            h(Text, { key: String(i), ...color('yellow') }, `⚠ ${w.code} ${w.message}\n  hint: ${w.hint}`),
          ),
        )
      : h(Text, color('green'), 'no warnings'),
  );
}
