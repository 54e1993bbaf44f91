import { FAULT_KINDS, type FaultConfig, type FaultControl, type FaultKind, type FaultState } from '../types.ts';
import { hash32, Rng } from './prng.ts';

export class FaultController implements FaultControl {
  private rate = 0;
  private kinds: FaultKind[] = [...FAULT_KINDS];
  private seed = 1;
  private holdMs = 120_000;
  private queued: FaultKind[] = [];
  private rng = new Rng(hash32('faults', 1));

  constructor(cfg?: FaultConfig) {
    if (cfg) this.set(cfg);
  }

  set(cfg: FaultConfig): void {
    const rate = cfg.rate ?? 0;
    if (!(rate >= 0 && rate <= 1)) throw new Error(`fault rate must be within [0, 1], got ${rate}`);
    const kinds = cfg.kinds ?? [...FAULT_KINDS];
    for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind: ${k}`);
    if (kinds.length === 0 && rate > 0) throw new Error('fault kinds must not be empty when rate > 0');
    this.rate = rate;
    this.kinds = [...kinds];
    this.seed = cfg.seed ?? 1;
    this.holdMs = cfg.timeoutHoldMs ?? 120_000;
    this.rng = new Rng(hash32('faults', this.seed));
  }

  queue(kinds: FaultKind[]): void {
    for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind: ${k}`);
    this.queued.push(...kinds);
  }

  clear(): void {
    this.rate = 0;
    this.queued = [];
  }

  state(): FaultState {
    return {
      rate: this.rate,
      kinds: [...this.kinds],
      seed: this.seed,
      timeoutHoldMs: this.holdMs,
      queued: [...this.queued],
    };
  }

  get timeoutHoldMs(): number {
    return this.holdMs;
  }

  /** The fault for the next request, or null. Consumes the queue first, then draws from the seeded stream. */
  next(): FaultKind | null {
    const q = this.queued.shift();
    if (q) return q;
    if (this.rate <= 0) return null;
    if (this.rng.next() >= this.rate) return null;
    return this.rng.pick(this.kinds);
  }

  /** Deterministic variety within a kind (which 5xx status, for instance). */
  variant(n: number): number {
    return Math.floor(this.rng.next() * n);
  }
}

/** Parses the body of POST /__sandbox/faults. */
export function applyFaultCommand(ctl: FaultController, body: unknown): FaultState {
  if (body === null || typeof body !== 'object') throw new Error('expected a JSON object');
  const b = body as Record<string, unknown>;
  if (b.clear === true) ctl.clear();
  if (Array.isArray(b.queue)) ctl.queue(b.queue as FaultKind[]);
  const cfg: FaultConfig = {};
  let touched = false;
  if (typeof b.rate === 'number') {
    cfg.rate = b.rate;
    touched = true;
  }
  if (Array.isArray(b.kinds)) {
    cfg.kinds = b.kinds as FaultKind[];
    touched = true;
  }
  if (typeof b.seed === 'number') {
    cfg.seed = b.seed;
    touched = true;
  }
  if (typeof b.timeoutHoldMs === 'number') {
    cfg.timeoutHoldMs = b.timeoutHoldMs;
    touched = true;
  }
  if (touched) ctl.set(cfg);
  return ctl.state();
}
