import type { ConnectionSummary } from '@routiq/runner';
import { describe, expect, it } from 'vitest';
import { databaseLost } from './sync.ts';

describe("databaseLost: which failed runs are the database's", () => {
  const summary = (errorCode: string | undefined, streamCodes: string[] = []): ConnectionSummary => ({
    organizationId: 'o',
    connection: 'c',
    connector: 'c',
    specVersion: '1.0.0',
    runId: 'r',
    correlationId: 'x',
    status: errorCode || streamCodes.length ? 'failed' : 'succeeded',
    requests: 1,
    rateLimited: 0,
    durationMs: 1,
    streams: streamCodes.map((code) => ({
      stream: 's',
      status: 'failed',
      pages: 0,
      records: 0,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      deadLetters: 0,
      partitions: 0,
      durationMs: 1,
      error: `failed with ${code}`,
      errorCode: code,
    })),
    ...(errorCode ? { error: `failed with ${errorCode}`, errorCode } : {}),
  });
  let probes = 0;
  /** A database whose `select 1` answers as given, counting the probes. */
  const db = (answer: () => Promise<unknown>) =>
    ({
      query: () => {
        probes++;
        return answer();
      },
    }) as never;
  const up = db(async () => []);
  const down = db(() => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')));
  const hung = db(() => new Promise(() => {}));

  it('a database SQLSTATE in a summary is RQ4006 without asking the database', async () => {
    probes = 0;
    const e = await databaseLost(down, [summary(undefined, ['57P01'])]);
    expect(e?.code).toBe('RQ4006');
    expect(e?.message).toBe('a sync failed on the database: failed with 57P01');
    expect((await databaseLost(down, [summary('08006')]))?.code).toBe('RQ4006');
    expect(probes).toBe(0);
  });

  it('an unexplained failure (a driver error, RQ6002) asks the database: down or silent is RQ4006, up is not', async () => {
    probes = 0;
    expect((await databaseLost(down, [summary('ECONNREFUSED')]))?.message).toBe(
      'the database stopped answering during the sync (connect ECONNREFUSED 127.0.0.1:5432); a sync failed with: failed with ECONNREFUSED',
    );
    expect((await databaseLost(hung, [summary('RQ6002')], 50))?.message).toContain('(no answer within 50 ms)');
    expect(await databaseLost(up, [summary(undefined, ['ECONNRESET'])])).toBeUndefined();
    expect(probes).toBe(3);
  });

  it("platform failures and successes are not the database's, and do not probe it", async () => {
    probes = 0;
    expect(
      await databaseLost(down, [summary('RQ3003'), summary(undefined, ['RQ3001']), summary(undefined)]),
    ).toBeUndefined();
    expect(probes).toBe(0);
  });
});
