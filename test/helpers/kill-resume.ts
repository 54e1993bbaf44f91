import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openDatabase } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, createTestDatabase, testTmpDir } from './db.ts';
import { connectorsDir } from './engine.ts';
import { threadsSpec } from './specs.ts';
import { startTinyApi, type TinyApi } from './tiny-api.ts';

/**
 * Issue #4: SIGKILL `routiq sync` in the middle of a multi-page, parent→child sync, restart, again and again; the
 * database must then equal the source exactly (count and content), with no duplicates and no run left 'running'.
 *
 * Kill points are events, not delays: the process is killed when the API receives the k-th request of that run.
 * A request is only sent once the run's sync_runs row exists, so every kill leaves a 'running' row for the next
 * run to close as 'abandoned' (RQ6002), however slowly the process starts on a loaded machine. (Wall-clock kill
 * points used to land in start-up, before the row existed, and then no run was ever abandoned.)
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');
const ITEMS = 150;
const NOTES_PER_ITEM = 7;
/**
 * Requests a full sync of the source needs at least: 16 item pages (10 per page, then the empty one) and, per
 * item, the newest 4 notes and the 3 before them. A run cannot skip a page no earlier run fetched.
 */
const FULL_SYNC_REQUESTS = Math.floor(ITEMS / 10) + 1 + ITEMS * 2;
/** Requests a killed run may still have had in flight when the k-th arrived (concurrency 2, parent and child). */
const IN_FLIGHT = 3;

/**
 * How many of the runs are surely cut by their kill point: while the requests of the earlier runs (each at most
 * k + IN_FLIGHT) stay below a full sync, the work left is larger than the next kill point.
 */
export function surelyKilled(points: readonly number[]): number {
  let left = FULL_SYNC_REQUESTS;
  let n = 0;
  for (const k of points) {
    if (k > left) break;
    n++;
    left -= k + IN_FLIGHT;
  }
  return n;
}

interface Run {
  code: number | null;
  signal: string | null;
  stderr: string;
  requests: number;
}

function routiq(args: string[], env: NodeJS.ProcessEnv, api: TinyApi, killAtRequest?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let requests = 0;
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const stop = api.onRequest(() => {
      requests++;
      if (requests === killAtRequest) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      stop();
      resolve({ code, signal, stderr, requests });
    });
  });
}

export interface KillResumeScenario {
  /** Kill point of each run: the request number (within that run) on whose arrival the process is killed. */
  killPoints: readonly number[];
  /** Change the source (3 new notes on one item, the item touched) before every n-th run. */
  changeSourceEvery?: number;
  /** Names the describe block. */
  title: string;
  timeoutMs: number;
}

/** The scenario against every backend (embedded, and PostgreSQL when reachable). */
export async function describeKillResume(s: KillResumeScenario): Promise<void> {
  const kinds = await backends();
  describe.each(kinds)(`${s.title} (%s)`, (kind) => {
    let api: TinyApi;
    let work: string;
    let config: string;
    let env: NodeJS.ProcessEnv;
    let drop: () => Promise<void>;
    let dbOpts: { url: string | undefined; embeddedDir: string };

    beforeAll(async () => {
      api = await startTinyApi({ items: ITEMS, notesPerItem: NOTES_PER_ITEM });
      work = testTmpDir('routiq-kill-');
      const target = await createTestDatabase(kind, { dir: path.join(work, 'db') });
      drop = target.drop;
      dbOpts = { url: target.url, embeddedDir: target.embeddedDir || path.join(work, 'db') };
      config = path.join(work, 'routiq.yaml');
      writeFileSync(
        config,
        `database:\n  embedded_dir: ${path.join(work, 'db')}\nconnectors_dir: ${connectorsDir({ threads: threadsSpec() })}\nrunner:\n  batch_size: 50\n  concurrency: 2\norganizations:\n  - id: org_kill\n    name: Kill test clinic\n    connections:\n      - connector: threads\n        config:\n          base_url: ${api.url}\n`,
      );
      env = { ROUTIQ_LOG_LEVEL: 'silent', DATABASE_URL: target.url ?? '' };
      const m = await routiq(['migrate', '--config', config], env, api);
      expect(m.code, m.stderr).toBe(0);
    });
    afterAll(async () => {
      await api?.close();
      await drop?.();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('resumes from the last checkpoint with no loss and no duplicates', { timeout: s.timeoutMs }, async () => {
      let killed = 0;
      for (const [i, k] of s.killPoints.entries()) {
        if (s.changeSourceEvery && i % s.changeSourceEvery === s.changeSourceEvery - 1) {
          const item = api.items[(i * 7) % api.items.length]!;
          api.addNotes(item.id, 3);
          api.touch([item.id]);
        }
        const r = await routiq(['sync', '--config', config], env, api, k);
        if (r.signal === 'SIGKILL') killed++;
        else expect(r.code, `run ${i} (kill point ${k}, ${r.requests} requests): ${r.stderr}`).toBe(0);
      }
      expect(killed).toBeGreaterThanOrEqual(surelyKilled(s.killPoints));
      const final = await routiq(['sync', '--config', config, '--json'], env, api);
      expect(final.code, final.stderr).toBe(0);

      const db = await openDatabase({ url: dbOpts.url, embeddedDir: dbOpts.embeddedDir });
      try {
        const convs = await db.query<{ external_id: string; inbox: string; last_activity_at: string }>(
          "select external_id, inbox, to_char(last_activity_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') as last_activity_at from conversations where organization_id = 'org_kill' order by external_id",
        );
        const expectedConvs = [...api.items]
          .sort((a, b) => a.id.localeCompare(b.id))
          .map((i) => ({ external_id: i.id, inbox: i.name, last_activity_at: i.updated_at }));
        expect(convs).toEqual(expectedConvs);
        const msgs = await db.query<{ external_id: string; conversation_external_id: string; content: string }>(
          "select external_id, conversation_external_id, content from messages where organization_id = 'org_kill' order by external_id::bigint",
        );
        expect(msgs).toEqual(
          api.notes.map((n) => ({ external_id: String(n.id), conversation_external_id: n.item_id, content: n.body })),
        );
        const unlinked = await db.query<{ n: string }>(
          "select count(*)::text as n from messages where organization_id = 'org_kill' and conversation_id is null",
        );
        expect(unlinked[0]?.n).toBe('0');
        // Every killed run was closed by a later one as abandoned; every other run finished.
        const runs = await db.query<{ status: string; error_code: string | null; n: string }>(
          "select status, error_code, count(*)::text as n from sync_runs where organization_id = 'org_kill' group by status, error_code order by status",
        );
        expect(runs).toEqual([
          { status: 'abandoned', error_code: 'RQ6002', n: String(killed) },
          { status: 'succeeded', error_code: null, n: String(s.killPoints.length - killed + 1) },
        ]);
      } finally {
        await db.close();
      }
    });
  });
}
