/** The connector workbench's report: one shape for the interactive view, `--json` and CI. */

export type TargetKind = 'connection' | 'simulator' | 'fixtures';

/** A request as it was (or would be) sent, credentials removed. */
export interface ShownRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

export interface SampleRecord {
  /** The record's natural key (primary_key), or null when it has none. */
  key: string | null;
  partition?: string;
  raw: unknown;
  rows: Array<{ target: string; mode: 'upsert' | 'patch'; row: Record<string, unknown> }>;
}

export interface RecordFailure {
  code: string;
  kind: 'mapping' | 'validation' | 'hook' | 'write';
  message: string;
  key: string | null;
  partition?: string;
  record: unknown;
  /** The unified table the failing mapping targets. */
  target?: string;
  /** The JSONata the failure came from (the mapping's expression, its `when`/`input`, or the primary key). */
  expression?: string;
  /** Schema errors of the mapped row (validation failures). */
  errors?: string[];
  /** The row as mapped, before validation refused it. */
  row?: unknown;
}

export interface CursorReport {
  field: string;
  type: string;
  order: string;
  lookback?: string;
  /** The cursor stored in the database for this stream (connection targets), null when none. */
  stored: string | number | null;
  /** The cursor the read started from (stored or incremental.start, before the lookback), null for everything. */
  startedFrom: string | number | null;
  /** The cursor a sync reading the same records would save, null when no record carried one. */
  wouldSave: string | number | null;
}

export interface PartitionReport {
  partition: string;
  records: number;
  cursor?: CursorReport;
}

export interface NextRequest extends ShownRequest {
  /** Why (or when) this request is made. */
  note: string;
}

export interface StreamReport {
  stream: string;
  /** The parent stream (or `webhook:<event>`) whose records are this stream's partitions. */
  parent?: string;
  /** Read because a selected child stream needs its records, not selected itself. */
  asParent?: boolean;
  status: 'ok' | 'failed' | 'skipped';
  note?: string;
  error?: { code: string; message: string; status?: number; body?: string };
  requests: number;
  pages: number;
  records: number;
  /** Rows mapped per unified table. */
  rows: Record<string, number>;
  /** Stopped at the page limit of a test read (a sync would go on). */
  truncated: boolean;
  partitions: PartitionReport[];
  cursor?: CursorReport;
  samples: SampleRecord[];
  failures: RecordFailure[];
  failureCount: number;
  firstRequest?: ShownRequest;
  nextRun: NextRequest[];
}

export interface Warning {
  code: string;
  stream: string;
  message: string;
  hint: string;
}

export interface Totals {
  requests: number;
  pages: number;
  records: number;
  rows: number;
  failures: number;
  retries: number;
  rateLimitWaits: number;
  waitedMs: number;
}

export interface WorkbenchReport {
  connector: string;
  specVersion: string;
  target: { kind: TargetKind; label: string; organization: string; connection: string };
  mode: 'full' | 'incremental';
  ok: boolean;
  startedAt: string;
  durationMs: number;
  limits: { maxPages: number; maxPartitions: number; samples: number };
  totals: Totals;
  streams: StreamReport[];
  warnings: Warning[];
  /** Rows written to the unified tables (only with `write`), per stream. */
  written?: { status: string; runId: string; streams: Array<{ stream: string; inserted: number; updated: number }> };
  error?: { code: string; message: string };
}

/** Live progress of a test read. */
export type WorkbenchEvent =
  | { type: 'stream'; stream: string; totals: Totals }
  | { type: 'request'; stream: string; method: string; url: string; status: number; ms: number; totals: Totals }
  | { type: 'retry'; stream: string; failure: string; waitMs: number; attempt: number; totals: Totals }
  | { type: 'page'; stream: string; partition: string; page: number; records: number; totals: Totals }
  | { type: 'stream_done'; stream: StreamReport; totals: Totals };

export function emptyTotals(): Totals {
  return { requests: 0, pages: 0, records: 0, rows: 0, failures: 0, retries: 0, rateLimitWaits: 0, waitedMs: 0 };
}
