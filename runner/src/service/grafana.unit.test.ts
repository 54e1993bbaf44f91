import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlertMonitor } from '../alerts/index.ts';
import type { Database } from '../db/database.ts';
import { createLogger } from '../logger.ts';
import { ServiceMetrics } from './metrics.ts';

/**
 * examples/grafana/routiq-dashboard.json only queries metrics `routiq serve` exports (the service's registry,
 * process defaults and the alert monitor's), so a renamed metric cannot leave an empty panel behind.
 */
const FILE = path.resolve(import.meta.dirname, '../../../examples/grafana/routiq-dashboard.json');

describe('Grafana dashboard', () => {
  it('queries only exported metrics, and every exported routiq metric family has a panel', async () => {
    const m = new ServiceMetrics();
    new AlertMonitor({
      db: {} as Database,
      config: () => ({ organizations: [] }) as never,
      logger: createLogger('silent'),
      registry: m.registry,
    });
    const exported = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
    const dash = JSON.parse(readFileSync(FILE, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(
      exprs.flatMap((e) =>
        [...e.matchAll(/\broutiq_[a-z0-9_]+/g)].map((x) => x[0].replace(/_(bucket|sum|count)$/, '')),
      ),
    );
    for (const name of used) expect(exported.has(name), name).toBe(true);
    const own = [...exported].filter((n) => !/^routiq_(process|nodejs)_/.test(n));
    for (const name of own) expect(used.has(name), `${name} has no panel`).toBe(true);
  });
});
