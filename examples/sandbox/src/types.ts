/** Public types shared by the three simulators. */

/**
 * Injected failures, applied before the request reaches the simulated application unless noted:
 * - `5xx`: a 500, 502 or 503 in the platform's own error style (HTML from the proxy for 502/503).
 * - `timeout`: the request is read and never answered; the socket is held open until `timeoutHoldMs`, then dropped.
 * - `reset`: the TCP connection is reset without any response.
 * - `429`: the platform's rate-limit response, exactly as its real limiter sends it.
 * - `truncated`: the request IS processed (writes happen), headers announce the full Content-Length,
 *   half the body is sent, then the socket is destroyed.
 */
export type FaultKind = '5xx' | 'timeout' | 'reset' | '429' | 'truncated';

export const FAULT_KINDS: readonly FaultKind[] = ['5xx', 'timeout', 'reset', '429', 'truncated'];

export interface FaultConfig {
  /** Probability in [0, 1] that a request gets a fault. Default 0. */
  rate?: number;
  /** Kinds to draw from when `rate` fires. Default: all kinds. */
  kinds?: FaultKind[];
  /** Seed of the fault stream, so the N-th request gets the same fault on every run. Default 1. */
  seed?: number;
  /** How long a `timeout` fault holds the socket before destroying it. Default 120000 ms. */
  timeoutHoldMs?: number;
}

export interface FaultState {
  rate: number;
  kinds: FaultKind[];
  seed: number;
  timeoutHoldMs: number;
  queued: FaultKind[];
}

export interface FaultControl {
  /** Replaces the random fault configuration (the queue is kept). */
  set(cfg: FaultConfig): void;
  /** The next N requests get exactly these faults, in order, before any random fault is drawn. */
  queue(kinds: FaultKind[]): void;
  /** No faults: rate 0 and an empty queue. */
  clear(): void;
  state(): FaultState;
}

export interface RateLimitOptions {
  /** Default true. */
  enabled?: boolean;
  /** Requests allowed per window. */
  limit?: number;
  /** Window length; windows are fixed and aligned to the epoch, like rack-attack's. */
  windowMs?: number;
}

export interface SimOptions {
  /** Default 0: a random free port. The server always binds 127.0.0.1. */
  port?: number;
  /** Dataset seed. Default 1. */
  seed?: number;
  /** Dataset size multiplier. 1 is a small demo (tens of contacts per tenant). */
  scale?: number;
  /**
   * The dataset's "now": generated history ends here and mutations move forward from it.
   * Default: the start of the current UTC day, so a seed gives the same data all day long.
   */
  now?: number | Date | string;
  faults?: FaultConfig;
}

export interface SimStats {
  /** Platform requests (the /__sandbox/ control API is not counted). */
  requests: number;
  /** By HTTP status, plus `reset` and `timeout` for faults that never produced a status. */
  byStatus: Record<string, number>;
  /** 429 responses sent, whether from the rate limiter or from an injected fault. */
  rateLimited: number;
  /** By path group, e.g. `conversations`, `messages`, `patients`, `/fb/subscriber/getInfo`. */
  byGroup: Record<string, number>;
  /** Injected faults by kind. */
  faults: Record<string, number>;
}

export interface BaseSim<TSnapshot, TSummary> {
  /** Base URL. Cliniko's includes `/v1`. */
  readonly url: string;
  /** Origin only (scheme, host, port), where `/__sandbox/` lives. */
  readonly origin: string;
  close(): Promise<void>;
  readonly stats: SimStats;
  resetStats(): void;
  faults: FaultControl;
  /** Advances the data deterministically by `steps` steps (default 1). */
  mutate(steps?: number): TSummary;
  /** Ground truth, in the platform's own REST shapes. */
  snapshot(): TSnapshot;
  /** The simulated clock (ms since epoch). */
  now(): number;
}
