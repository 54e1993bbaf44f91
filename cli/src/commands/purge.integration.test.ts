import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, openDatabase } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../../../test/helpers/connectors.ts';
import { createTestDatabase, postgresReachable } from '../../../test/helpers/db.ts';

/**
 * `routiq purge` (issue #20): what it removed is in the audit log with the person at the terminal as the actor, one
 * row per organization touched, the rows removed per table, the invocation's correlation id. A dry run removes and
 * audits nothing.
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/routiq.mjs');

describe.skipIf(!(await postgresReachable()))('routiq purge: audited (CLI, PostgreSQL)', () => {
  let tmp: string;
  let configFile: string;
  let target: Awaited<ReturnType<typeof createTestDatabase>>;
  const routiq = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args, '--config', configFile],
        {
          cwd: tmp,
          env: { ...process.env, ROUTIQ_ENV: '', DATABASE_URL: target.url, USER: 'purge-operator' },
          timeout: 60_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 70) : 0, stdout, stderr }),
      );
    });
  const audits = async () => {
    const db = await openDatabase({ url: target.url });
    try {
      return await db.query<{
        actor_type: string;
        organization_id: string | null;
        count: number;
        correlation_id: string | null;
        details: { tables: Record<string, number> };
      }>(
        "select actor_type, organization_id, count, correlation_id, details from audit_log where action = 'retention.purge' order by id",
      );
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    target = await createTestDatabase('postgres');
    const db = await openDatabase({ url: target.url });
    try {
      await migrate(db);
      await db.query("insert into organizations (id, name) values ('org_pa', 'A'), ('org_pb', 'B')");
      for (const [org, key] of [
        ['org_pa', 'a1'],
        ['org_pa', 'a2'],
        ['org_pb', 'b1'],
      ])
        await db.query(
          `insert into sync_errors (organization_id, connector, connection, stream, error_class, error_code, message,
             record_key, resolved, resolved_at)
           values (?, 'cliniko', 'cliniko', 'patients', 'mapping', 'RQ5001', 'm', ?, true, now() - interval '400 days')`,
          [org, key],
        );
      await db.query(
        `insert into raw_records (organization_id, source, stream, external_id, source_hash, payload, fetched_at)
         values ('org_pb', 'cliniko', 'patients', 'r1', 'h', '{}'::jsonb, now() - interval '400 days')`,
      );
    } finally {
      await db.close();
    }
    tmp = mkdtempSync(path.join(tmpdir(), 'routiq-cli-purge-'));
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `connectors_dir: ${JSON.stringify(CONNECTORS_DIR)}
database: { url: ${JSON.stringify(target.url)} }
organizations:
  - id: org_pa
    name: A
    connections:
      - connector: cliniko
        enabled: false
        credential_store: true
        config: { base_url: "http://127.0.0.1:9", contact_email: ops@routiq.example }
`,
    );
  });
  afterAll(async () => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await target?.drop();
  });

  it('a dry run audits nothing; a purge writes one row per organization with its counts per table', async () => {
    const dry = await routiq(['purge', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, dead_letters: 3, raw_records: 1 });
    expect(await audits()).toEqual([]);

    const r = await routiq(['purge', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dry_run: false, dead_letters: 3, raw_records: 1 });
    const rows = await audits();
    expect(rows.map((x) => [x.actor_type, x.organization_id, x.count, x.details.tables])).toEqual([
      ['cli', 'org_pa', 2, { sync_errors: 2, raw_records: 0, sync_state: 0, webhook_inbox: 0 }],
      ['cli', 'org_pb', 2, { sync_errors: 1, raw_records: 1, sync_state: 0, webhook_inbox: 0 }],
    ]);
    // One invocation, one correlation id.
    expect(rows[0]?.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(rows[1]?.correlation_id).toBe(rows[0]?.correlation_id);
  });
});
