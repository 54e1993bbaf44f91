/**
 * The bench's simulators in a process of their own, so the sync's CPU and RSS figures are the runner's alone:
 *   node --import tsx test/bench/sims.ts <chatwoot scale> <cliniko scale>
 * Prints {"chatwoot": url, "cliniko": url} on stdout and serves until stdin closes (the parent exits or ends it).
 */
import { startChatwoot, startCliniko } from '@routiq/sandbox';

const [cwScale, clScale] = process.argv.slice(2).map(Number);
const cw = await startChatwoot({
  accounts: [{ accountId: 1, token: 'tok' }],
  seed: 21,
  scale: cwScale ?? 1,
  rateLimit: { perIp: { enabled: false }, contactSearch: { enabled: false } },
});
const cl = await startCliniko({
  users: [{ apiKey: 'b-au1' }],
  seed: 21,
  scale: clScale ?? 1,
  rateLimit: { enabled: false },
});
process.stdout.write(`${JSON.stringify({ chatwoot: cw.url, cliniko: cl.url })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void Promise.all([cw.close(), cl.close()]).then(() => process.exit(0));
});
