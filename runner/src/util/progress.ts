/**
 * Progress of long work (a sync pass, a dead-letter replay, a reconcile pass) for whoever shows it, e.g. the CLI's
 * progress line on a terminal. One shape for every kind of work, so one renderer serves them all. Listeners only
 * look: the work never waits for them, and one that throws is ignored (`progressReporter`).
 */
export interface Progress {
  /** What the work is on: `org_a / chatwoot`, `dead-letter replay`, `reconcile org_a`. */
  task: string;
  /** Units done, of `total` when it is known (no total: no bar, the counts only). */
  done: number;
  total?: number | undefined;
  /** What done and total count: streams, letters, merges. */
  unit: string;
  /** The step under way: a stream's name, a phase, a rate-limit wait. */
  step?: string | undefined;
  /** Counters worth watching, in display order (pages, records, requests, rate-limit waits …). */
  counts?: Readonly<Record<string, number>> | undefined;
  /** The task's last update. */
  finished?: boolean | undefined;
}

export type ProgressListener = (p: Progress) => void;

/** A listener that never throws into the work (undefined: a no-op). */
export function progressReporter(listener: ProgressListener | undefined): ProgressListener {
  if (!listener) return () => {};
  return (p) => {
    try {
      listener(p);
    } catch {
      // a display failing must not fail the sync
    }
  };
}
