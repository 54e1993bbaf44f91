/**
 * The one error-code registry. Every error the product raises or reports carries one of these codes;
 * `docs/errors.md` is generated from this table (CI fails on drift). Codes are never reused.
 * RQ1xxx config, RQ2xxx connector spec (lint), RQ3xxx HTTP/platform, RQ4xxx database, RQ5xxx records/DLQ, RQ6xxx CLI/usage.
 */
import { lintCodes } from './lint-codes.ts';

export interface CodeInfo {
  /** Short stable slug. */
  name: string;
  /** What went wrong, in one line. */
  title: string;
  /** What to do about it. */
  hint: string;
}

const coreCodes = {
  RQ1001: {
    name: 'config.file_not_found',
    title: 'The configuration file does not exist',
    hint: 'Check ROUTIQ_ENV / --config; files live in config/<env>.yaml.',
  },
  RQ1002: {
    name: 'config.yaml_invalid',
    title: 'The configuration file is not valid YAML',
    hint: 'Fix the syntax at the reported line and column.',
  },
  RQ1003: {
    name: 'config.invalid_value',
    title: 'A configuration value is invalid',
    hint: 'Fix the key named in the message; see docs/configuration.md for allowed values.',
  },
  RQ1004: {
    name: 'config.env_missing',
    title: 'A ${VAR} reference names an environment variable that is not set',
    hint: 'Export the variable (see .env.example) or remove the reference.',
  },
  RQ1005: {
    name: 'config.env_invalid',
    title: 'An environment variable has an invalid value',
    hint: 'Fix the variable; .env.example lists every variable and its format.',
  },
  RQ1006: {
    name: 'config.unknown_connector',
    title: 'A connection names a connector that does not exist',
    hint: 'Use one of the folders under connectors/ (routiq connectors list).',
  },
  RQ1007: {
    name: 'config.connection_invalid',
    title: "A connection's settings do not match its connector's connection schema",
    hint: "Fix the named setting; the connector's README lists its settings.",
  },
  RQ1008: {
    name: 'config.unknown_org',
    title: 'No organization with that id is configured',
    hint: 'Check --org against the organizations in the config file.',
  },
  RQ1020: {
    name: 'config.encryption_keys_invalid',
    title: 'ROUTIQ_ENCRYPTION_KEYS is missing or malformed',
    hint: 'Set it to `id:base64key[,id:base64key…]`, 32-byte keys, the sealing key first (docs/security.md).',
  },
  RQ1021: {
    name: 'config.credential_unavailable',
    title: 'A stored credential is missing or cannot be opened',
    hint: 'Set it with `routiq credentials set`, or list every key still in use in ROUTIQ_ENCRYPTION_KEYS (docs/security.md).',
  },
  RQ2000: {
    name: 'spec.load_failed',
    title: 'A connector spec could not be loaded',
    hint: 'Run `routiq lint <path>` for the full list of findings.',
  },
  RQ3001: {
    name: 'http.transient',
    title: 'A transient platform failure (5xx, timeout, reset, truncated body) outlasted the retries',
    hint: 'The run stopped before its deadline; the next run resumes from the last checkpoint.',
  },
  RQ3002: {
    name: 'http.rate_limited',
    title: 'The platform kept rate-limiting past the run deadline',
    hint: 'Lower the connection budget or run less often; nothing was lost, the next run resumes.',
  },
  RQ3003: {
    name: 'http.auth',
    title: 'The platform rejected the credentials (401/403)',
    hint: "Fix the connection's secret; the connection is paused until then.",
  },
  RQ3004: {
    name: 'http.permanent',
    title: 'The platform rejected a request permanently (4xx)',
    hint: 'Inspect the dead letter (routiq dlq show) and fix the spec or the connection settings.',
  },
  RQ3005: {
    name: 'http.insecure',
    title: 'Plain http or a TLS version below the minimum was refused',
    hint: 'Use https, or set allow_insecure_http / tls.min_version on the connection (logged as a warning).',
  },
  RQ3006: {
    name: 'http.bad_body',
    title: 'The platform answered with a body that is not the JSON the spec expects',
    hint: 'Usually transient (truncated); otherwise check records/pagination paths in the spec.',
  },
  RQ3007: {
    name: 'http.pagination_loop',
    title: 'Pagination went in a loop (a page, cursor or link came back within one pass)',
    hint: 'Check the stream pagination (token path, stop condition) in the spec; the checkpoint is kept.',
  },
  RQ3008: {
    name: 'http.circuit_open',
    title: 'The connection failed repeatedly and its circuit is open',
    hint: 'It is retried automatically after the cool-down; see routiq status.',
  },
  RQ3009: {
    name: 'http.cross_origin',
    title: "A pagination link points to another origin than the connection's base_url",
    hint: 'Credentials are only sent to the connection origin. If the platform really links elsewhere, list the origin in the spec (request.allowed_origins) or set pagination.cross_origin: without_credentials.',
  },
  RQ4001: {
    name: 'db.connect_failed',
    title: 'Could not connect to the database',
    hint: 'Check DATABASE_URL, or unset it to use the embedded database.',
  },
  RQ4002: {
    name: 'db.schema_newer',
    title: 'The database schema is newer than this version of routiq knows',
    hint: 'Upgrade routiq; it refuses to run against migrations it does not know.',
  },
  RQ4003: { name: 'db.schema_outdated', title: 'The database schema is not migrated', hint: 'Run `routiq migrate`.' },
  RQ4004: {
    name: 'db.embedded_locked',
    title: 'The embedded database directory is in use by another process',
    hint: 'Stop the other routiq process, or set DATABASE_URL to share a PostgreSQL server between processes.',
  },
  RQ4005: {
    name: 'db.run_in_progress',
    title: 'Another sync run for this organization and connector is in progress',
    hint: 'Wait for it; a run that died is closed automatically once its heartbeat is stale.',
  },
  RQ4006: {
    name: 'db.connection_lost',
    title: 'The database went away during the run (connection refused, reset or shut down)',
    hint: 'Check that PostgreSQL is up and DATABASE_URL is right; nothing is lost, the next run resumes from the last checkpoint.',
  },
  RQ4007: {
    name: 'db.statement_refused',
    title: "The database refused an operator's SQL statement (routiq sql, routiq db shell)",
    hint: "PostgreSQL's reason is in the message. Statements are read-only unless --write and run under row-level security (--org ID for one organization, else the audited cross-organization path); schema changes belong to migrations.",
  },
  RQ5001: {
    name: 'record.mapping_failed',
    title: 'A record could not be mapped (JSONata error)',
    hint: 'Fix the mapping, then `routiq dlq replay`.',
  },
  RQ5002: {
    name: 'record.validation_failed',
    title: 'A mapped record does not match the unified schema',
    hint: 'Fix the mapping or the source data, then `routiq dlq replay`.',
  },
  RQ5003: {
    name: 'record.hook_failed',
    title: 'A hook threw while handling a record',
    hint: 'See the stack in the dead letter; fix the hook, then replay.',
  },
  RQ5004: {
    name: 'record.write_failed',
    title: 'A record could not be written (constraint violation)',
    hint: 'See the dead letter details; fix the mapping, then replay.',
  },
  RQ5005: {
    name: 'webhook.rejected',
    title: 'A webhook payload was rejected (signature, token or shape)',
    hint: 'Check the shared secret configured for the connection.',
  },
  RQ5006: {
    name: 'identity.merge_refused',
    title: 'A patient merge or unmerge was refused',
    hint: 'The message says why (already merged, already undone, merged again since); see docs/identity.md.',
  },
  RQ5007: {
    name: 'record.bad_key',
    title: "A record's primary key is missing or not a string or number",
    hint: 'The record is kept in the DLQ, never stored under "null": check primary_key / external_id in the spec, then replay.',
  },
  RQ5008: {
    name: 'record.expression_budget',
    title: 'A spec expression exceeded its time or depth budget (runaway recursion or loop)',
    hint: 'Fix the expression named in the message, then `routiq dlq replay` (a record that hit the budget is kept in the DLQ). Limits: docs/architecture.md.',
  },
  RQ5009: {
    name: 'record.too_deep',
    title: 'A record or payload nests deeper than the engine accepts (64 levels)',
    hint: 'No real record of the shipped platforms does; the dead letter keeps an excerpt. Resolve it once checked.',
  },
  RQ6001: { name: 'cli.usage', title: 'The command line is invalid', hint: 'Run `routiq help <command>`.' },
  RQ6002: {
    name: 'cli.internal',
    title: 'An unexpected internal error',
    hint: 'Please report it with the log (correlation id) attached.',
  },
  RQ6003: {
    name: 'run.stopped_for_shutdown',
    title: 'A sync run was stopped at a checkpoint because the service shut down',
    hint: 'Nothing to do: the next scheduled run resumes from the checkpoint.',
  },
  RQ6101: {
    name: 'workbench.no_database',
    title: 'A hook queried the database during a test read that has none (simulator or fixtures target)',
    hint: 'Test against a configured organization (`routiq connector test <name> --org ID`), or make the hook work without reads.',
  },
  RQ6102: {
    name: 'workbench.records_path_empty',
    title: "A stream's `records` path selects nothing from a response that has content",
    hint: 'Fix `records` in the stream (the message names the missing key and the nearest one); a sync would report success with 0 records.',
  },
  RQ6103: {
    name: 'workbench.mapping_no_rows',
    title: 'A stream read records, but one of its declared mappings produced no row',
    hint: "Check the mapping's `when`/`input` against the sample records (`routiq connector test <name>`); fine if the sample simply had no such record.",
  },
  RQ6104: {
    name: 'workbench.no_fixtures',
    title: 'The connector has no recorded fixtures to replay',
    hint: 'Record them: `routiq connector test <name> --target simulator --record` (or against a real account with --org).',
  },
  RQ6105: {
    name: 'workbench.replay_miss',
    title: 'A replayed run made a request the fixtures have no answer for',
    hint: 'The spec changed what it requests since the recording: re-record with --record, or undo the change.',
  },
  RQ6106: {
    name: 'workbench.connector_test_failed',
    title: "A connector's data test (fixtures in, expected rows out) did not produce the expected rows",
    hint: 'Compare the rows printed with the expected ones in connectors/<name>/tests/; fix the mapping or the expectation.',
  },
} as const satisfies Record<string, CodeInfo>;

export const codes: Readonly<Record<string, CodeInfo>> = { ...coreCodes, ...lintCodes };
export type CoreCode = keyof typeof coreCodes;

/** An error that says what went wrong, where, and what to do. */
export class RoutiqError extends Error {
  readonly code: string;
  readonly where: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: CoreCode,
    message: string,
    opts: { where?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RoutiqError';
    this.code = code;
    this.where = opts.where;
    this.details = opts.details;
  }
  get hint(): string {
    return codes[this.code]?.hint ?? '';
  }
  /** `RQ1003 config/development.yaml:4:3: runner.batch_size must be >= 1 (fix: …)` */
  format(): string {
    const where = this.where ? `${this.where}: ` : '';
    return `${this.code} ${where}${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}

export function isRoutiqError(e: unknown): e is RoutiqError {
  return e instanceof RoutiqError;
}
