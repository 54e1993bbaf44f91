/**
 * Identity matching at 20,000 patients per organization (issue #21.4), on the held-out seed with the field noise:
 * identical full names are common, same-name same-birthday strangers and namesakes on family phones appear.
 * In memory (the same matcher, candidate semantics and reconcile plan as the engine; the database path is
 * measured by test/bench/identity.ts). Long: minutes on the 2-core machine.
 */
import { evaluateMatching, HELD_OUT_SEED } from '@routiq/sandbox/identity';
import { describe, expect, it } from 'vitest';

describe('identity matching at 20,000 patients per organization (held-out seed, field noise)', () => {
  it('F1 ≥ 0.97, no shared-phone family merged, precision ≥ 0.995; figures per noise kind printed', async () => {
    const r = await evaluateMatching({ seed: HELD_OUT_SEED, size: 20_000, noise: 'field', reconcile: true });
    console.log(r.report.split('\n').slice(0, 24).join('\n'));
    expect(r.sharedPhoneWrongMerges, r.report).toBe(0);
    expect(r.precision, r.report).toBeGreaterThanOrEqual(0.995);
    expect(r.f1, r.report).toBeGreaterThanOrEqual(0.97);
    const strangers = r.byKind.find((k) => k.kind === 'same_name_shared_phone');
    expect(strangers?.wrongPairs).toBe(0);
  }, 1_800_000);
});
