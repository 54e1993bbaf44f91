import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../test/helpers/connectors.ts';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
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
    // A replay processes the delivery again; the connection still cannot open: nothing done, the letter open.
    const [outcome] = await replayDeadLetters(t.db, config, [letters[0]!.id], {
      logger: silentLogger,
      env: {},
      actor: 'cli:test',
    });
    expect(outcome).toMatchObject({ status: 'error', errorClass: 'webhook', code: 'RQ1020' });
    expect((await listDeadLetters(t.db, { class: 'webhook' }))[0]).toMatchObject({ resolved: false, retryCount: 0 });
  });
});

/**
 * Replaying webhook letters: a `webhook` letter (processing threw: here a trigger refusing the write with a non-data
 * SQLSTATE) is processed again through the webhook path once the cause is gone; a `webhook:<event>` letter whose
 * records could not be extracted is extracted as the event does (not mapped whole). Versions come from the signed
 * timestamp kept with the letter, so an old delivery never rolls a newer row back; no credential is stored.
 */
const SECRET = 'whsec-replay-7f3a9c';
const HOOKED = (
  version: string,
  records: string,
) => `# yaml-language-server: $schema=../../schemas/connector.schema.json
spec_version: 1
name: hooked
version: ${version}
connection:
  properties:
    base_url: { type: string, format: uri }
    webhook_secret: { type: string, secret: true }
  required: [base_url]
base_url: "{{ $config.base_url }}"
auth: { type: none }
streams:
  - name: items
    request: { path: /items }
    records: data
    pagination: { type: none }
    map:
      - target: appointments
        expression: '{ "external_id": id, "status": "booked", "notes": name }'
webhooks:
  verify:
    type: hmac_sha256
    header: X-Hook-Signature
    prefix: ""
    secret: "{{ $secrets.webhook_secret }}"
    message: "{{ $headers.'x-hook-timestamp' & '.' & $body_raw }}"
    timestamp_header: X-Hook-Timestamp
    tolerance_seconds: 300
  events:
    - name: items
      when: "event = 'items'"
      records: ${JSON.stringify(records)}
      map:
        - target: appointments
          version: "$number($headers.'x-hook-timestamp')"
          expression: '{ "external_id": id, "status": "booked", "notes": name }'
`;
const BROKEN_RECORDS = `$exists(items) ? items : $error("no items in this delivery")`;
const FIXED_RECORDS = `$exists(items) ? items : [item]`;
const ORG2 = 'org_whreplay';

describe.each(await backends())('webhook dead letters are replayed through the webhook path (%s)', (kind) => {
  let t: TestDb;
  let svc: Service;
  let config: RoutiqConfig;
  let dir: string;
  const opts = { logger: silentLogger, env: { HOOK_SECRET: SECRET }, actor: 'cli:test' };
  const now = Math.floor(Date.now() / 1000);

  const post = async (ts: number, payload: unknown) => {
    const body = JSON.stringify(payload);
    const res = await svc.app.inject({
      method: 'POST',
      url: `/webhooks/${ORG2}/hooked`,
      headers: {
        'content-type': 'application/json',
        'x-hook-timestamp': String(ts),
        'x-hook-signature': createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex'),
      },
      payload: body,
    });
    expect(res.statusCode).toBe(202);
    await svc.idle();
  };
  const row = async (id: string) =>
    (
      await t.db.query<{ notes: string }>(
        'select notes from appointments where organization_id = ? and external_id = ?',
        [ORG2, id],
      )
    )[0]?.notes;

  beforeAll(async () => {
    t = await openTestDb(kind);
    dir = connectorsDir({ hooked: HOOKED('1.0.0', BROKEN_RECORDS) });
    config = testConfig(dir, [
      org(ORG2, [
        {
          connector: 'hooked',
          config: { base_url: 'http://127.0.0.1:9' },
          secrets: { webhook_secret: '${HOOK_SECRET}' },
        },
      ]),
    ]);
    await ensureOrganization(t.db, config.organizations[0]!);
    svc = new Service({
      db: t.db,
      config,
      logger: silentLogger,
      env: { HOOK_SECRET: SECRET },
      settings: { ...DEFAULT_SETTINGS, webhookMaxAttempts: 1 },
    });
    // The write of item a1 is refused with a non-data SQLSTATE: processing throws, the delivery is a `webhook` letter.
    await t.db.query(`create function refuse_a1() returns trigger language plpgsql as $$
      begin raise exception 'a1 is refused for now' using errcode = 'P0001'; end $$`);
    await t.db.query(`create trigger refuse_a1 before insert or update on appointments for each row
      when (new.external_id = 'a1') execute function refuse_a1()`);
  });
  afterAll(async () => {
    await svc?.app.close();
    await t?.drop();
  });

  it('a failed delivery: failed again while the cause remains, then replayed (rows written, resolved); never rolls back', async () => {
    await post(now - 60, {
      event: 'items',
      items: [
        { id: 'a1', name: 'a1 old' },
        { id: 'b1', name: 'b1 old' },
      ],
    });
    const [letter] = await listDeadLetters(t.db, { org: ORG2, class: 'webhook' });
    expect(letter).toMatchObject({ stream: 'webhook:delivery', errorClass: 'webhook', resolved: false });
    expect(letter?.details.headers).toMatchObject({ 'x-hook-timestamp': String(now - 60) });
    // No credential in the stored letter: neither the secret nor the signature header.
    const stored = JSON.stringify(letter);
    expect(stored).not.toContain(SECRET);
    expect(stored).not.toContain('x-hook-signature');
    expect(await row('b1')).toBeUndefined();

    // Still refused: the letter stays open with retry_count + 1 and the reason.
    const [again] = await replayDeadLetters(t.db, config, [letter!.id], opts);
    expect(again).toMatchObject({ status: 'failed', errorClass: 'webhook', retryCount: 1 });
    expect(again?.message).toContain('a1 is refused for now');
    const open = (await listDeadLetters(t.db, { ids: [letter!.id] }))[0];
    expect(open).toMatchObject({ resolved: false, retryCount: 1, errorClass: 'webhook' });
    expect(open?.details).toMatchObject({ inbox_id: letter!.details.inbox_id, headers: letter!.details.headers });

    // The cause is fixed; meanwhile a newer delivery wrote a1.
    await t.db.query('drop trigger refuse_a1 on appointments');
    await post(now, { event: 'items', items: [{ id: 'a1', name: 'a1 new' }] });
    expect(await row('a1')).toBe('a1 new');

    // A dry run writes nothing; the replay writes b1, keeps the newer a1 and resolves the letter.
    const [dry] = await replayDeadLetters(t.db, config, [letter!.id], { ...opts, dryRun: true });
    expect(dry).toMatchObject({ status: 'replayed', dryRun: true, rows: 2 });
    expect(await row('b1')).toBeUndefined();
    const [done] = await replayDeadLetters(t.db, config, [letter!.id], opts);
    expect(done).toMatchObject({ status: 'replayed', errorClass: 'webhook' });
    expect(await row('b1')).toBe('b1 old');
    expect(await row('a1')).toBe('a1 new');
    expect((await listDeadLetters(t.db, { ids: [letter!.id] }))[0]).toMatchObject({
      resolved: true,
      resolution: 'replayed',
    });
    const [again2] = await replayDeadLetters(t.db, config, [letter!.id], opts);
    expect(again2?.status).toBe('skipped');
  });

  it('a webhook:<event> letter whose records could not be extracted is extracted as the event does on replay', async () => {
    await post(now - 30, { event: 'items', item: { id: 'c1', name: 'c1 pushed' } });
    const [letter] = await listDeadLetters(t.db, { org: ORG2, stream: 'webhook:items', resolved: false });
    expect(letter).toMatchObject({ errorClass: 'mapping', payload: { event: 'items', item: { id: 'c1' } } });
    expect(letter?.details.headers).toMatchObject({ 'x-hook-timestamp': String(now - 30) });
    expect(JSON.stringify(letter)).not.toContain(SECRET);

    writeFileSync(path.join(dir, 'hooked', 'connector.yaml'), HOOKED('1.0.1', FIXED_RECORDS));
    const [out] = await replayDeadLetters(t.db, config, [letter!.id], opts);
    expect(out).toMatchObject({ status: 'replayed', rows: 1 });
    expect(await row('c1')).toBe('c1 pushed');
    const [v] = await t.db.query<{ v: string }>(
      "select extract(epoch from source_version)::bigint::text as v from appointments where organization_id = ? and external_id = 'c1'",
      [ORG2],
    );
    expect(v?.v).toBe(String(now - 30));
  });
});
