/** All three simulators with `orgs` demo tenants whose credentials are deterministic. */

import { type ChatwootSim, startChatwoot } from './chatwoot/server.ts';
import { type ClinikoSim, startCliniko } from './cliniko/server.ts';
import { rngFor } from './common/prng.ts';
import { type ManyChatSim, startManyChat } from './manychat/server.ts';
import type { FaultConfig } from './types.ts';

export interface SandboxOptions {
  seed?: number;
  scale?: number;
  /** Number of demo organizations (tenants). Default 1. */
  orgs?: number;
  now?: number | Date | string;
  ports?: { chatwoot?: number; cliniko?: number; manychat?: number };
  faults?: FaultConfig;
  /** Turn every rate limiter off (handy for demos hammering the sims). Default false. */
  disableRateLimits?: boolean;
}

export interface SandboxTenant {
  index: number;
  chatwoot: { baseUrl: string; accountId: number; token: string; webhookSecret: string };
  cliniko: { baseUrl: string; apiKey: string };
  manychat: { baseUrl: string; pageId: string; token: string };
}

export interface Sandbox {
  chatwoot: ChatwootSim;
  cliniko: ClinikoSim;
  manychat: ManyChatSim;
  tenants: SandboxTenant[];
  /** Mutates all three (same number of steps each). */
  mutate(steps?: number): {
    chatwoot: ReturnType<ChatwootSim['mutate']>;
    cliniko: ReturnType<ClinikoSim['mutate']>;
    manychat: ReturnType<ManyChatSim['mutate']>;
  };
  close(): Promise<void>;
}

/** Credentials of tenant i for a seed: stable across runs, so configs can be written down. */
export function sandboxCredentials(seed: number, i: number) {
  const rng = rngFor(seed, 'sandbox-tenant', i);
  const pageId = String(100_000_000_000_000 + rng.int(0, 899_999_999) * 100_000 + rng.int(0, 99_999));
  return {
    chatwoot: { accountId: 101 + i, token: rng.base58(24), webhookSecret: rng.base58(24) },
    cliniko: {
      apiKey: `${Buffer.from(`${i + 1}-${rng.digits(12)}-${rng.hex(24)}`)
        .toString('base64')
        .replace(/=+$/, '')}-au1`,
    },
    manychat: { pageId, token: `${pageId}:${rng.hex(32)}` },
  };
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const seed = opts.seed ?? 1;
  const scale = opts.scale ?? 1;
  const orgs = opts.orgs ?? 1;
  if (!Number.isInteger(orgs) || orgs < 1) throw new Error('orgs must be a positive integer');
  const creds = Array.from({ length: orgs }, (_, i) => sandboxCredentials(seed, i));
  const common = {
    seed,
    scale,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
    ...(opts.faults ? { faults: opts.faults } : {}),
  };
  const off = opts.disableRateLimits === true;
  const [chatwoot, cliniko, manychat] = await Promise.all([
    startChatwoot({
      ...common,
      port: opts.ports?.chatwoot ?? 0,
      accounts: creds.map((c) => ({
        accountId: c.chatwoot.accountId,
        token: c.chatwoot.token,
        webhookSecret: c.chatwoot.webhookSecret,
      })),
      ...(off ? { rateLimit: { perIp: { enabled: false }, contactSearch: { enabled: false } } } : {}),
    }),
    startCliniko({
      ...common,
      port: opts.ports?.cliniko ?? 0,
      users: creds.map((c) => ({ apiKey: c.cliniko.apiKey })),
      ...(off ? { rateLimit: { enabled: false } } : {}),
    }),
    startManyChat({
      ...common,
      port: opts.ports?.manychat ?? 0,
      pages: creds.map((c) => ({ pageId: c.manychat.pageId, token: c.manychat.token })),
      ...(off ? { rateLimit: { enabled: false } } : {}),
    }),
  ]);
  const tenants: SandboxTenant[] = creds.map((c, index) => ({
    index,
    chatwoot: { baseUrl: chatwoot.url, ...c.chatwoot },
    cliniko: { baseUrl: cliniko.url, ...c.cliniko },
    manychat: { baseUrl: manychat.url, ...c.manychat },
  }));
  return {
    chatwoot,
    cliniko,
    manychat,
    tenants,
    mutate: (steps = 1) => ({
      chatwoot: chatwoot.mutate(steps),
      cliniko: cliniko.mutate(steps),
      manychat: manychat.mutate(steps),
    }),
    close: async () => {
      await Promise.all([chatwoot.close(), cliniko.close(), manychat.close()]);
    },
  };
}
