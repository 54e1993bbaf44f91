/**
 * The bundled simulators as workbench targets (development installs only: @routiq/sandbox is a dev dependency).
 * Each starts on loopback with fixed credentials and a fixed dataset, and says how to connect to it.
 */
import { startCalendly, startChatwoot, startCliniko, startManyChat } from '@routiq/sandbox';

export interface SimulatorTarget {
  label: string;
  config: Record<string, unknown>;
  /** Secret setting → value (handed to the connection as `${ENV}` references). */
  secrets: Record<string, string>;
  /** Partitions of webhook-fed streams (a simulator knows ids that only a push would tell a real connection). */
  partitions?: Record<string, Array<{ partition: string; parent: unknown }>>;
  close(): Promise<void>;
}

const NOW = '2026-11-01T00:00:00Z';
const SEED = 7;

type Start = () => Promise<SimulatorTarget>;

export const SIMULATORS: Record<string, Start> = {
  async calendly() {
    const token = 'workbench-calendly-token';
    const sim = await startCalendly({ orgs: [{ token }], seed: SEED, scale: 1, now: NOW });
    return {
      label: `Calendly simulator ${sim.url} (seed ${SEED})`,
      config: { base_url: sim.url, organization: sim.snapshot().orgs[0]?.organization },
      secrets: { api_token: token },
      close: () => sim.close(),
    };
  },
  async chatwoot() {
    const token = 'workbench-chatwoot-token';
    const sim = await startChatwoot({ accounts: [{ accountId: 1, token }], seed: SEED, scale: 1, now: NOW });
    return {
      label: `Chatwoot simulator ${sim.url} (seed ${SEED})`,
      config: { base_url: sim.url, account_id: 1 },
      secrets: { api_token: token },
      close: () => sim.close(),
    };
  },
  async cliniko() {
    const apiKey = 'workbench-cliniko-key-au1';
    const sim = await startCliniko({ users: [{ apiKey }], seed: SEED, scale: 1, now: NOW });
    return {
      label: `Cliniko simulator ${sim.url} (seed ${SEED})`,
      config: { base_url: sim.url, contact_email: 'workbench@routiq.example' },
      secrets: { api_key: apiKey },
      close: () => sim.close(),
    };
  },
  async manychat() {
    const pageId = '100000000000001';
    const token = `${pageId}:${'ab12'.repeat(8)}`;
    const sim = await startManyChat({ pages: [{ pageId, token }], seed: SEED, scale: 1, now: NOW });
    const subs = sim.snapshot().pages[0]?.subscribers ?? [];
    return {
      label: `ManyChat simulator ${sim.url} (seed ${SEED})`,
      config: { base_url: sim.url },
      secrets: { api_key: token },
      partitions: {
        subscribers: subs
          .slice(0, 5)
          .map((s) => ({ partition: String(s.id), parent: { subscriber_id: String(s.id) } })),
      },
      close: () => sim.close(),
    };
  },
};
