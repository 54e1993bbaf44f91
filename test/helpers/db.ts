import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, migrate, openDatabase } from '@routiq/runner';
import pg from 'pg';

/**
 * Test databases. Every test file gets its own database: a fresh embedded one (PGlite), and (when the
 * PostgreSQL server of the CI machine is reachable) a freshly created database on it, dropped afterwards.
 */
export const PG_ADMIN_URL =
  process.env.ROUTIQ_TEST_PG_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

let reachable: boolean | undefined;
export async function postgresReachable(): Promise<boolean> {
  if (reachable !== undefined) return reachable;
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1500 });
  try {
    await c.connect();
    await c.query('select 1');
    reachable = true;
  } catch {
    reachable = false;
  } finally {
    await c.end().catch(() => {});
  }
  return reachable;
}

/** The backends to run a suite against: always 'embedded', plus 'postgres' when reachable. */
export async function backends(): Promise<Array<'embedded' | 'postgres'>> {
  return (await postgresReachable()) ? ['embedded', 'postgres'] : ['embedded'];
}

export interface TestDb {
  db: Database;
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * Create a database of the given kind: empty, or (embedded with `migrated`) already migrated. An embedded
 * database lives in `dir`, else in a temporary directory removed by drop().
 */
export async function createTestDatabase(
  kind: 'embedded' | 'postgres',
  opts: { dir?: string; migrated?: boolean } = {},
): Promise<{ url: string | undefined; embeddedDir: string; drop(): Promise<void> }> {
  if (kind === 'embedded') return embeddedDatabase(opts.dir, opts.migrated);
  const name = `routiq_t_${randomBytes(6).toString('hex')}`;
  // Migrated: a copy of the run's migrated template database (global-setup.ts), as the embedded ones are.
  const template = opts.migrated ? process.env[PG_TEMPLATE_ENV] : undefined;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    embeddedDir: '',
    async drop() {
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export async function openTestDb(kind: 'embedded' | 'postgres', opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const target = await createTestDatabase(kind, { migrated: opts.migrate !== false });
  const db = await openDatabase({ url: target.url, embeddedDir: target.embeddedDir });
  if (opts.migrate !== false) await migrate(db);
  return {
    db,
    url: target.url,
    async drop() {
      await db.close();
      await target.drop();
    },
  };
}

/** Set by test/helpers/global-setup.ts: a directory holding the blank and migrated embedded data directories. */
export const EMBEDDED_TEMPLATE_ENV = 'ROUTIQ_TEST_EMBEDDED_TEMPLATE';
/** Set by test/helpers/global-setup.ts: the name of a migrated database on the PostgreSQL server to copy. */
export const PG_TEMPLATE_ENV = 'ROUTIQ_TEST_PG_TEMPLATE';

/**
 * Where test databases and the directories holding one go: /dev/shm (tmpfs) when it has room, else the system's
 * temporary directory. An embedded data directory is ~40 MB in ~1,100 files: copying and removing one on ext4 took
 * 2 s of a worker's wall time and 0.3-0.5 s CPU, on tmpfs 0.25 s and 0.13 s (the journal, write-back and fsyncs are
 * what it saves; nothing a test checks depends on the file system). Room: a small /dev/shm (64 MB in a default
 * Docker container) would fill up. ROUTIQ_TEST_TMP chooses another directory.
 */
export const TEST_TMP: string = (() => {
  if (process.env.ROUTIQ_TEST_TMP) return process.env.ROUTIQ_TEST_TMP;
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize >= 2 * 1024 ** 3) return '/dev/shm';
  } catch {
    // not Linux, or no /dev/shm
  }
  return tmpdir();
})();

/** mkdtemp in TEST_TMP: a directory for a test's files and its embedded database. */
export function testTmpDir(prefix: string): string {
  return mkdtempSync(path.join(TEST_TMP, prefix));
}

/**
 * A fresh embedded database. Under vitest it is a copy of a template data directory (test/helpers/global-setup.ts:
 * initdb costs seconds of CPU per database); without a template (a helper used by a script), PGlite runs initdb, in
 * `dir` or in memory.
 */
function embeddedDatabase(dir: string | undefined, migrated = false) {
  const root = process.env[EMBEDDED_TEMPLATE_ENV];
  const template = root ? path.join(root, migrated ? 'migrated' : 'blank') : undefined;
  if (!template || !existsSync(template))
    return { url: undefined, embeddedDir: dir ?? 'memory://', drop: async () => {} };
  const own = dir === undefined;
  const target = dir ?? path.join(testTmpDir('routiq-testdb-'), 'db');
  if (!existsSync(target)) cpSync(template, target, { recursive: true });
  return {
    url: undefined,
    embeddedDir: target,
    async drop() {
      if (own) rmSync(path.dirname(target), { recursive: true, force: true });
    },
  };
}
