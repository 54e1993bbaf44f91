/**
 * Telling "the database went away" apart from everything else that can fail during a run, so that a PostgreSQL
 * outage is reported as a database error (RQ4006, exit code 4) rather than as an unexpected internal one.
 */
import { isRoutiqError, RoutiqError } from '../errors/registry.ts';
import { redactUrlCredentials } from '../util/redact.ts';

/** Socket errors of the driver's connection (the HTTP client wraps its own in RQ3xxx failures). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Driver messages of a connection that broke or could not be (re)made. */
const LOST =
  /Connection terminated|Connection ended unexpectedly|Client has encountered a connection error|timeout exceeded when trying to connect|Unable to acquire a connection|Knex: Timeout acquiring a connection|the database system is (shutting down|starting up|in recovery mode)|terminating connection due to administrator command/i;

/**
 * SQLSTATEs that mean the server, not the statement: class 08 (connection exception), 57P01–57P03 (shut down,
 * crashed, cannot connect now), 53300 (too many connections).
 */
export function isDatabaseFailureCode(code: string | undefined): boolean {
  if (!code) return false;
  return code.startsWith('RQ4') || /^08[0-9A-Z]{3}$/.test(code) || /^57P0[123]$/.test(code) || code === '53300';
}

/** The database failure behind `err` (its cause chain included) as a RoutiqError, or undefined when it is not one. */
export function databaseFailure(err: unknown): RoutiqError | undefined {
  if (isRoutiqError(err)) return err.code.startsWith('RQ4') ? err : undefined;
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { name?: unknown; code?: unknown; message?: unknown };
    // got's errors carry the same socket codes: they are the platform's, never the database's.
    if (x.name === 'RequestError' || x.name === 'HttpFailure') return undefined;
    const code = typeof x.code === 'string' ? x.code : undefined;
    const message = typeof x.message === 'string' ? x.message : '';
    if ((code && (SOCKET_CODES.has(code) || isDatabaseFailureCode(code))) || LOST.test(message)) {
      return new RoutiqError(
        'RQ4006',
        `the database connection failed: ${redactUrlCredentials(message || code || 'unknown')}`,
        {
          cause: err,
        },
      );
    }
  }
  return undefined;
}
