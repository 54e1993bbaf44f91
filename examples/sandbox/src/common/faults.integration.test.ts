import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChatwootSim, startChatwoot } from '../chatwoot/server.ts';
import { type ClinikoSim, startCliniko } from '../cliniko/server.ts';
import { type ManyChatSim, startManyChat } from '../manychat/server.ts';
import type { FaultKind } from '../types.ts';

const NOW = '2025-11-24T00:00:00Z';
const CW = { accountId: 3, token: 'tok-faults-0000000000000' };
const CL_KEY = 'MS0xLWZhdWx0cw-au1';
const PAGE = '104729384756123';
const MC_TOKEN = `${PAGE}:0123456789abcdef0123456789abcdef`;
const CL_HEADERS = {
  authorization: `Basic ${Buffer.from(`${CL_KEY}:`).toString('base64')}`,
  'user-agent': 'fault tests (dev@routiq.example)',
};

let cw: ChatwootSim;
let cl: ClinikoSim;
let mc: ManyChatSim;
const cwGet = (path = '/api/v1/accounts/3/conversations', signal?: AbortSignal) =>
  fetch(`${cw.url}${path}`, { headers: { api_access_token: CW.token }, ...(signal ? { signal } : {}) });

beforeAll(async () => {
  [cw, cl, mc] = await Promise.all([
    startChatwoot({ seed: 1, now: NOW, accounts: [CW], faults: { timeoutHoldMs: 2000 } }),
    startCliniko({ seed: 1, now: NOW, users: [{ apiKey: CL_KEY }] }),
    startManyChat({ seed: 1, now: NOW, pages: [{ pageId: PAGE, token: MC_TOKEN }] }),
  ]);
});
afterAll(async () => {
  await Promise.all([cw.close(), cl.close(), mc.close()]);
});

describe('fault injection', () => {
  it('5xx: 500/502/503 in the platform style', async () => {
    cw.faults.queue(['5xx', '5xx', '5xx', '5xx', '5xx', '5xx']);
    const statuses = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r = await cwGet();
      statuses.add(r.status);
      const body = await r.text();
      if (r.status === 502) expect(body).toContain('502 Bad Gateway');
      if (r.status === 500) expect(JSON.parse(body)).toEqual({ status: 500, error: 'Internal Server Error' });
    }
    for (const s of statuses) expect([500, 502, 503]).toContain(s);
    expect((await cwGet()).status).toBe(200);
  });

  it('429: each platform answers exactly like its real limiter', async () => {
    cw.faults.queue(['429']);
    const a = await cwGet();
    expect(a.status).toBe(429);
    expect(a.headers.get('content-type')).toBe('text/plain');
    expect(await a.text()).toBe('Retry later\n');

    cl.faults.queue(['429']);
    const b = await fetch(`${cl.url}/patients`, { headers: CL_HEADERS });
    expect(b.status).toBe(429);
    expect(Number(b.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 1);

    mc.faults.queue(['429']);
    const c = await fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } });
    expect(c.status).toBe(429);
    expect(((await c.json()) as { status: string }).status).toBe('error');
    expect(cw.stats.rateLimited).toBeGreaterThanOrEqual(1);
  });

  it('reset: the connection dies without a response', async () => {
    cw.faults.queue(['reset']);
    await expect(cwGet()).rejects.toThrow();
    expect(cw.stats.byStatus.reset).toBe(1);
  });

  it('timeout: no answer until the client gives up', async () => {
    cw.faults.queue(['timeout']);
    const started = Date.now();
    await expect(cwGet(undefined, AbortSignal.timeout(300))).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(cw.stats.byStatus.timeout).toBe(1);
  });

  it('truncated: full Content-Length, half a body, and the write still happened', async () => {
    cw.faults.queue(['truncated']);
    await expect(cwGet().then((r) => r.json())).rejects.toThrow();

    const patient = cl.snapshot().users[0]!.patients.find((p) => p.archived_at === null && p.deleted_at === null)!;
    cl.faults.queue(['truncated']);
    const r = await fetch(`${cl.url}/patients/${patient.id}/archive`, { method: 'POST', headers: CL_HEADERS }).catch(
      (e: unknown) => e,
    );
    void r;
    const after = cl.snapshot().users[0]!.patients.find((p) => p.id === patient.id)!;
    expect(after.archived_at).not.toBeNull();
  });

  it('random faults are deterministic for a seed and honour rate and kinds', async () => {
    const run = async (seed: number) => {
      cw.faults.set({ rate: 0.5, kinds: ['5xx', '429'], seed });
      const out: number[] = [];
      for (let i = 0; i < 16; i++) {
        const res = await cwGet();
        out.push(res.status);
        await res.arrayBuffer();
      }
      cw.faults.clear();
      return out;
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.some((s) => s === 200)).toBe(true);
    expect(a.some((s) => s !== 200)).toBe(true);
    for (const s of a) expect([200, 429, 500, 502, 503]).toContain(s);
  });

  it('is driven over HTTP too: POST /__sandbox/faults with {queue} or a FaultConfig', async () => {
    await fetch(`${mc.origin}/__sandbox/stats/reset`, { method: 'POST' });
    const queue: FaultKind[] = ['5xx', '429'];
    const set = await fetch(`${mc.origin}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ queue }) });
    expect(((await set.json()) as { queued: string[] }).queued).toEqual(queue);
    const s1 = await fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } });
    const s2 = await fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } });
    const s3 = await fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } });
    expect([s1.status >= 500, s2.status, s3.status]).toEqual([true, 429, 200]);
    const cfg = await fetch(`${mc.origin}/__sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ rate: 1, kinds: ['reset'] }),
    });
    expect(((await cfg.json()) as { rate: number }).rate).toBe(1);
    await expect(
      fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } }),
    ).rejects.toThrow();
    await fetch(`${mc.origin}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ clear: true }) });
    expect(
      (await fetch(`${mc.url}/fb/page/getInfo`, { headers: { authorization: `Bearer ${MC_TOKEN}` } })).status,
    ).toBe(200);
    const stats = (await (await fetch(`${mc.origin}/__sandbox/stats`)).json()) as { faults: Record<string, number> };
    expect(stats.faults).toMatchObject({ '5xx': 1, '429': 1, reset: 1 });
  });
});
