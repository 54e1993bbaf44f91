import os from 'node:os';
import { CLI_CORRELATION_ID, cliActor, createLogger, RoutiqError, recordAudit } from '@routiq/runner';
import {
  assertDeadLetterId,
  countDeadLetters,
  type DeadLetter,
  type DeadLetterFilter,
  getDeadLetter,
  hasSelector,
  listDeadLetters,
  type ReplayOutcome,
  replayDeadLetters,
  resolveDeadLetters,
  validateFilter,
} from '@routiq/runner/dlq';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';
import { progressLine } from '../progress.ts';

export const DLQ_HELP = `Usage: routiq dlq <list|show|replay|resolve> [options]

Dead letters: records that failed mapping, validation or a hook, and requests a platform rejected for good.

  routiq dlq list    [filters] [--all] [--limit N] [--json]
  routiq dlq show    <id> [--json]
  routiq dlq replay  (<id>… | filters) [--dry-run] [--json]
  routiq dlq resolve (<id>… | filters) --reason TEXT [--json]

Filters: --org ID, --connector NAME (connector or connection name), --stream NAME, --class C (mapping, validation,
hook, write, permanent, … or the groups record / request), --code RQ5002, --older-than 2h, --newer-than 1d.
Every command takes --config FILE. list shows open letters, newest first (--all adds resolved ones; --limit, default 100).

replay maps, validates and writes each open record letter again with the CURRENT connector spec (fix the spec first);
a letter of a failed child request re-queues that partition for the next sync. Replaying twice changes nothing.
Exit 0 when every letter was replayed, 1 when any is still failing.
resolve closes letters without replaying them; --reason is stored and audited (--actor overrides the audit actor).
On a terminal, replay draws a progress line on stderr (letters done, outcomes so far); not with --json.
Examples:
  routiq dlq list --org org_demo_bondi_physio --class validation
  routiq dlq show 0b5f9c1e-4d2a-4c59-9f0e-3a6f1f8e2b7d --json
  routiq dlq replay --connector cliniko --older-than 1h --dry-run
  routiq dlq resolve 0b5f9c1e-4d2a-4c59-9f0e-3a6f1f8e2b7d --reason "deleted upstream"`;

const FILTER_OPTIONS = {
  ...COMMON_OPTIONS,
  org: { type: 'string' },
  connector: { type: 'string' },
  connection: { type: 'string' },
  stream: { type: 'string' },
  class: { type: 'string', multiple: true },
  code: { type: 'string' },
  'older-than': { type: 'string' },
  'newer-than': { type: 'string' },
  limit: { type: 'string' },
} as const;

function usage(message: string): never {
  throw new RoutiqError('RQ6001', `${message}\n  usage: routiq dlq <list|show|replay|resolve> … (routiq dlq help)`);
}

type FilterValues = {
  org?: string | undefined;
  connector?: string | undefined;
  connection?: string | undefined;
  stream?: string | undefined;
  class?: string[] | undefined;
  code?: string | undefined;
  'older-than'?: string | undefined;
  'newer-than'?: string | undefined;
  limit?: string | undefined;
};

function filterFrom(v: FilterValues): DeadLetterFilter {
  const f: DeadLetterFilter = {};
  if (v.org !== undefined) f.org = v.org;
  if (v.connector !== undefined) f.connector = v.connector;
  if (v.connection !== undefined) f.connection = v.connection;
  if (v.stream !== undefined) f.stream = v.stream;
  if (v.class?.length) f.class = v.class;
  if (v.code !== undefined) f.code = v.code;
  if (v['older-than'] !== undefined) f.olderThan = v['older-than'];
  if (v['newer-than'] !== undefined) f.newerThan = v['newer-than'];
  if (v.limit !== undefined) {
    if (!/^\d+$/.test(v.limit) || Number(v.limit) < 1) usage(`--limit must be a whole number >= 1, got "${v.limit}"`);
    f.limit = Number(v.limit);
  }
  validateFilter(f);
  return f;
}

function defaultActor(): string {
  let user = process.env.USER ?? process.env.USERNAME ?? 'unknown';
  try {
    user = os.userInfo().username || user;
  } catch {
    // no passwd entry (containers): keep the environment's name
  }
  return `cli:${user}@${os.hostname()}`;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      return list(rest);
    case 'show':
      return show(rest);
    case 'replay':
      return replay(rest);
    case 'resolve':
      return resolve(rest);
    case 'help':
      out(DLQ_HELP);
      return ExitCode.Ok;
    case undefined:
      return usage('a sub-command is required');
    default:
      return usage(`unknown sub-command "${sub}"`);
  }
}

export function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function oneLine(s: string, max = 80): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The list view of a letter (no payload: it may hold patient data; `dlq show` prints it). */
function summaryJson(d: DeadLetter) {
  return {
    id: d.id,
    organization_id: d.organizationId,
    connector: d.connector,
    connection: d.connection,
    stream: d.stream,
    error_class: d.errorClass,
    error_code: d.errorCode,
    message: d.message,
    record_key: d.recordKey,
    spec_version: d.specVersion,
    sync_run_id: d.syncRunId,
    retry_count: d.retryCount,
    resolved: d.resolved,
    resolved_at: d.resolvedAt,
    resolution: d.resolution,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    age_seconds: d.ageSeconds,
  };
}

function fullJson(d: DeadLetter) {
  return { ...summaryJson(d), details: d.details, payload: d.payload };
}

async function list(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { ...FILTER_OPTIONS, all: { type: 'boolean' } }, { command: 'dlq list' });
  const filter = filterFrom(values);
  filter.limit ??= 100;
  if (!values.all) filter.resolved = false;
  const { config } = loadContext(values.config);
  const { letters, total } = await withDatabase(config, async (db) => {
    const r = { letters: await listDeadLetters(db, filter), total: await countDeadLetters(db, filter) };
    // Messages and record keys of patient records were shown: one audit row per organization seen.
    const byOrg = new Map<string, number>();
    for (const d of r.letters) byOrg.set(d.organizationId, (byOrg.get(d.organizationId) ?? 0) + 1);
    for (const [org, count] of byOrg)
      await recordAudit(db.query.bind(db), {
        actor: cliActor(),
        organizationId: org,
        action: 'dlq.list',
        resourceType: 'sync_error',
        count,
        correlationId: CLI_CORRELATION_ID,
      });
    return r;
  });
  if (values.json) {
    out(JSON.stringify({ dead_letters: letters.map(summaryJson), count: letters.length, total }, null, 2));
  } else if (letters.length) {
    const header = ['id', 'org', 'connector', 'stream', 'class', 'code', 'age', 'retries'];
    if (values.all) header.push('state');
    header.push('message');
    const rows = letters.map((d) => [
      d.id,
      d.organizationId,
      d.connection === d.connector ? d.connector : `${d.connector} (${d.connection})`,
      d.stream ?? '',
      d.errorClass,
      d.errorCode,
      age(d.ageSeconds),
      d.retryCount,
      ...(values.all ? [d.resolved ? `resolved: ${oneLine(d.resolution ?? '', 30)}` : 'open'] : []),
      oneLine(d.message),
    ]);
    out(table(rows, header));
  }
  if (!letters.length) err(values.all ? 'no dead letters matched' : 'no open dead letters matched');
  else if (total > letters.length) err(`showing ${letters.length} of ${total}; use --limit to see more`);
  return ExitCode.Ok;
}

async function show(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, COMMON_OPTIONS, {
    command: 'dlq show',
    positionals: 1,
    usage: 'one dead-letter id',
  });
  const id = assertDeadLetterId(positionals[0] as string);
  const { config } = loadContext(values.config);
  const d = await withDatabase(config, async (db) => {
    const letter = await getDeadLetter(db, id);
    if (letter)
      await recordAudit(db.query.bind(db), {
        actor: cliActor(),
        organizationId: letter.organizationId,
        action: 'dlq.show',
        resourceType: 'sync_error',
        resourceId: id,
        count: 1,
        correlationId: CLI_CORRELATION_ID,
      });
    return letter;
  });
  if (!d) {
    err(`no dead letter has id ${id}`);
    return ExitCode.Failure;
  }
  if (values.json) {
    out(JSON.stringify(fullJson(d), null, 2));
    return ExitCode.Ok;
  }
  const rows: Array<[string, string]> = [
    ['id', d.id],
    ['organization', d.organizationId],
    ['connector', d.connection === d.connector ? d.connector : `${d.connector} (connection ${d.connection})`],
    ['stream', d.stream ?? ''],
    ['class', `${d.errorClass} ${d.errorCode}`],
    ['message', d.message],
    ['record key', d.recordKey ?? ''],
    ['spec version', d.specVersion ?? ''],
    ['sync run', d.syncRunId ?? ''],
    ['retries', String(d.retryCount)],
    ['created', `${d.createdAt} (${age(d.ageSeconds)} ago)`],
    ['updated', d.updatedAt],
    ['state', d.resolved ? `resolved ${d.resolvedAt ?? ''}: ${d.resolution ?? ''}` : 'open'],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  out(
    [
      ...rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`),
      'details:',
      JSON.stringify(d.details, null, 2),
      'payload:',
      JSON.stringify(d.payload, null, 2),
    ].join('\n'),
  );
  return ExitCode.Ok;
}

const STILL_OPEN = new Set(['failed', 'error', 'not_replayable', 'not_found']);

function outcomeJson(o: ReplayOutcome) {
  return {
    id: o.id,
    organization_id: o.organizationId,
    connector: o.connector,
    connection: o.connection,
    stream: o.stream,
    error_class: o.errorClass,
    status: o.status,
    ...(o.dryRun ? { dry_run: true } : {}),
    ...(o.rows !== undefined ? { rows: o.rows } : {}),
    ...(o.written ? { written: o.written } : {}),
    ...(o.code ? { code: o.code } : {}),
    ...(o.message ? { message: o.message } : {}),
    ...(o.retryCount !== undefined ? { retry_count: o.retryCount } : {}),
  };
}

async function replay(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...FILTER_OPTIONS, 'dry-run': { type: 'boolean' }, actor: { type: 'string' } },
    { command: 'dlq replay', positionals: 'any' },
  );
  const filter = filterFrom(values);
  if (!positionals.length && !hasSelector(filter))
    usage('dlq replay needs dead-letter ids or at least one filter (--org, --connector, --class, …)');
  positionals.forEach(assertDeadLetterId);
  const dryRun = !!values['dry-run'];
  const ctx = loadContext(values.config);
  const { config } = ctx;
  const target: string[] | DeadLetterFilter =
    positionals.length && !hasSelector(filter) && filter.limit === undefined
      ? positionals
      : { ...filter, ...(positionals.length ? { ids: positionals } : {}) };
  const progress = progressLine({ json: !!values.json });
  const logger = progress ? createLogger(config.log.level, progress.logDestination()) : ctx.logger;
  const outcomes = await withDatabase(config, (db) =>
    replayDeadLetters(db, config, target, {
      logger,
      actor: values.actor ?? defaultActor(),
      dryRun,
      onProgress: progress?.listener,
    }),
  ).finally(() => progress?.close());
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
  if (values.json) {
    out(JSON.stringify({ dry_run: dryRun, outcomes: outcomes.map(outcomeJson), counts }, null, 2));
  } else if (outcomes.length) {
    out(
      table(
        outcomes.map((o) => [
          o.id,
          o.organizationId ?? '',
          o.stream ?? '',
          dryRun ? `${o.status} (dry run)` : o.status,
          o.rows ?? '',
          oneLine(o.message ?? (o.written ? `${o.written.inserted} inserted, ${o.written.updated} updated` : ''), 100),
        ]),
        ['id', 'org', 'stream', 'outcome', 'rows', 'detail'],
      ),
    );
  }
  if (!outcomes.length) err('no open dead letters matched; nothing to replay');
  else
    err(
      `${dryRun ? 'dry run: ' : ''}${Object.entries(counts)
        .map(([k, n]) => `${n} ${k.replace('_', ' ')}`)
        .join(', ')}`,
    );
  return outcomes.some((o) => STILL_OPEN.has(o.status)) ? ExitCode.Failure : ExitCode.Ok;
}

async function resolve(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...FILTER_OPTIONS, reason: { type: 'string' }, actor: { type: 'string' } },
    { command: 'dlq resolve', positionals: 'any' },
  );
  if (!values.reason?.trim()) usage('dlq resolve needs --reason TEXT (it is stored with the letter and audited)');
  const filter = filterFrom(values);
  if (!positionals.length && !hasSelector(filter))
    usage('dlq resolve needs dead-letter ids or at least one filter (--org, --connector, --class, …)');
  positionals.forEach(assertDeadLetterId);
  const { config } = loadContext(values.config);
  const target: string[] | DeadLetterFilter =
    positionals.length && !hasSelector(filter) && filter.limit === undefined
      ? positionals
      : { ...filter, ...(positionals.length ? { ids: positionals } : {}) };
  const res = await withDatabase(config, (db) =>
    resolveDeadLetters(db, target, { resolution: values.reason as string, actor: values.actor ?? defaultActor() }),
  );
  if (values.json) out(JSON.stringify(res, null, 2));
  else {
    for (const id of res.resolved) out(`resolved ${id}`);
    for (const s of res.skipped) out(`skipped  ${s.id} (${s.reason})`);
  }
  if (!res.resolved.length && !res.skipped.length) err('no open dead letters matched; nothing resolved');
  else err(`${res.resolved.length} resolved${res.skipped.length ? `, ${res.skipped.length} skipped` : ''}`);
  return res.skipped.some((s) => s.reason === 'not found') ? ExitCode.Failure : ExitCode.Ok;
}
