import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, ensureOrganization, parseKeyRing, setCredential } from '@routiq/runner';
import { type ClinikoSim, type ManyChatSim, startCliniko, startManyChat } from '@routiq/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS_DIR } from '../helpers/connectors.ts';
import { backends } from '../helpers/db.ts';
import { org, testConfig } from '../helpers/engine.ts';
import { post, type RunningService, startService, until } from './serve-harness.ts';

/**
 * Issue #20, "Must show": configured secrets never appear in logs (at trace level), HTTP answers, errors, dead
 * letters, the audit log, metrics, queue jobs or lint findings. `routiq serve` runs syncs (one connection reading
 * its key from the encrypted store, one with a wrong key that fails), takes ManyChat webhooks (token in the
 * header, in the URL, and a wrong one), answers admin and metrics requests; then a config with literal secrets is
 * linted. The full `routiq demo` (every connector, a child process) is scanned in the soak tier
 * (test/soak/secret-scan.soak.test.ts).
 */
const PAGE = '104729000000077';
const MC_KEY = `${PAGE}:${randomBytes(16).toString('hex')}`;
const MC_HOOK = `hook-${randomBytes(12).toString('hex')}`;
const CLINIKO_KEY = `ck-${randomBytes(12).toString('hex')}-au1`;
const CLINIKO_WRONG = `ck-wrong-${randomBytes(12).toString('hex')}-au1`;
const SERVICE_TOKEN = `svc-${randomBytes(16).toString('hex')}`;
const ENC_KEY = randomBytes(32).toString('base64');
const ORG = 'org_secret_scan';
const BIN = path.resolve(import.meta.dirname, '../../cli/bin/routiq.mjs');
const kind = (await backends()).includes('postgres') ? 'postgres' : 'embedded';

/** Every configured secret, and the distinctive halves of the compound ones. */
const SECRETS = [MC_KEY, MC_KEY.split(':')[1]!, MC_HOOK, CLINIKO_KEY, CLINIKO_WRONG, SERVICE_TOKEN, ENC_KEY];
/** Cliniko authenticates with Basic base64(key + ':'): its encoded forms must not leak either. */
const ENCODED = [CLINIKO_KEY, CLINIKO_WRONG].map((k) => Buffer.from(`${k}:`).toString('base64'));

function leaks(text: string): string[] {
  return [...SECRETS, ...ENCODED, ...SECRETS.map(encodeURIComponent)].filter((s) => text.includes(s));
}

describe(`secrets never leak (${kind})`, () => {
  let cliniko: ClinikoSim;
  let manychat: ManyChatSim;
  let svc: RunningService;
  const lines: string[] = [];
  const answers: string[] = [];

  beforeAll(async () => {
    cliniko = await startCliniko({ users: [{ apiKey: CLINIKO_KEY }], seed: 3, scale: 1 });
    manychat = await startManyChat({ pages: [{ pageId: PAGE, token: MC_KEY }], seed: 3, scale: 1 });
    const env = {
      MC_KEY,
      MC_HOOK,
      CLINIKO_WRONG,
      ROUTIQ_ENCRYPTION_KEYS: `k1:${ENC_KEY}`,
    };
    const config = testConfig(CONNECTORS_DIR, [
      org(ORG, [
        {
          connector: 'cliniko',
          config: { base_url: cliniko.url, contact_email: 'ops@routiq.example' },
          credentialStore: true,
        },
        {
          connector: 'cliniko',
          name: 'cliniko_wrong',
          config: { base_url: cliniko.url, contact_email: 'ops@routiq.example' },
          secrets: { api_key: '${CLINIKO_WRONG}' },
        },
        {
          connector: 'manychat',
          config: { base_url: manychat.url },
          secrets: { api_key: '${MC_KEY}', webhook_token: '${MC_HOOK}' },
        },
      ]),
    ]);
    const logger = createLogger('trace', { write: (s: string) => lines.push(s) });
    svc = await startService(kind, config, env, { token: SERVICE_TOKEN, webhookMaxAttempts: 1 }, logger);
    await ensureOrganization(svc.db, config.organizations[0]!);
    await setCredential(
      svc.db,
      parseKeyRing(env.ROUTIQ_ENCRYPTION_KEYS),
      { organizationId: ORG, connection: 'cliniko', name: 'api_key' },
      CLINIKO_KEY,
      { actor: 'cli:test' },
    );
  });
  afterAll(async () => {
    await svc?.close();
    await cliniko?.close();
    await manychat?.close();
  });

  it('a sync from the credential store, a failing sync, webhooks, admin and metrics requests: no secret anywhere', async () => {
    const admin = { authorization: `Bearer ${SERVICE_TOKEN}` };
    const queued = await post(`${svc.url}/api/syncs`, JSON.stringify({ organization_id: ORG }), admin);
    expect(queued.status).toBe(202);
    answers.push(JSON.stringify(queued.body));
    const runs = await until('both cliniko syncs to finish', async () => {
      const r = await svc.db.query<{ connection: string; status: string }>(
        "select connection, status from sync_runs where organization_id = ? and connection like 'cliniko%' and status <> 'running' order by connection",
        [ORG],
      );
      return r.length === 2 ? r : undefined;
    });
    expect(runs).toEqual([
      { connection: 'cliniko', status: 'succeeded' },
      { connection: 'cliniko_wrong', status: 'failed' },
    ]);

    const hook = `${svc.url}/webhooks/${ORG}/manychat`;
    const subs = manychat.snapshot().pages[0]!.subscribers.map((s) => String(s.id));
    for (const [i, url] of [hook, `${hook}?token=${encodeURIComponent(MC_HOOK)}`].entries()) {
      const r = await manychat.simulateInbound({
        pageId: PAGE,
        subscriberId: subs[i]!,
        text: `hello ${i}`,
        url,
        ...(i === 0 ? { headers: { 'X-Routiq-Token': MC_HOOK } } : {}),
      });
      expect(r?.status, r?.responseBody).toBe(202);
      answers.push(r!.responseBody);
    }
    const wrong = await post(hook, JSON.stringify({ subscriber_id: subs[0], text: 'x' }), {
      'X-Routiq-Token': `${MC_HOOK}x`,
    });
    expect(wrong.status).toBe(401);
    // An authenticated delivery that cannot be processed becomes a dead letter (one attempt here), headers and all.
    const junk = await post(
      `${hook}?token=${encodeURIComponent(MC_HOOK)}`,
      JSON.stringify({ subscriber_id: subs[2], text: 'x', data: '{broken' }),
      {
        'X-Routiq-Token': MC_HOOK,
      },
    );
    expect(junk.status).toBe(202);
    await svc.service.idle();

    for (const p of ['/api/status', '/metrics', '/openapi.json']) {
      const res = await fetch(`${svc.url}${p}`, { headers: admin });
      expect(res.status).toBe(200);
      answers.push(await res.text());
    }
    const denied = await fetch(`${svc.url}/api/status`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}0` } });
    expect(denied.status).toBe(401);
    answers.push(await denied.text());

    // Everything the database holds: unified tables, dead letters, inbox, runs, audit log, queue jobs.
    const tables = await svc.db.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
       where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
    );
    let dump = '';
    for (const t of tables) dump += JSON.stringify(await svc.db.query(`select * from "${t.schema}"."${t.name}"`));
    const [dead] = await svc.db.query<{ n: number }>('select count(*)::int as n from sync_errors');
    const [audited] = await svc.db.query<{ n: number }>(
      "select count(*)::int as n from audit_log where action in ('sync.write', 'auth.denied', 'credentials.set')",
    );
    // The scan saw the places a secret could land.
    expect(lines.length).toBeGreaterThan(20);
    expect(dead!.n).toBeGreaterThan(0);
    expect(audited!.n).toBeGreaterThan(2);
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['organization_credentials', 'audit_log']));

    expect(leaks(lines.join(''))).toEqual([]);
    expect(leaks(answers.join('\n'))).toEqual([]);
    expect(leaks(dump)).toEqual([]);
  });

  it('routiq lint of a config with literal secrets names the problem and never echoes the value', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'routiq-lint-secret-'));
    try {
      const file = path.join(dir, 'production.yaml');
      writeFileSync(
        file,
        `database:\n  url: postgres://routiq:${CLINIKO_WRONG}@db.example.com/routiq\norganizations:\n  - id: org_lint\n    name: Lint\n    connections:\n      - connector: manychat\n        config: { api_key: "${MC_KEY}" }\n        secrets: { webhook_token: "${MC_HOOK}", api_key: "tok_live_${SERVICE_TOKEN}" }\n`,
      );
      // The scan finds what is there: the file itself holds four of the secrets.
      expect(leaks(readFileSync(file, 'utf8')).length).toBeGreaterThanOrEqual(4);
      for (const format of ['text', 'json']) {
        const r = spawnSync(process.execPath, [BIN, 'lint', file, '--format', format], {
          encoding: 'utf8',
          env: { ...process.env, ROUTIQ_CONNECTORS_DIR: CONNECTORS_DIR },
        });
        expect(r.status, r.stderr).toBe(1);
        const output = r.stdout + r.stderr;
        expect(output).toMatch(/literal value \(not shown\)/);
        expect(output).toMatch(/api_key is a secret of connector/);
        expect(leaks(output)).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
