import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openDatabase } from '@routiq/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routiqInProcess } from '../../../test/helpers/cli-inprocess.ts';
import { type Result, settle } from '../../../test/helpers/cli-process.ts';
import { createTestDatabase, testTmpDir } from '../../../test/helpers/db.ts';
import { connectorsDir } from '../../../test/helpers/engine.ts';
import { itemsSpec } from '../../../test/helpers/specs.ts';
import { startTinyApi, type TinyApi } from '../../../test/helpers/tiny-api.ts';

/**
 * `routiq dlq …` and `routiq status` on an embedded database directory named in the config file: a child process per
 * command family, the other invocations through the CLI's entry in this process (test/helpers/cli-inprocess.ts).
 * Spawned asynchronously: the tiny API lives in this process.
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/routiq.mjs');

const spec = (status: string, version: string) =>
  itemsSpec('strict', {
    version,
    target: 'appointments',
    mapping: `{ "external_id": id, "status": ${status}, "notes": name }`,
  });
const BROKEN = spec('$contains(name, "Item 4 ") ? name : "booked"', '1.0.0');
const FIXED = spec('"booked"', '1.0.1');

describe('routiq dlq and status (CLI, embedded database)', () => {
  let api: TinyApi;
  let tmp: string;
  let dir: string;
  let configFile: string;

  // A child process, as a user runs it: exit codes and the stdout/stderr split of each family (list, show, replay,
  // status, usage errors).
  const child = (...args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args, '--config', configFile],
        {
          cwd: tmp,
          env: {
            ...process.env,
            DATABASE_URL: '',
            ROUTIQ_DB_DIR: '',
            ROUTIQ_CONNECTORS_DIR: '',
            ROUTIQ_LOG_LEVEL: '',
            ROUTIQ_ENV: '',
          },
          timeout: 60_000,
        },
        settle(resolve),
      );
    });
  // The rest through the CLI's entry in this process: the same command code and database open per command.
  const routiq = (...args: string[]): Promise<Result> => routiqInProcess([...args, '--config', configFile]);
  const json = (r: Result) => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n--- stderr:\n${r.stderr}`);
    }
  };

  beforeAll(async () => {
    api = await startTinyApi({ items: 12 });
    tmp = testTmpDir('routiq-cli-dlq-');
    dir = connectorsDir({ strict: BROKEN });
    configFile = path.join(tmp, 'routiq.yaml');
    writeFileSync(
      configFile,
      `database:
  embedded_dir: ${JSON.stringify(path.join(tmp, 'db'))}
log:
  level: silent
connectors_dir: ${JSON.stringify(dir)}
organizations:
  - id: org_cli
    name: CLI clinic
    connections:
      - connector: strict
        config: { base_url: ${JSON.stringify(api.url)} }
`,
    );
    // An empty data directory (initdb done once per test run); `routiq migrate` applies the migrations.
    await createTestDatabase('embedded', { dir: path.join(tmp, 'db') });
    const m = await routiq('migrate');
    expect(m.code, m.stderr).toBe(0);
    const s = await routiq('sync', '--json');
    expect(s.code, s.stderr + s.stdout).toBe(0);
    expect(json(s).runs[0].streams[0]).toMatchObject({ records: 12, dead_letters: 1 });
  });
  afterAll(async () => {
    await api?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  let id: string;

  it('dlq list --json prints the open dead letters (without payloads)', async () => {
    const r = await child('dlq', 'list', '--json');
    expect(r.code, r.stderr).toBe(0);
    const body = json(r);
    expect(body).toMatchObject({ count: 1, total: 1 });
    expect(body.dead_letters[0]).toMatchObject({
      organization_id: 'org_cli',
      connector: 'strict',
      stream: 'items',
      error_class: 'validation',
      error_code: 'RQ5002',
      record_key: api.items[4]!.id,
      retry_count: 0,
      resolved: false,
    });
    expect(body.dead_letters[0]).not.toHaveProperty('payload');
    id = body.dead_letters[0].id;

    const filtered = json(await routiq('dlq', 'list', '--json', '--class', 'mapping'));
    expect(filtered.count).toBe(0);
    const older = json(await routiq('dlq', 'list', '--json', '--older-than', '1h', '--org', 'org_cli'));
    expect(older.count).toBe(0);
    const text = await routiq('dlq', 'list', '--newer-than', '1d');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^id\s+org\s+connector\s+stream\s+class\s+code\s+age\s+retries\s+message/);
    expect(text.stdout).toContain(id);
  });

  it('usage errors exit 2 with RQ6001 on stderr (before any database is opened)', async () => {
    const cases = [
      ['dlq', 'list', '--class', 'bogus'],
      ['dlq', 'list', '--older-than', 'soon'],
      ['dlq', 'list', '--limit', '0'],
      ['dlq', 'list', '--frobnicate'],
      ['dlq', 'show', 'not-a-uuid'],
      ['dlq', 'show'],
      ['dlq', 'replay'],
      ['dlq', 'replay', 'not-a-uuid'],
      ['dlq', 'resolve', id],
      ['dlq', 'explode'],
      ['dlq'],
      ['status', 'extra'],
    ];
    // In parallel: none of them may touch the embedded database (a second process would be refused with RQ4004).
    const results = await Promise.all(cases.map((args) => child(...args)));
    results.forEach((r, i) => {
      const args = cases[i]!.join(' ');
      expect(r.code, `${args}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args).toMatch(/^RQ6001 /);
      expect(r.stdout, args).toBe('');
    });
  });

  it('dlq show prints everything, payload included', async () => {
    const r = await routiq('dlq', 'show', id, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ id, payload: { id: api.items[4]!.id, name: api.items[4]!.name } });
    const text = await routiq('dlq', 'show', id);
    expect(text.stdout).toContain('payload:');
    expect(text.stdout).toContain(JSON.stringify(api.items[4]!.id));
    const missing = await child('dlq', 'show', '00000000-0000-4000-8000-000000000000');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^no dead letter has id 0{8}-/);
  });

  it('dlq replay exits 1 while the record still fails, and counts the retry', async () => {
    const failing = await child('dlq', 'replay', '--org', 'org_cli', '--json');
    expect(failing.code, failing.stderr).toBe(1);
    expect(json(failing).outcomes).toEqual([
      expect.objectContaining({ id, status: 'failed', code: 'RQ5002', retry_count: 1 }),
    ]);
  });

  it('once the spec is fixed, a dry run says what it would write and changes nothing', async () => {
    writeFileSync(path.join(dir, 'strict', 'connector.yaml'), FIXED);
    const dry = await routiq('dlq', 'replay', '--org', 'org_cli', '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    expect(json(dry)).toMatchObject({ dry_run: true, outcomes: [{ id, status: 'replayed', dry_run: true, rows: 1 }] });
    expect(json(await routiq('dlq', 'list', '--json')).count).toBe(1);
  });

  it('replay writes the record and resolves the letter', async () => {
    const ok = await routiq('dlq', 'replay', id, '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok).outcomes).toEqual([
      expect.objectContaining({ id, status: 'replayed', written: { inserted: 1, updated: 0, unchanged: 0 } }),
    ]);
    expect(json(await routiq('dlq', 'list', '--json')).count).toBe(0);
    const all = json(await routiq('dlq', 'list', '--json', '--all'));
    expect(all.dead_letters[0]).toMatchObject({ id, resolved: true, resolution: 'replayed' });
  });

  it('a second replay is a no-op, by id or by organization', async () => {
    const again = await routiq('dlq', 'replay', id, '--json');
    expect(again.code).toBe(0);
    expect(json(again).outcomes).toEqual([expect.objectContaining({ id, status: 'skipped' })]);
    const none = await routiq('dlq', 'replay', '--org', 'org_cli', '--json');
    expect(none.code).toBe(0);
    expect(json(none).outcomes).toEqual([]);
  });

  it('dlq resolve needs a reason and reports letters already resolved', async () => {
    const r = await routiq('dlq', 'resolve', id, '--reason', 'done by hand', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({ resolved: [], skipped: [{ id, reason: 'already resolved' }] });
  });

  it('status --json: last run, checkpoints and open dead letters per organization and connection', async () => {
    const r = await child('status', '--json');
    expect(r.code, r.stderr).toBe(0);
    const body = json(r);
    expect(body.organizations).toHaveLength(1);
    const c = body.organizations[0].connections[0];
    expect(body.organizations[0]).toMatchObject({ id: 'org_cli', name: 'CLI clinic', configured: true });
    expect(c).toMatchObject({
      connection: 'strict',
      connector: 'strict',
      last_run: { status: 'succeeded', records: 12, written: 11, dead_letters: 1 },
      running: [],
      health: { status: 'ok', paused: false },
      open_dead_letters: 0,
      streams: [{ stream: 'items', status: 'idle', pending_partitions: 0, error_partitions: 0 }],
    });
    expect(c.last_run.correlation_id).toMatch(/^sync-/);
    expect(c.last_run.duration_ms).toBeGreaterThanOrEqual(0);

    const text = await routiq('status');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('org_cli — CLI clinic');
    expect(text.stdout).toMatch(/last run: succeeded .* 12 records, 11 written, 1 dead letter/);

    const unknown = await child('status', '--org', 'org_nope');
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^RQ1008 /);
  });

  it('dlq list and show are in the audit log: a cli actor, the organization, the count, one id per invocation', async () => {
    const db = await openDatabase({ embeddedDir: path.join(tmp, 'db') });
    try {
      const rows = await db.query<{ action: string; actor_type: string; organization_id: string; count: number }>(
        "select action, actor_type, organization_id, count from audit_log where action in ('dlq.list', 'dlq.show') order by id",
      );
      expect(rows.length).toBeGreaterThanOrEqual(3);
      expect(new Set(rows.map((r) => `${r.actor_type} ${r.organization_id}`))).toEqual(new Set(['cli org_cli']));
      expect(rows.filter((r) => r.action === 'dlq.show').every((r) => r.count === 1)).toBe(true);
      // routiq status (the earlier test): the whole-database read is cross-organization and names what it showed.
      const status = await db.query<{ actor_type: string; organization_id: string | null; organizations: string }>(
        "select actor_type, organization_id, details->>'organizations' as organizations from audit_log where action = 'status.read'",
      );
      expect(status).toContainEqual({ actor_type: 'cli', organization_id: null, organizations: '["org_cli"]' });
    } finally {
      await db.close();
    }
  });
});
