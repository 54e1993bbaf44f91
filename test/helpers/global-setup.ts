import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, openDatabase } from '@routiq/runner';
import { EMBEDDED_TEMPLATE_ENV } from './db.ts';

/**
 * vitest globalSetup: the embedded database's initdb (PGlite, PostgreSQL in WASM) costs seconds of CPU, and every
 * test file opens one or two embedded databases. It runs once here, into two template data directories (blank, and
 * migrated by the real migrations); test databases are copies of them (test/helpers/db.ts).
 */
export async function setup(): Promise<() => void> {
  const root = mkdtempSync(path.join(tmpdir(), 'routiq-template-'));
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
  process.env[EMBEDDED_TEMPLATE_ENV] = root;
  return () => rmSync(root, { recursive: true, force: true });
}
