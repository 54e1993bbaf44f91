import { describe, expect, it } from 'vitest';
import { routiqAtRoot } from '../helpers/cli-process.ts';

const routiq = routiqAtRoot;

/**
 * The matching quality gates of `routiq patients evaluate` (classic set F1 ≥ 0.99, held-out seed with field noise
 * F1 ≥ 0.97, another seed): a whole labelled evaluation each, in a child process — the soak tier (CI runs it after
 * npm test); runner/src/identity/labelled.integration.test.ts keeps a gate in the default tier.
 */
describe('routiq patients evaluate', () => {
  it('classic set: precision, recall and F1 of matching + reconcile; F1 ≥ 0.99, no shared-phone wrong merge, exit 0', async () => {
    const r = await routiq(['patients', 'evaluate', '--noise', 'classic', '--json']);
    expect(r.stderr).toMatch(/^ok: F1/m);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({
      seed: 20250627,
      size: 1000,
      noise: 'classic',
      order: 'shuffled',
      reconcile: true,
      passed: true,
    });
    expect(s.f1).toBeGreaterThanOrEqual(0.99);
    expect(s.precision).toBe(1);
    expect(s.recall).toBeGreaterThan(0.98);
    expect(s.wrong_merges).toEqual({ pairs: 0, patients: 0, shared_phone_pairs: 0, household_pairs: 0 });
    expect(s.reconcile_merges).toBeGreaterThan(0);
  });

  it('held-out seed with field noise: F1 ≥ 0.97, figures per noise kind, as text', async () => {
    const r = await routiq(['patients', 'evaluate', '--held-out']);
    expect(r.code, r.stderr).toBe(0);
    for (const kind of ['decorated_name', 'junk_phone', 'inbox_source_id', 'message_evidence', 'same_name_same_dob']) {
      expect(r.stdout).toMatch(new RegExp(`^ {4}${kind} +\\d+ +\\d+\\.\\d\\d% +\\d+\\.\\d\\d% +\\d+\\.\\d\\d%`, 'm'));
    }
    expect(r.stderr).toMatch(/^ok: F1 (9[7-9]|100)\.\d\d% ≥ 97\.00% .*seed 4194301, field noise/m);
  });

  it('another seed, as text', async () => {
    const r = await routiq(['patients', 'evaluate', '--seed', '7', '--size', '400', '--noise', 'classic']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^precision 100\.00%$/m);
    expect(r.stdout).toMatch(/^recall {4}\d+\.\d\d%$/m);
    expect(r.stdout).toMatch(/^F1 {8}\d+\.\d\d%$/m);
    expect(r.stdout).toMatch(/among people sharing a phone: 0$/m);
  });
});
