import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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
 */
export interface EmbeddedDb {
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startEmbedded(dataDir: string): Promise<EmbeddedDb> {
  const inMemory = dataDir.startsWith('memory://');
  let lockFile: string | undefined;
  if (!inMemory) {
    mkdirSync(path.dirname(path.resolve(dataDir)), { recursive: true });
    lockFile = `${path.resolve(dataDir)}.lock`;
    takeLock(lockFile, dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(inMemory ? undefined : dataDir);
  } catch (err) {
    if (lockFile) rmSync(lockFile, { force: true });
    throw new RoutiqError('RQ4001', `could not open the embedded database at ${dataDir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 });
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
      if (lockFile) rmSync(lockFile, { force: true });
    },
  };
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
  writeFileSync(lockFile, String(process.pid));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
