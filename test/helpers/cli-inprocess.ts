import { Readable } from 'node:stream';
import { main } from '@routiq/cli';
import { CLI_UNSET_ENV, type Result } from './cli-process.ts';

/**
 * `routiq <args>` run in this process through the CLI's own entry (cli/src/main.ts), stdout and stderr captured: the
 * same argument parsing, config loading, command code and database open/close as a child process, without paying a
 * Node start-up and the loading of MikroORM, PGlite … (about 1 s of CPU) per command. Exit codes and stdout/stderr of
 * a real process stay covered by child processes (test/helpers/cli-process.ts), at least one per command family.
 *
 * As a child process started by routiqAtRoot: the variables of CLI_UNSET_ENV are unset unless
 * `env` sets them (restored afterwards), stdout and stdin are not terminals, and stdin holds `opts.stdin` (else
 * nothing). Calls run one at a time: the streams and the environment are process-wide.
 */

let previous: Promise<unknown> = Promise.resolve();

export function routiqInProcess(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { stdin?: string } = {},
): Promise<Result> {
  const run = previous.then(() => runOnce(args, env, opts.stdin ?? ''));
  previous = run.catch(() => {});
  return run;
}

type Write = typeof process.stdout.write;

function capture(stream: NodeJS.WriteStream, sink: (s: string) => void): () => void {
  const write = stream.write;
  const isTTY = Object.getOwnPropertyDescriptor(stream, 'isTTY');
  stream.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') queueMicrotask(() => done());
    return true;
  }) as Write;
  Object.defineProperty(stream, 'isTTY', { value: false, configurable: true, writable: true });
  return () => {
    stream.write = write;
    if (isTTY) Object.defineProperty(stream, 'isTTY', isTTY);
    else delete (stream as { isTTY?: boolean }).isTTY;
  };
}

async function runOnce(args: string[], env: NodeJS.ProcessEnv, input: string): Promise<Result> {
  const keys = [...new Set([...CLI_UNSET_ENV, ...Object.keys(env)])];
  const saved = new Map(keys.map((k) => [k, process.env[k]]));
  for (const k of CLI_UNSET_ENV) delete process.env[k];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  // A piped stdin of its own (process.stdin is a configurable getter); a Readable is never a terminal.
  const stdin = Object.getOwnPropertyDescriptor(process, 'stdin');
  Object.defineProperty(process, 'stdin', {
    value: Readable.from(input ? [Buffer.from(input)] : []),
    configurable: true,
    writable: true,
  });
  let stdout = '';
  let stderr = '';
  const restoreOut = capture(process.stdout, (s) => {
    stdout += s;
  });
  const restoreErr = capture(process.stderr, (s) => {
    stderr += s;
  });
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    restoreErr();
    restoreOut();
    if (stdin) Object.defineProperty(process, 'stdin', stdin);
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
