import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A throw-away PostgreSQL server of our own (initdb into a temp dir, a free port), so a test can restart it
 * mid-sync without disturbing the shared CI server that other test files use. Needs the Debian PostgreSQL 15
 * binaries and root (to run them as the postgres user); `available()` says whether this machine can.
 */
const BIN = '/usr/lib/postgresql/15/bin';

export function privatePgAvailable(): boolean {
  return existsSync(path.join(BIN, 'pg_ctl')) && process.getuid?.() === 0;
}

function asPostgres(cmd: string, args: string[]): string {
  return execFileSync('runuser', ['-u', 'postgres', '--', path.join(BIN, cmd), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface PrivatePg {
  url: string;
  restart(): void;
  stop(): void;
}

/**
 * Ports below Linux's ephemeral range (32768–60999): a port drawn from inside it could be held by one of the
 * suite's own client connections (seen once: "could not bind … Address already in use"). A start that still finds
 * its port taken is retried on another.
 */
const randomPort = () => 20_000 + Math.floor(Math.random() * 12_000);

export function startPrivatePg(): PrivatePg {
  const dir = mkdtempSync(path.join(tmpdir(), 'routiq-pg-'));
  chownSync(dir, uidOf('postgres'), gidOf('postgres'));
  const data = path.join(dir, 'data');
  asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  let port = randomPort();
  let opts = '';
  for (let attempt = 1; ; attempt++) {
    opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    try {
      asPostgres('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
      break;
    } catch (err) {
      const log = readFileSync(path.join(dir, 'log'), 'utf8');
      if (attempt >= 5 || !/Address already in use/.test(log)) throw err;
      port = randomPort();
    }
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    restart: () =>
      asPostgres('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-m', 'fast', '-w', 'restart']),
    stop: () => {
      try {
        asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
    },
  };
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
