import { describe, expect, it } from 'vitest';
import { closeAll, startSandbox } from './index.ts';
import { portless } from './test-utils.ts';

type Json = Record<string, any>;

describe('startSandbox', () => {
  it('starts all three with deterministic tenants whose people overlap across platforms', async () => {
    const sb = await startSandbox({ seed: 3, orgs: 2, now: '2025-11-24T00:00:00Z' });
    const again = await startSandbox({ seed: 3, orgs: 2, now: '2025-11-24T00:00:00Z' });
    try {
      expect(sb.tenants).toHaveLength(2);
      const strip = (t: (typeof sb.tenants)[number]) => ({
        ...t,
        chatwoot: { ...t.chatwoot, baseUrl: '' },
        cliniko: { ...t.cliniko, baseUrl: '' },
        manychat: { ...t.manychat, baseUrl: '' },
      });
      expect(sb.tenants.map(strip)).toEqual(again.tenants.map(strip));
      const t = sb.tenants[1]!;
      expect(t.cliniko.baseUrl.endsWith('/v1')).toBe(true);
      expect(t.manychat.token).toMatch(new RegExp(`^${t.manychat.pageId}:[0-9a-f]{32}$`));

      // Chatwoot contacts of tenant 1 that carry cliniko_patient_id point at patients of Cliniko user 1.
      const contacts: Json[] = [];
      for (let page = 1; ; page++) {
        const r = await fetch(`${t.chatwoot.baseUrl}/api/v1/accounts/${t.chatwoot.accountId}/contacts?page=${page}`, {
          headers: { api_access_token: t.chatwoot.token },
        });
        const body = (await r.json()) as Json;
        contacts.push(...body.payload);
        if (body.payload.length < 15) break;
      }
      const linked = contacts.filter((c) => c.custom_attributes.cliniko_patient_id);
      expect(linked.length).toBeGreaterThan(0);
      const h = {
        authorization: `Basic ${Buffer.from(`${t.cliniko.apiKey}:`).toString('base64')}`,
        'user-agent': 'sandbox test (dev@routiq.example)',
      };
      for (const c of linked.slice(0, 3)) {
        const r = await fetch(`${t.cliniko.baseUrl}/patients/${c.custom_attributes.cliniko_patient_id}`, {
          headers: h,
        });
        expect([200, 404]).toContain(r.status);
      }
      const ids = new Set(sb.cliniko.snapshot().users[1]!.patients.map((p) => p.id));
      expect(linked.every((c) => ids.has(c.custom_attributes.cliniko_patient_id))).toBe(true);

      // The same phone shows up on several platforms in each platform's own format.
      const mcPhones = new Set(
        sb.manychat
          .snapshot()
          .pages[1]!.subscribers.map((s) => s.whatsapp_phone ?? s.phone)
          .filter(Boolean),
      );
      expect(contacts.some((c) => mcPhones.has(c.phone_number))).toBe(true);

      const m = sb.mutate(3);
      again.mutate(3);
      expect(m.chatwoot.step).toBe(3);
      expect(portless(sb.cliniko.snapshot(), sb.cliniko.origin)).toEqual(
        portless(again.cliniko.snapshot(), again.cliniko.origin),
      );

      const viaHttp = (await (
        await fetch(`${sb.chatwoot.origin}/__sandbox/mutate`, { method: 'POST', body: '{"steps":2}' })
      ).json()) as Json;
      expect(viaHttp.step).toBe(5);
      const snap = (await (await fetch(`${sb.cliniko.origin}/__sandbox/snapshot`)).json()) as Json;
      expect(snap.users).toHaveLength(2);
      // The shared control routes (common/server.ts) serve every simulator: steps from the query or the body (1 if neither).
      for (const sim of [sb.cliniko, sb.manychat, sb.chatwoot]) {
        const before = JSON.stringify(sim.snapshot());
        const one = await fetch(`${sim.origin}/__sandbox/mutate?steps=1`, { method: 'POST' });
        expect(one.status).toBe(200);
        expect((await fetch(`${sim.origin}/__sandbox/mutate`, { method: 'POST' })).status).toBe(200);
        expect(JSON.stringify(sim.snapshot())).not.toBe(before);
        const got = (await (await fetch(`${sim.origin}/__sandbox/snapshot`)).json()) as Json;
        expect(got).toEqual(JSON.parse(JSON.stringify(sim.snapshot())));
        const bad = await fetch(`${sim.origin}/__sandbox/mutate`, { method: 'POST', body: '{not json' });
        expect(bad.status).toBe(400);
      }
    } finally {
      await closeAll();
    }
    await expect(fetch(`${sb.chatwoot.url}/api/v1/profile`)).rejects.toThrow();
  });
});
