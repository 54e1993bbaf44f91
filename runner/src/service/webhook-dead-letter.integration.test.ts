import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../test/helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import type { RoutiqConfig } from '../config/types.ts';
import { forOrganization } from '../db/tx.ts';
import { listDeadLetters, replayDeadLetters } from '../dlq/index.ts';
import { ensureOrganization } from '../engine/session.ts';
import { storeDelivery } from './inbox.ts';
import { DEFAULT_SETTINGS, Service } from './service.ts';

/**
 * A webhook delivery that still fails after its last attempt becomes a dead letter of class `webhook` (migration
 * 0012 lets sync_errors hold it) with its payload and context, and the delivery is marked failed: never lost. The
 * failure here is a connection that cannot open (credential_store without ROUTIQ_ENCRYPTION_KEYS).
 */
const ORG = 'org_whdl';

describe.each(await backends())('a failing webhook delivery is stored as a dead letter (%s)', (kind) => {
  let t: TestDb;
  let svc: Service;
  let config: RoutiqConfig;

  beforeAll(async () => {
    t = await openTestDb(kind);
    config = testConfig(CONNECTORS_DIR, [
      org(ORG, [
        {
          connector: 'cliniko',
          credentialStore: true,
          config: { base_url: 'http://127.0.0.1:9', contact_email: 'ops@routiq.example' },
        },
      ]),
    ]);
    await ensureOrganization(t.db, config.organizations[0]!);
    svc = new Service({
      db: t.db,
      config,
      logger: silentLogger,
      env: {},
      settings: { ...DEFAULT_SETTINGS, webhookMaxAttempts: 1 },
    });
  });
  afterAll(async () => {
    await svc?.app.close();
    await t?.drop();
  });

  it('after the last attempt: a `webhook` dead letter with the payload, the delivery failed, listed by class', async () => {
    const body = JSON.stringify({ event: 'patient.updated', id: 'p-77' });
    const { id } = await storeDelivery(forOrganization(t.db, ORG), {
      organizationId: ORG,
      connection: 'cliniko',
      deliveryId: 'dlv-1',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await svc.processDelivery(id);

    const [inbox] = await t.db.query<{ status: string }>('select status from webhook_inbox where id::text = ?', [id]);
    expect(inbox?.status).toBe('failed');
    const letters = await listDeadLetters(t.db, { class: 'webhook' });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      organizationId: ORG,
      connection: 'cliniko',
      stream: 'webhook:delivery',
      errorClass: 'webhook',
      errorCode: 'RQ1020',
      recordKey: id,
      payload: { event: 'patient.updated', id: 'p-77' },
    });
    expect(letters[0]?.details).toMatchObject({ inbox_id: id, attempts: 1 });
    // Replay says what to do instead of pretending it is a record.
    const [outcome] = await replayDeadLetters(t.db, config, [letters[0]!.id], {
      logger: silentLogger,
      env: {},
      actor: 'cli:test',
    });
    expect(outcome).toMatchObject({ status: 'not_replayable', errorClass: 'webhook' });
  });
});
