import path from 'node:path';
import '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import type { RoutiqConfig } from '../config/types.ts';
import { ingestWebhook, type WebhookResult } from './webhooks.ts';

/**
 * A ManyChat External Request carries the contact in a `data`/`user` string the author wrote. The token holder
 * controls that string: it is read as JSON data, never run as an expression, so it can neither copy a secret into
 * the database nor hang the process.
 */
const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const API_KEY = '104729000000001:7f3c9e1d5b2a4c6e8f0a1b2c3d4e5f60';
const HOOK = 'hook-token-untrusted';
const env = { MC_KEY: API_KEY, MC_HOOK: HOOK };
const kinds = await backends();

describe.each(kinds)('untrusted ManyChat payload strings (%s)', (kind) => {
  let t: TestDb;
  let config: RoutiqConfig;
  const orgId = 'org_untrusted';
  const o = () => config.organizations[0]!;
  const push = (body: Record<string, unknown>): Promise<WebhookResult> =>
    ingestWebhook({
      db: t.db,
      config,
      org: o(),
      conn: o().connections[0]!,
      headers: { 'X-Routiq-Token': HOOK },
      rawBody: JSON.stringify(body),
      logger: silentLogger,
      env,
    });
  /** Settles the push; a refusal (the payload could not be read) counts as an outcome too. */
  const settle = (body: Record<string, unknown>) =>
    push(body).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e: e as { code?: string; message: string } }),
    );
  const deadLetters = () =>
    t.db.query<{ error_code: string; message: string; payload: unknown }>(
      'select error_code, message, payload from sync_errors where organization_id = ? order by created_at, id',
      [orgId],
    );

  beforeAll(async () => {
    t = await openTestDb(kind);
    config = testConfig(CONNECTORS, [
      org(orgId, [
        {
          connector: 'manychat',
          config: { base_url: 'http://127.0.0.1:9' },
          secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
        },
      ]),
    ]);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('reads a valid JSON string as data: an expression inside it is stored as text', async () => {
    const r = await push({
      subscriber_id: '7',
      text: 'hello',
      data: JSON.stringify({
        id: '7',
        first_name: '$secrets.api_key',
        last_name: '{{ $secrets.api_key }}',
        last_interaction: '2024-05-01T10:00:00+08:00',
      }),
    });
    expect(r.deadLetters).toBe(0);
    const rows = await t.db.query<{ first_name: string; last_name: string }>(
      "select first_name, last_name from patient_identities where organization_id = ? and external_id = '7'",
      [orgId],
    );
    expect(rows).toEqual([{ first_name: '$secrets.api_key', last_name: '{{ $secrets.api_key }}' }]);
  });

  it('never evaluates a data string that is an expression, and the secret is stored nowhere', async () => {
    const outcome = await settle({
      subscriber_id: '9',
      text: 'hi',
      data: '{"id":"9","first_name":$secrets.api_key}',
    });
    // The string is not JSON: the push fails as a mapping error or is dead-lettered, and maps nothing.
    if (outcome.ok) expect(outcome.r.deadLetters).toBe(1);
    else expect(outcome.e.message).toMatch(/\$parseJson: the string is not valid JSON/);
    const nine = await t.db.query("select 1 from patient_identities where organization_id = ? and external_id = '9'", [
      orgId,
    ]);
    expect(nine).toEqual([]);

    // Every text and JSON column of every table: the secret's value is nowhere, while text we know was
    // stored (the previous test's literal "$secrets.api_key") is found, so the scan does look.
    const columns = await t.db.query<{ table_name: string; column_name: string }>(
      `select table_name, column_name from information_schema.columns
        where table_schema = current_schema() and data_type in ('text', 'character varying', 'json', 'jsonb', 'ARRAY')
        order by 1, 2`,
    );
    expect(columns.length).toBeGreaterThan(20);
    const holding = async (needle: string) => {
      const found: string[] = [];
      for (const c of columns) {
        const n = await t.db.query<{ n: string }>(
          `select count(*)::text as n from "${c.table_name}" where strpos("${c.column_name}"::text, ?) > 0`,
          [needle],
        );
        if (n[0]?.n !== '0') found.push(`${c.table_name}.${c.column_name}`);
      }
      return found;
    };
    expect(await holding(API_KEY)).toEqual([]);
    expect(await holding(API_KEY.split(':')[1]!)).toEqual([]);
    expect(await holding('$secrets.api_key')).toContain('patient_identities.first_name');
  });

  it('a self-recursive expression as data ends at once, as an unreadable payload', async () => {
    const before = (await deadLetters()).length;
    const outcomes = [];
    for (const field of ['data', 'user'] as const) {
      outcomes.push(
        await settle({
          subscriber_id: '11',
          text: 'loop',
          [field]: '($f := function($x){ $f($x) }; $f(1))',
        }),
      );
    }
    for (const outcome of outcomes) {
      if (outcome.ok) expect(outcome.r.deadLetters).toBe(1);
      else expect(outcome.e.message).toMatch(/\$parseJson: the string is not valid JSON/);
    }
    const added = (await deadLetters()).slice(before);
    // Dead-lettered payloads keep the string as it came (for replay), never its evaluation.
    for (const d of added) expect(JSON.stringify(d.payload)).toContain('$f($x)');
    expect(added.length).toBe(outcomes.filter((x) => x.ok).length);
  });
});
