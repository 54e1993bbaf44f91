/**
 * Runs the three simulators in their own process for a demo or another test process:
 *   npx tsx examples/sandbox/src/main.ts --orgs 2 --seed 1 --scale 1 [--mutate-every 5000] [--chatwoot-port 4101 ...]
 * Prints one JSON document (urls and tenant credentials) on stdout, then serves until SIGINT/SIGTERM.
 * Drive it over HTTP: GET /__sandbox/snapshot, POST /__sandbox/mutate, POST /__sandbox/faults, GET /__sandbox/stats.
 */
import { parseArgs } from 'node:util';
import { startSandbox } from './sandbox.ts';

const { values } = parseArgs({
  options: {
    orgs: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    scale: { type: 'string', default: '1' },
    now: { type: 'string' },
    'mutate-every': { type: 'string' },
    'chatwoot-port': { type: 'string' },
    'cliniko-port': { type: 'string' },
    'manychat-port': { type: 'string' },
    'no-rate-limits': { type: 'boolean', default: false },
  },
});

const sandbox = await startSandbox({
  orgs: Number(values.orgs),
  seed: Number(values.seed),
  scale: Number(values.scale),
  ...(values.now ? { now: values.now } : {}),
  ports: {
    chatwoot: Number(values['chatwoot-port'] ?? 0),
    cliniko: Number(values['cliniko-port'] ?? 0),
    manychat: Number(values['manychat-port'] ?? 0),
  },
  disableRateLimits: values['no-rate-limits'] === true,
});

process.stdout.write(
  `${JSON.stringify({ chatwoot: sandbox.chatwoot.url, cliniko: sandbox.cliniko.url, manychat: sandbox.manychat.url, tenants: sandbox.tenants }, null, 2)}\n`,
);

let timer: NodeJS.Timeout | undefined;
if (values['mutate-every']) {
  const every = Number(values['mutate-every']);
  timer = setInterval(() => {
    const s = sandbox.mutate(1);
    process.stderr.write(
      `mutate step ${s.chatwoot.step}: chatwoot ${s.chatwoot.actions.length}, cliniko ${s.cliniko.actions.length}, manychat ${s.manychat.actions.length}\n`,
    );
  }, every);
}

const stop = async () => {
  if (timer) clearInterval(timer);
  await sandbox.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
