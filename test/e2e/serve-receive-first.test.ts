import { type ChatwootSim, startChatwoot } from '@routiq/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delivery } from '../bench/service-load.ts';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService, until } from './serve-harness.ts';

/**
 * Issue #18: a webhook's answer never waits on processing. A batch is held in the middle of its write (another
 * session locks the messages table) and every delivery received meanwhile is still answered 202 — stored by the
 * inbox on its own connection, whatever the processing holds. PostgreSQL only: the embedded database has a single
 * connection, which a lock held elsewhere would take from the inbox too (docs/service.md).
 */
const ORG = { id: 'org_receive_first', account: 21, secret: 'whsec-receive-first' };
const kinds = (await backends()).filter((k) => k === 'postgres');

describe.each(kinds)('routiq serve answers webhooks while a batch is held mid-write (%s)', (kind) => {
  let sim: ChatwootSim;
  let svc: RunningService;
  let template: Record<string, unknown>;
  beforeAll(async () => {
    sim = await startChatwoot({
      accounts: [{ accountId: ORG.account, token: 't', webhookSecret: ORG.secret }],
      seed: 5,
      scale: 0.2,
    });
    sim.webhooks.subscribe(ORG.account, {
      url: 'http://127.0.0.1:9/closed',
      subscriptions: ['message_created'],
      secret: ORG.secret,
    });
    while (!sim.webhooks.deliveries.some((d) => d.event === 'message_created')) {
      sim.mutate(ORG.account);
      await sim.webhooks.idle();
    }
    template = JSON.parse(
      (sim.webhooks.deliveries.find((d) => d.event === 'message_created') as { body: string }).body,
    ) as Record<string, unknown>;
    const config = testConfig(
      CONNECTORS_DIR,
      [
        org(ORG.id, [
          {
            connector: 'chatwoot',
            config: { base_url: sim.url, account_id: ORG.account },
            secrets: { api_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}' },
          },
        ]),
      ],
      { deadlineSeconds: 300 },
    );
    svc = await startService(kind, config, { CW_TOKEN: 't', CW_SECRET: ORG.secret });
  });
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
  });

  it('answers 202 to every delivery while the batch before them cannot finish; all are processed once it can', async () => {
    const input = {
      template,
      orgs: [{ id: ORG.id, accountId: ORG.account, secret: ORG.secret }],
      conversationsPerOrg: 5,
      firstId: 70_000_000,
    };
    const send = (n: number) => {
      const d = delivery(input, n, input.orgs[0] as (typeof input.orgs)[number]);
      return post(`${svc.url}/webhooks/${ORG.id}/chatwoot`, d.text, d.headers);
    };
    const status = (ids: string[]) =>
      svc.db.query<{ status: string; n: string }>(
        `select status, count(*)::text as n from webhook_inbox where id::text in (${ids.map(() => '?').join(', ')})
         group by status order by status`,
        ids,
      );
    // The connection's session opened and its organization and contact written before anything is held.
    expect((await send(100)).status).toBe(202);
    await svc.service.idle();
    const locker = new pg.Client({ connectionString: svc.db.connectionUrl });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table messages in exclusive mode');
      const first = await send(0);
      expect(first.status).toBe(202);
      // Its batch is claimed and then waits for the lock in its write: processing is under way and cannot finish.
      const firstId = String(first.body.id);
      await until('the first batch to be claimed', async () =>
        (await status([firstId]))[0]?.status === 'processing' ? true : undefined,
      );
      const more = await Promise.all(Array.from({ length: 40 }, (_, i) => send(i + 1)));
      expect(more.map((r) => r.status)).toEqual(more.map(() => 202));
      expect(await status([firstId])).toEqual([{ status: 'processing', n: '1' }]);
      await locker.query('commit');
      await svc.service.idle();
      const all = [firstId, ...more.map((r) => String(r.body.id))];
      expect(await status(all)).toEqual([{ status: 'processed', n: String(all.length) }]);
      const [rows] = await svc.db.query<{ n: string }>(
        `select count(*)::text as n from messages where organization_id = ? and source = 'chatwoot'
         and external_id::bigint between 70000000 and 70000040`,
        [ORG.id],
      );
      expect(rows?.n).toBe('41');
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
    }
  });
});
