import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, createTestDatabase } from '../helpers/db.ts';
import { connectorsDir } from '../helpers/engine.ts';
import { threadsSpec } from '../helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../helpers/tiny-api.ts';

/**
 * Issue #4: SIGKILL the sync process at random points of a multi-page, parent→child sync, restart, 20 times;
 * the database must then equal the source exactly (count and content), with no duplicates and no run left 'running'.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'cli/bin/routiq.mjs');

const SPEC = threadsSpec();

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

// Deterministic "random" kill points.
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const kinds = await backends();

describe.each(kinds)('SIGKILL at random points, 20 times (%s)', (kind) => {
  let api: TinyApi;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let drop: () => Promise<void>;
  let dbOpts: { url: string | undefined; embeddedDir: string };

  beforeAll(async () => {
    api = await startTinyApi({ items: 150, notesPerItem: 7, delayMs: 5 });
    work = mkdtempSync(path.join(tmpdir(), 'routiq-kill-'));
    const target = await createTestDatabase(kind, { dir: path.join(work, 'db') });
    drop = target.drop;
    dbOpts = { url: target.url, embeddedDir: target.embeddedDir };
    const dir = connectorsDir({ threads: SPEC });
    writeFileSync(
      path.join(work, 'routiq.yaml'),
      `database:\n  embedded_dir: ${path.join(work, 'db')}\nconnectors_dir: ${dir}\nrunner:\n  batch_size: 50\n  concurrency: 2\norganizations:\n  - id: org_kill\n    name: Kill test clinic\n    connections:\n      - connector: threads\n        config:\n          base_url: ${api.url}\n`,
    );
    env = { ROUTIQ_LOG_LEVEL: 'silent', ...(target.url ? { DATABASE_URL: target.url } : { DATABASE_URL: '' }) };
    const m = await run(['migrate', '--config', path.join(work, 'routiq.yaml')], env);
    expect(m.code, m.stderr).toBe(0);
  });
  afterAll(async () => {
    await api?.close();
    await drop?.();
  });

  it('resumes from the last checkpoint with no loss and no duplicates', { timeout: 600_000 }, async () => {
    const next = rng(kind === 'embedded' ? 7 : 11);
    // The embedded database adds ~1.5 s of start-up (WASM PostgreSQL); kill points cover start-up and the sync itself.
    const killAt = () => (kind === 'embedded' ? 700 + Math.floor(next() * 3000) : 300 + Math.floor(next() * 1700));
    let killed = 0;
    for (let i = 0; i < 20; i++) {
      // The source changes under the runs too: new notes and touched parents.
      if (i % 5 === 4) {
        const it = api.items[(i * 7) % api.items.length]!;
        api.addNotes(it.id, 3);
        api.touch([it.id]);
      }
      const r = await run(['sync', '--config', path.join(work, 'routiq.yaml')], env, killAt());
      if (r.signal === 'SIGKILL') killed++;
      else expect(r.code, r.stderr).toBe(0);
    }
    // Most runs are cut short (the exact number depends on machine load).
    expect(killed).toBeGreaterThanOrEqual(8);
    const final = await run(['sync', '--config', path.join(work, 'routiq.yaml'), '--json'], env);
    expect(final.code, final.stderr).toBe(0);

    const db = await openDatabase({ url: dbOpts.url, embeddedDir: dbOpts.embeddedDir || path.join(work, 'db') });
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
      const running = await db.query<{ n: string }>(
        "select count(*)::text as n from sync_runs where status = 'running'",
      );
      expect(running[0]?.n).toBe('0');
      const abandoned = await db.query<{ n: string }>(
        "select count(*)::text as n from sync_runs where status = 'abandoned'",
      );
      expect(Number(abandoned[0]?.n)).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });
});
