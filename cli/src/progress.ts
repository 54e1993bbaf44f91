/**
 * The progress line of long commands (sync, dlq replay, patients reconcile): one line on stderr, redrawn in place
 * with a carriage return, only when stderr is a terminal and --json is not given. A finished task's last line is
 * kept (one per connection of a sync); log lines that arrive meanwhile are written above the line.
 */
import type { Progress, ProgressListener } from '@routiq/runner';
import { colorEnabled, paint } from './output.ts';

export interface ProgressStream {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(s: string): boolean;
}

const BAR_WIDTH = 20;
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const ERASE_LINE = '\r\x1b[K';

const clip = (s: string, max: number): string =>
  max <= 0 ? '' : s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
const num = (n: number): string => n.toLocaleString('en-US');
/** `1 page`, `2 pages`, `1 identity`; `not_found` reads `not found`. */
const label = (key: string, n: number): string => {
  const k = key.replaceAll('_', ' ');
  if (n !== 1) return k;
  return k.endsWith('ies') ? `${k.slice(0, -3)}y` : k.endsWith('s') && !k.endsWith('ss') ? k.slice(0, -1) : k;
};

/**
 * One progress line, at most `width - 1` characters wide (a line that wraps cannot be redrawn in place):
 * `task  ████████░░░░ 3/5 streams  conversations · 12 pages · 1,200 records`. Without a total, a spinner frame
 * instead of the bar. Counts that are 0 are left out.
 */
export function formatProgress(p: Progress, o: { width: number; color: boolean; frame?: number }): string {
  const c = paint(o.color);
  const width = Math.max(20, o.width) - 1;
  const task = clip(p.task, Math.max(12, Math.floor(width / 3)));
  let gauge: string;
  let gaugePlain: string;
  if (p.total !== undefined && p.total > 0) {
    const full = Math.round(Math.min(1, Math.max(0, p.done / p.total)) * BAR_WIDTH);
    const count = `${num(p.done)}/${num(p.total)} ${p.unit}`;
    gaugePlain = `${'█'.repeat(full)}${'░'.repeat(BAR_WIDTH - full)} ${count}`;
    gauge = `${c.green('█'.repeat(full))}${c.dim('░'.repeat(BAR_WIDTH - full))} ${count}`;
  } else {
    const mark = p.finished ? '✓' : (SPINNER[(o.frame ?? 0) % SPINNER.length] as string);
    gaugePlain = `${mark} ${num(p.done)} ${p.unit}`;
    gauge = `${p.finished ? c.green(mark) : c.cyan(mark)} ${num(p.done)} ${p.unit}`;
  }
  const details = [
    ...(p.step ? [p.step] : []),
    ...Object.entries(p.counts ?? {})
      .filter(([, v]) => v !== 0)
      .map(([k, v]) => `${num(v)} ${label(k, v)}`),
  ].join(' · ');
  const head = `${task}  `;
  if (head.length + gaugePlain.length > width) return clip(`${head}${gaugePlain}`, width);
  const room = width - head.length - gaugePlain.length - 2;
  const tail = details && room > 0 ? `  ${clip(details, room)}` : '';
  return `${c.bold(task)}  ${gauge}${tail}`;
}

export class ProgressLine {
  /** A progress line is on screen, without its newline. */
  private shown = false;
  private pending: Progress | undefined;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly stream: ProgressStream,
    private readonly o: { color: boolean; intervalMs?: number; now?: () => number },
  ) {
    this.intervalMs = o.intervalMs ?? 100;
    this.now = o.now ?? Date.now;
  }

  /** The listener to hand to the engine. */
  readonly listener: ProgressListener = (p) => this.update(p);

  /** Draws now, or at the end of the redraw interval (the latest update wins); a finished task is drawn and kept. */
  update(p: Progress): void {
    this.pending = p;
    if (p.finished) {
      this.cancelTimer();
      this.draw(p);
      this.stream.write('\n');
      this.shown = false;
      this.pending = undefined;
      return;
    }
    const since = this.now() - this.lastDraw;
    if (since >= this.intervalMs) this.draw(p);
    else
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        if (this.pending) this.draw(this.pending);
      }, this.intervalMs - since).unref();
  }

  /** Erases the line (before other output, and at the end). */
  clear(): void {
    if (!this.shown) return;
    this.stream.write(ERASE_LINE);
    this.shown = false;
  }

  close(): void {
    this.cancelTimer();
    this.clear();
    this.pending = undefined;
  }

  /** For the logger: a log line is written above the progress line, which is then drawn again. */
  logDestination(): { write(line: string): void } {
    return {
      write: (line: string) => {
        const again = this.shown ? this.pending : undefined;
        this.clear();
        this.stream.write(line);
        if (again) this.draw(again);
      },
    };
  }

  private draw(p: Progress): void {
    const line = formatProgress(p, { width: this.stream.columns || 80, color: this.o.color, frame: this.frame++ });
    this.stream.write(`${ERASE_LINE}${line}`);
    this.shown = true;
    this.lastDraw = this.now();
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A progress line on stderr when it is a terminal and the output is not --json; otherwise none. */
export function progressLine(o: {
  json: boolean;
  stream?: ProgressStream;
  env?: NodeJS.ProcessEnv;
}): ProgressLine | undefined {
  const stream = o.stream ?? process.stderr;
  if (o.json || stream.isTTY !== true) return undefined;
  return new ProgressLine(stream, { color: colorEnabled(stream, o.env) });
}
