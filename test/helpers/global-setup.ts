import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { migrate, openDatabase } from '@routiq/runner';
import pg from 'pg';
import { EMBEDDED_TEMPLATE_ENV, PG_ADMIN_URL, PG_TEMPLATE_ENV, postgresReachable } from './db.ts';

/**
 * vitest globalSetup: the embedded database's initdb (PGlite, PostgreSQL in WASM) costs seconds of CPU, and every
 * test file opens one or two embedded databases. It runs once into two template data directories (blank, and
 * migrated by the real migrations); test databases are copies of them (test/helpers/db.ts). The templates are kept
 * in node_modules/.cache, keyed by the PGlite version and the migrations' sources, so later runs (the soak tier
 * after `npm test`, the next `npm test`) skip even that.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const MIGRATIONS = path.join(ROOT, 'migrations');

function templateKey(): string {
  const h = createHash('sha256');
  // The installed PGlite (its data directory format), wherever npm placed it.
  const entry = createRequire(path.join(ROOT, 'runner/package.json')).resolve('@electric-sql/pglite');
  let dir = path.dirname(entry);
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  const pglite = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  h.update(`pglite ${pglite.version}\n`);
  for (const f of readdirSync(MIGRATIONS)
    .filter((f) => f.endsWith('.ts'))
    .sort())
    h.update(`${f}\n`).update(readFileSync(path.join(MIGRATIONS, f)));
  return h.digest('hex').slice(0, 16);
}

async function buildTemplate(root: string): Promise<void> {
  const blank = path.join(root, 'blank');
  const migrated = path.join(root, 'migrated');
  // Opening an empty directory runs initdb; closing leaves a clean data directory that copies open quickly.
  await (await openDatabase({ embeddedDir: blank })).close();
  cpSync(blank, migrated, { recursive: true });
  const db = await openDatabase({ embeddedDir: migrated });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
}

export async function setup(): Promise<void> {
  const cache = path.join(ROOT, 'node_modules/.cache/routiq-test-db');
  const root = path.join(cache, templateKey());
  if (!existsSync(root)) {
    mkdirSync(cache, { recursive: true });
    const building = mkdtempSync(path.join(cache, 'building-'));
    try {
      await buildTemplate(building);
      // Atomic: a run started at the same time either sees no template or a complete one.
      renameSync(building, root);
    } catch (err) {
      rmSync(building, { recursive: true, force: true });
      // Another run finished the same template first: use it.
      if (!existsSync(root)) throw err;
    }
  }
  process.env[EMBEDDED_TEMPLATE_ENV] = root;
  if (await postgresReachable()) process.env[PG_TEMPLATE_ENV] = await postgresTemplate(templateKey());
  // Templates of older migrations (or abandoned builds), once no run started within the hour can still copy them.
  for (const name of readdirSync(cache)) {
    const dir = path.join(cache, name);
    if (dir !== root && Date.now() - statSync(dir).mtimeMs > 3600_000) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same for the PostgreSQL server: one database migrated by the real migrations, named by the same key, that
 * migrated test databases are created from (`create database … template`: a file copy, where migrating each one
 * took ~1.3 s). Built once per key under an advisory lock (runs may start together), kept for the next run;
 * templates of other keys are dropped when nobody uses them.
 */
async function postgresTemplate(key: string): Promise<string> {
  const name = `routiq_tpl_${key}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query('select pg_advisory_lock(hashtext($1))', ['routiq test template']);
    const exists = async (n: string) =>
      (await admin.query('select 1 from pg_database where datname = $1', [n])).rowCount === 1;
    if (!(await exists(name))) {
      const building = `${name}_building`;
      await admin.query(`drop database if exists ${building} with (force)`);
      await admin.query(`create database ${building}`);
      const u = new URL(PG_ADMIN_URL);
      u.pathname = `/${building}`;
      const db = await openDatabase({ url: u.toString() });
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
      // Complete or absent: a template is only ever seen migrated.
      await admin.query(`alter database ${building} rename to ${name}`);
    }
    const old = await admin.query<{ datname: string }>(
      "select datname from pg_database where datname like 'routiq\\_tpl\\_%' and datname <> $1",
      [name],
    );
    // Without force: a template another run is copying from right now stays (its turn comes next time).
    for (const { datname } of old.rows) await admin.query(`drop database if exists ${datname}`).catch(() => undefined);
    return name;
  } finally {
    await admin.query('select pg_advisory_unlock(hashtext($1))', ['routiq test template']).catch(() => undefined);
    await admin.end();
  }
}
