/**
 * Prometheus metrics of `routiq serve` (prom-client). Names: `routiq_` prefix, `_total` counters, `_seconds`
 * histograms. Label cardinality is bounded: `connector`, `stream`, `status`, `outcome`, `queue` take a handful of
 * values each; only `routiq_connection_*` gauges carry `organization` and `connection` (one series per configured
 * connection, the same bound as the config file). See docs/service.md.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly syncRuns = new Counter({
    name: 'routiq_sync_runs_total',
    help: 'Sync runs finished, by connector and status (succeeded, partial, failed, skipped).',
    labelNames: ['connector', 'status'] as const,
    registers: [this.registry],
  });
  readonly syncRecords = new Counter({
    name: 'routiq_sync_records_total',
    help: 'Records fetched by sync runs, by connector and stream.',
    labelNames: ['connector', 'stream'] as const,
    registers: [this.registry],
  });
  readonly syncDeadLetters = new Counter({
    name: 'routiq_sync_dead_letters_total',
    help: 'Dead letters written by sync runs and webhook processing, by connector.',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly platformRequests = new Counter({
    name: 'routiq_platform_requests_total',
    help: 'HTTP requests made to platforms by sync runs, by connector.',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly platformRateLimited = new Counter({
    name: 'routiq_platform_rate_limited_total',
    help: 'Platform answers that were rate limits (429 or a rule), by connector.',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly syncDuration = new Histogram({
    name: 'routiq_sync_run_duration_seconds',
    help: 'Wall time of sync runs, by connector.',
    labelNames: ['connector'] as const,
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'routiq_webhook_deliveries_total',
    help: 'Webhook deliveries received, by connector and outcome (accepted, duplicate, rejected, unknown_connection).',
    labelNames: ['connector', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly webhookProcessed = new Counter({
    name: 'routiq_webhook_processed_total',
    help: 'Stored webhook deliveries processed, by connector and result (processed, failed, retried).',
    labelNames: ['connector', 'result'] as const,
    registers: [this.registry],
  });
  readonly webhookLatency = new Histogram({
    name: 'routiq_webhook_to_row_seconds',
    help: 'From a webhook delivery being received to its rows being committed, by connector.',
    labelNames: ['connector'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: 'routiq_jobs_total',
    help: 'Queue jobs handled by this instance, by queue and outcome.',
    labelNames: ['queue', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly activeRuns = new Gauge({
    name: 'routiq_active_runs',
    help: 'Sync runs in progress on this instance.',
    registers: [this.registry],
  });
  readonly connectionLag = new Gauge({
    name: 'routiq_connection_lag_seconds',
    help: 'Seconds since the last successful sync of a configured connection (carries organization).',
    labelNames: ['organization', 'connection'] as const,
    registers: [this.registry],
  });
  readonly connectionDeadLetters = new Gauge({
    name: 'routiq_connection_dead_letters_open',
    help: 'Open dead letters of a configured connection (carries organization).',
    labelNames: ['organization', 'connection'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'routiq_' });
  }
}
