/**
 * Where a sync's time goes, for the benchmark only: wall milliseconds summed per stage (HTTP + parse, mapping,
 * validation, identity, write). Off by default; when off, a reading is one boolean test, so product code can
 * keep the calls in place.
 */
export type Stage = 'http' | 'mapping' | 'validation' | 'identity' | 'write';

const totals: Record<Stage, number> = { http: 0, mapping: 0, validation: 0, identity: 0, write: 0 };
let on = false;

/** Start (and zero) or stop the clock. */
export function enableStageClock(enabled: boolean): void {
  on = enabled;
  for (const k of Object.keys(totals) as Stage[]) totals[k] = 0;
}

/** A start time, or 0 when the clock is off. */
export function stageStart(): number {
  return on ? performance.now() : 0;
}

/** Charge the time since `t0` to a stage (nested stages are charged to both; the reader subtracts). */
export function stageEnd(stage: Stage, t0: number): void {
  if (on && t0 !== 0) totals[stage] += performance.now() - t0;
}

export function readStageClock(): Record<Stage, number> {
  return { ...totals };
}
