/** Exit codes of `routiq` (documented in docs/cli.md). */
export const ExitCode = {
  Ok: 0,
  /** The command ran and found problems: lint findings, a failed or partial sync, an unresolved dead letter. */
  Failure: 1,
  /** Bad command line. */
  Usage: 2,
  /** Invalid configuration (RQ1xxx) or connector spec (RQ2xxx). */
  Config: 3,
  /** Database unreachable, schema newer or not migrated (RQ4xxx). */
  Database: 4,
  /** Unexpected internal error. */
  Internal: 70,
} as const;

export function exitCodeFor(code: string | undefined): number {
  if (!code) return ExitCode.Internal;
  if (code.startsWith('RQ1') || code.startsWith('RQ2')) return ExitCode.Config;
  // A statement the database refused is the operator's statement failing, not the database being unusable.
  if (code === 'RQ4007') return ExitCode.Failure;
  if (code.startsWith('RQ4')) return ExitCode.Database;
  if (code.startsWith('RQ6001')) return ExitCode.Usage;
  return ExitCode.Failure;
}
