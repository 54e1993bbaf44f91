/**
 * The option parsing every command shares: strict (an unknown option is a usage error, exit 2, naming
 * `routiq help <command>`), --config/--json spelled once, and the count of arguments checked in one place.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
// The registry module only: `routiq --help` stays light.
import { RoutiqError } from '@routiq/runner/errors';

/** `node:util` declares this type without exporting it. */
type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** --config FILE (-c) and --json: most commands take both. */
export const COMMON_OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
} as const satisfies OptionsConfig;

export interface ParseOptions {
  /** As typed after `routiq`: `status`, `dlq list`. */
  command: string;
  /** Arguments besides options: how many (default none), `'any'`, or [min, max]. */
  positionals?: number | 'any' | readonly [number, number];
  /** What the arguments are, for the error message: `<from-patient> <into-patient>`. */
  usage?: string;
}

export function parseOptions<T extends OptionsConfig>(args: string[], options: T, o: ParseOptions) {
  const r = parseArgs({ args, options, allowPositionals: true, strict: true });
  const want = o.positionals ?? 0;
  const n = r.positionals.length;
  const [min, max] = want === 'any' ? [0, Number.POSITIVE_INFINITY] : typeof want === 'number' ? [want, want] : want;
  if (n < min || n > max) {
    const what =
      max === 0
        ? `takes no arguments (got "${r.positionals.join(' ')}")`
        : `takes ${o.usage ?? (min === max ? `${min} argument(s)` : `${min} to ${max} arguments`)} (got ${n})`;
    throw new RoutiqError('RQ6001', `routiq ${o.command} ${what}\n  usage: routiq help ${o.command.split(' ')[0]}`);
  }
  return r;
}
