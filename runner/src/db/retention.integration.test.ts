import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, openTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { purgeExpired } from './retention.ts';

const kinds = await backends();
const ORG = 'org_ret';
const OTHER = 'org_ret2';

const config = {
  runner: { rawRetentionDays: 30 } as never,
  retention: { deadLetterDays: 30, pushedRecordDays: 30, webhookInboxDays: 7 },
};

/** Retention purge (db/retention.ts): what is past its retention goes, what is still needed stays. */
describe.each(kinds)('retention purge on %s', (kind) => {
  let t: TestDb;
  const ids = async (sql: string) => (await t.db.query<{ k: string }>(sql)).map((r) => r.k).sort();
  const audits = () =>
    t.db.query<{
      actor_type: string;
      actor_id: string;
      organization_id: string | null;
      count: number;
      correlation_id: string;
      details: { scope: string; counts: Record<string, number>; tables: Record<string, number> };
    }>(
      "select actor_type, actor_id, organization_id, count, correlation_id, details from audit_log where action = 'retention.purge' order by id",
    );

  beforeAll(async () => {
    t = await openTestDb(kind);
    await t.db.query("insert into organizations (id, name) values (?, 'Retention'), (?, 'Other')", [ORG, OTHER]);
    const letter = (key: string, resolved: boolean, ageDays: number, partition?: string, org = ORG) =>
      t.db.query(
        `insert into sync_errors (organization_id, connector, connection, stream, error_class, error_code, message, record_key,
           payload, details, resolved, resolved_at, created_at, updated_at)
         values (?, 'manychat', 'manychat', 'subscriber_info', 'mapping', 'RQ5001', 'm', ?, '{"phone":"+61400000000"}'::jsonb,
           ?::jsonb, ?, case when ? then now() - make_interval(days => ?) end, now() - make_interval(days => ?),
           now() - make_interval(days => ?))`,
        [org, key, JSON.stringify(partition ? { partition } : {}), resolved, resolved, ageDays, ageDays, ageDays],
      );
    await letter('dl-old-resolved', true, 40);
    await letter('dl-new-resolved', true, 5);
    await letter('dl-old-open', false, 400);
    await letter('dl-other-org-old-resolved', true, 40, undefined, OTHER);
    await letter('dl-needs-partition', false, 1, 'sub-needed');
    for (const [key, age] of [
      ['raw-old', 40],
      ['raw-new', 2],
    ] as const)
      await t.db.query(
        `insert into raw_records (organization_id, source, stream, external_id, source_hash, payload, fetched_at)
         values (?, 'cliniko', 'patients', ?, 'h', '{}'::jsonb, now() - make_interval(days => ?))`,
        [ORG, key, age],
      );
    for (const [partition, status, age] of [
      ['sub-old-done', 'idle', 40],
      ['sub-new-done', 'idle', 2],
      ['sub-old-pending', 'pending', 40],
      ['sub-old-error', 'error', 40],
      ['sub-needed', 'idle', 40],
    ] as const)
      await t.db.query(
        `insert into sync_state (organization_id, connector, stream, partition, status, metadata, updated_at)
         values (?, 'manychat', 'subscriber_info', ?, ?, '{"parent":{"id":"x","phone":"+61400000000"}}'::jsonb,
           now() - make_interval(days => ?))`,
        [ORG, partition, status, age],
      );
    for (const [delivery, status, age] of [
      ['wh-old-processed', 'processed', 10],
      ['wh-old-rejected', 'rejected', 10],
      ['wh-new-processed', 'processed', 1],
      ['wh-old-received', 'received', 10],
    ] as const)
      await t.db.query(
        `insert into webhook_inbox (organization_id, connection, delivery_id, body, status, received_at, processed_at)
         values (?, 'manychat', ?, '{}', ?, now() - make_interval(days => ?),
           case when ? <> 'received' then now() - make_interval(days => ?) end)`,
        [ORG, delivery, status, age, status, age],
      );
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('a dry run counts and changes nothing; one organization only touches its rows', async () => {
    const dry = await purgeExpired(t.db, config, { dryRun: true });
    expect(dry).toEqual({
      deadLetters: 2,
      openDeadLetters: 0,
      rawRecords: 1,
      pushedRecords: 1,
      webhookDeliveries: 2,
      dryRun: true,
    });
    expect(await ids('select record_key as k from sync_errors')).toHaveLength(5);
    expect(await audits()).toEqual([]); // a dry run reads counts only: nothing to audit
    const one = await purgeExpired(t.db, config, {
      organizationId: OTHER,
      actor: { type: 'cli', id: 'alice' },
      correlationId: 'cli-run-1',
    });
    expect(one.deadLetters).toBe(1);
    expect(await ids('select record_key as k from sync_errors')).not.toContain('dl-other-org-old-resolved');
    expect(await ids('select external_id as k from raw_records')).toEqual(['raw-new', 'raw-old']);
    expect(await audits()).toEqual([
      {
        actor_type: 'cli',
        actor_id: 'alice',
        organization_id: OTHER,
        count: 1,
        correlation_id: 'cli-run-1',
        details: {
          scope: 'one organization',
          counts: { dead_letters: 1, open_dead_letters: 0, raw_records: 0, pushed_records: 0, webhook_deliveries: 0 },
          tables: { sync_errors: 1, raw_records: 0, sync_state: 0, webhook_inbox: 0 },
        },
      },
    ]);
  });

  it('purges what is past its retention and keeps open letters, pending work and what a letter needs', async () => {
    const r = await purgeExpired(t.db, config);
    expect(r).toMatchObject({
      deadLetters: 1,
      openDeadLetters: 0,
      rawRecords: 1,
      pushedRecords: 1,
      webhookDeliveries: 2,
    });
    expect(await ids('select record_key as k from sync_errors')).toEqual([
      'dl-needs-partition',
      'dl-new-resolved',
      'dl-old-open',
    ]);
    expect(await ids('select external_id as k from raw_records')).toEqual(['raw-new']);
    expect(await ids("select partition as k from sync_state where metadata->'parent' is null")).toEqual([
      'sub-old-done',
    ]);
    expect(await ids('select partition as k from sync_state')).toHaveLength(5);
    expect(await ids('select delivery_id as k from webhook_inbox')).toEqual(['wh-new-processed', 'wh-old-received']);
    // The daily job's purge across organizations: audited by the system actor, one row per organization touched.
    const [daily, ...more] = (await audits()).slice(1);
    expect(more).toEqual([]);
    expect(daily).toMatchObject({
      actor_type: 'system',
      actor_id: 'retention-purge',
      organization_id: ORG,
      count: 5,
      details: {
        scope: 'every organization',
        tables: { sync_errors: 1, raw_records: 1, sync_state: 1, webhook_inbox: 2 },
      },
    });
    // A purge that finds nothing says so too (one row, count 0), under the same rules.
    await purgeExpired(t.db, config);
    expect((await audits()).at(-1)).toMatchObject({ organization_id: null, count: 0, actor_type: 'system' });
    // Open letters go only when retention.open_dead_letter_days says so.
    const open = await purgeExpired(t.db, { ...config, retention: { ...config.retention, openDeadLetterDays: 365 } });
    expect(open.openDeadLetters).toBe(1);
    expect(await ids('select record_key as k from sync_errors')).toEqual(['dl-needs-partition', 'dl-new-resolved']);
  });
});
