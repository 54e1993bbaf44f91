/**
 * Worker thread of the webhook latency bench (test/bench/service.ts): posts signed Chatwoot message_created
 * deliveries at a steady rate, open loop (each one at its scheduled time, whether or not earlier ones were
 * answered), and reports each send time and answer to the main thread in batches.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface LoadInput {
  /** `${serviceUrl}/webhooks/` */
  base: string;
  orgs: Array<{ id: string; accountId: number; secret: string }>;
  /** A real message_created body from the simulator; id, content, conversation and sender vary per event. */
  template: Record<string, unknown>;
  rate: number;
  seconds: number;
  conversationsPerOrg: number;
  firstId: number;
  /** Added to every conversation and contact id (a second load on conversations and contacts of its own). */
  conversationOffset?: number;
}

export interface Sent {
  n: number;
  org: string;
  externalId: string;
  /** Epoch ms (performance.timeOrigin + now: comparable across threads). */
  sentAt: number;
}
export interface Answered {
  n: number;
  /** HTTP status, 0 when the request failed. */
  status: number;
  answeredAt: number;
}

const now = () => performance.timeOrigin + performance.now();

/** Delivery n: its message id and signed request (id, content, conversation and contact vary with n). */
export function delivery(
  input: Pick<LoadInput, 'template' | 'orgs' | 'conversationsPerOrg' | 'firstId' | 'conversationOffset'>,
  n: number,
  org: LoadInput['orgs'][number],
): { id: number; text: string; headers: Record<string, string> } {
  const b = body(input, n, org);
  const ts = Math.floor(Date.now() / 1000);
  return {
    ...b,
    headers: {
      'content-type': 'application/json',
      'x-chatwoot-signature': `sha256=${createHmac('sha256', org.secret).update(`${ts}.${b.text}`).digest('hex')}`,
      'x-chatwoot-timestamp': String(ts),
      'x-chatwoot-delivery': `bench-${b.id}`,
    },
  };
}

function body(
  input: Pick<LoadInput, 'template' | 'orgs' | 'conversationsPerOrg' | 'firstId' | 'conversationOffset'>,
  n: number,
  org: LoadInput['orgs'][number],
): { id: number; text: string } {
  const id = input.firstId + n;
  const conv = 1 + (input.conversationOffset ?? 0) + (Math.floor(n / input.orgs.length) % input.conversationsPerOrg);
  const contact = 900_000 + conv;
  const t = structuredClone(input.template) as Record<string, any>;
  t.id = id;
  t.content = `bench message ${n}`;
  t.account = { ...t.account, id: org.accountId };
  t.sender = { ...t.sender, id: contact, account: { ...t.sender?.account, id: org.accountId } };
  t.conversation.id = conv;
  t.conversation.meta.sender = { ...t.conversation.meta.sender, id: contact };
  t.conversation.contact_inbox = { ...t.conversation.contact_inbox, contact_id: contact };
  t.conversation.messages = [
    { ...t.conversation.messages[0], id, content: t.content, conversation_id: conv, account_id: org.accountId },
  ];
  return { id, text: JSON.stringify(t) };
}

/**
 * Sends each delivery at its time over keep-alive connections. The load shares this machine's two cores with the
 * service it measures, so it does as little as it can while sending: every body is built and signed before the
 * first send (signatures stay valid: the window is minutes), and requests go through node:http rather than fetch.
 */
async function run(input: LoadInput): Promise<void> {
  const total = Math.round(input.rate * input.seconds);
  const prepared = Array.from({ length: total }, (_, n) => {
    const org = input.orgs[n % input.orgs.length]!;
    const d = delivery(input, n, org);
    return { org: org.id, id: String(d.id), body: Buffer.from(d.text), headers: d.headers };
  });
  const url = new URL(input.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const post = (d: (typeof prepared)[number]) =>
    new Promise<number>((resolve) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: `${url.pathname}${d.org}/chatwoot`,
          headers: { ...d.headers, 'content-length': String(d.body.length) },
          agent,
          // Bounded: an answer that never comes counts as a failure (status 0) instead of keeping the load running.
          timeout: 30_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end(d.body);
    });
  const start = now() + 200;
  const sent: Sent[] = [];
  const answered: Answered[] = [];
  const flush = () => {
    if (sent.length || answered.length) parentPort?.postMessage({ sent: sent.splice(0), answered: answered.splice(0) });
  };
  const flusher = setInterval(flush, 20);
  const pending = new Set<Promise<void>>();
  let n = 0;
  while (n < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * input.rate) + 1);
    for (; n < due; n++) {
      const d = prepared[n]!;
      const i = n;
      sent.push({ n, org: d.org, externalId: d.id, sentAt: now() });
      const p = post(d).then((status) => {
        answered.push({ n: i, status, answeredAt: now() });
      });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.allSettled([...pending]);
  agent.destroy();
  clearInterval(flusher);
  flush();
  parentPort?.postMessage({ done: true });
}

if (!isMainThread) void run(workerData as LoadInput);
