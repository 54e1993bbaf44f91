import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { RoutiqError } from '../errors/registry.ts';

/**
 * The zero-setup database: PGlite (PostgreSQL compiled to WASM) in this process, exposed on a loopback
 * socket so MikroORM talks to it with the ordinary `pg` driver, exactly as to a real server.
 *
 * Design around the pglite-socket caveats (docs/database.md):
 * - one backend behind a queue: we allow ONE connection and the pool is sized 1, so extended-protocol
 *   messages of two clients can never interleave and an open transaction cannot stall a second client;
 * - COPY FROM STDIN wedges the server: the engine never uses it (multi-row INSERT … ON CONFLICT instead);
 * - one process per data directory: a lock file refuses a second process with a clear error.
 * The data directory holds patient data: it is 0700 and its files 0600 whatever the umask (PGlite creates files
 * 0666 & ~umask), including a directory made by an earlier version.
 */
export interface EmbeddedDb {
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * `maxConnections`: the ORM's one connection plus any other client of the same process (pg-boss in `routiq serve`).
 * PGlite has one backend: connections take turns per transaction (docs/database.md).
 */
export async function startEmbedded(dataDir: string, maxConnections = 1): Promise<EmbeddedDb> {
  const inMemory = dataDir.startsWith('memory://');
  let lockFile: string | undefined;
  const dir = inMemory ? undefined : path.resolve(dataDir);
  if (dir) {
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
    lockFile = `${dir}.lock`;
    takeLock(lockFile, dataDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  lazyWasmTierUp();
  let db: PGlite;
  // initdb writes most files during create(): a private umask makes them private from the first byte.
  const umask = dir ? process.umask(0o077) : undefined;
  try {
    db = await PGlite.create(dir);
  } catch (err) {
    if (lockFile) rmSync(lockFile, { force: true });
    throw new RoutiqError('RQ4001', `could not open the embedded database at ${dataDir}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    if (umask !== undefined) process.umask(umask);
  }
  // Files from before this version, or written with another umask: tightened now and again on close.
  if (dir) makePrivate(dir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
  await server.start();
  const url = `postgresql://postgres@${server.getServerConn()}/postgres`;
  let closed = false;
  return {
    url,
    dataDir,
    async close() {
      if (closed) return;
      closed = true;
      await server.stop();
      await db.close();
      if (dir) makePrivate(dir);
      if (lockFile) rmSync(lockFile, { force: true });
    },
  };
}

/**
 * V8 runs PGlite's WASM with its baseline compiler and re-compiles functions it sees as hot with the optimizing one,
 * on background threads. PostgreSQL's start-up code runs once per open, yet under the default budget it counts as
 * hot: a one-shot command (`routiq status`) spent about a third of its CPU optimizing code it never ran again (2.8 →
 * 2.1 s CPU with a 100× budget; PGlite's open alone 0.65 → 0.41 s). What a long-running process keeps executing
 * (serve, a large sync) still gets optimized. Process-wide, set once, and not over a budget given on the command line.
 */
let tierUpSet = false;
function lazyWasmTierUp(): void {
  if (tierUpSet) return;
  tierUpSet = true;
  if (!process.execArgv.some((a) => a.includes('wasm-tiering-budget')))
    setFlagsFromString('--wasm-tiering-budget=180000000');
}

/** Directories 0700, files 0600, below and including `dir`. */
export function makePrivate(dir: string): void {
  chmodSync(dir, 0o700);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) makePrivate(p);
    else if (e.isFile()) chmodSync(p, 0o600);
  }
}

function takeLock(lockFile: string, dataDir: string): void {
  if (existsSync(lockFile)) {
    const pid = Number(readFileSync(lockFile, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new RoutiqError('RQ4004', `the embedded database ${dataDir} is in use by process ${pid}`, {
        where: lockFile,
      });
    }
    // A stale lock from a process that died (e.g. SIGKILL): PGlite recovers the directory on open.
  }
  writeFileSync(lockFile, String(process.pid), { mode: 0o600 });
  chmodSync(lockFile, 0o600);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
