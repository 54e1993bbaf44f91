/**
 * `@routiq/runner/errors`: the error-code registry and RoutiqError, without the rest of the runner (no database
 * driver, no ORM), so a CLI can report errors and print help cheaply.
 */
export type { CodeInfo, CoreCode } from './registry.ts';
export { codes, isRoutiqError, RoutiqError } from './registry.ts';
