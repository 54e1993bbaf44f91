import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { migrate, openDatabase } from '@routiq/runner';
import { createOrganization, patientOf, writeConversation, writeIdentities } from '@routiq/runner/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routiqInProcess } from '../../../test/helpers/cli-inprocess.ts';
import { routiqAtRoot } from '../../../test/helpers/cli-process.ts';
import { backends, createTestDatabase, testTmpDir } from '../../../test/helpers/db.ts';

const routiq = routiqAtRoot;

describe('routiq patients evaluate', () => {
  it('rejects a bad command line with RQ6001 and exit 2', async () => {
    const cases = [
      ['patients'],
      ['patients', 'frobnicate'],
      ['patients', 'evaluate', '--size', '0'],
      ['patients', 'evaluate', '--bogus'],
      ['patients', 'evaluate', '--noise', 'loud'],
      ['patients', 'evaluate', '--held-out', '--seed', '3'],
      ['patients', 'merge', 'a', 'b', '--org', 'o'],
      ['patients', 'unmerge', 'not-an-id', '--org', 'o', '--reason', 'r'],
    ];
    const runs = await Promise.all(cases.map((args) => routiq(args)));
    runs.forEach((r, i) => {
      const label = cases[i]!.join(' ');
      expect(r.code, label).toBe(2);
      expect(r.stderr, label).toMatch(/^RQ6001 /);
      expect(r.stdout, label).toBe('');
    });
  });
});

const kinds = await backends();

describe.each(kinds)('routiq patients against a database (%s)', (kind) => {
  const ORG = 'org_cli';
  const OTHER = 'org_cli_other';
  let dir: string;
  let config: string;
  let env: NodeJS.ProcessEnv = {};
  let target: Awaited<ReturnType<typeof createTestDatabase>>;
  let links: Map<string, string>;
  let otherPatient: string;

  beforeAll(async () => {
    dir = testTmpDir('routiq-patients-');
    target = await createTestDatabase(kind, { dir: path.join(dir, 'db'), migrated: true });
    config = path.join(dir, 'routiq.yaml');
    writeFileSync(
      config,
      `database:\n  embedded_dir: ${path.join(dir, 'db')}\nlog:\n  level: silent\norganizations: []\n`,
    );
    if (target.url) env = { DATABASE_URL: target.url };
    const db = await openDatabase({ url: target.url, embeddedDir: target.embeddedDir });
    try {
      await migrate(db);
      await createOrganization(db, ORG);
      await createOrganization(db, OTHER);
      // Alice arrives split (phone-only and email-only contacts, then the clinic record with both);
      // Michael Johnson / Mike Jonson is a near-duplicate left for review.
      await writeIdentities(db, ORG, [
        { source: 'chatwoot', externalId: 'w10', displayName: 'Alice Nguyen', phoneRaw: '+61411111111' },
        { source: 'chatwoot', externalId: 'w11', displayName: 'Alice Nguyen', email: 'alice@example.com' },
        {
          source: 'cliniko',
          externalId: 'c10',
          firstName: 'Alice',
          lastName: 'Nguyen',
          phoneRaw: '0411 111 111',
          email: 'alice@example.com',
          dateOfBirth: '1990-05-05',
        },
        {
          source: 'cliniko',
          externalId: 'c60',
          firstName: 'Michael',
          lastName: 'Johnson',
          phoneRaw: '0466 666 666',
          dateOfBirth: '1970-02-02',
        },
        {
          source: 'cliniko',
          externalId: 'c61',
          firstName: 'Mike',
          lastName: 'Jonson',
          email: 'mj@example.com',
          dateOfBirth: '1970-02-02',
        },
      ]);
      await writeIdentities(db, OTHER, [
        { source: 'cliniko', externalId: 'c1', firstName: 'Ann', lastName: 'Other', phoneRaw: '0400 000 001' },
      ]);
      await writeConversation(db, ORG, 'chatwoot', 'conv-w10', 'w10');
      links = await patientOf(db, ORG);
      otherPatient = (await patientOf(db, OTHER)).get('cliniko:c1')!;
    } finally {
      await db.close();
    }
  });

  afterAll(async () => {
    await target?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // A child process per outcome (exit 0, 1, 3: codes and the stdout/stderr split as a user sees them), the other
  // invocations through the CLI's entry in this process (same command code, a database open per command). Each step
  // builds on the one before (vitest runs them in order).
  const child = (args: string[]) => routiq(['patients', ...args, '--config', config], env);
  const db = (args: string[]) => routiqInProcess(['patients', ...args, '--config', config], env);

  it('duplicates --json lists the planted near-duplicate with its score and identities', async () => {
    const dup = await child(['duplicates', '--org', ORG, '--json']);
    expect(dup.code, dup.stderr).toBe(0);
    const list = JSON.parse(dup.stdout);
    const planted = list.duplicates.find(
      (d: { patient_ids: string[] }) =>
        d.patient_ids.includes(links.get('cliniko:c60')!) && d.patient_ids.includes(links.get('cliniko:c61')!),
    );
    expect(planted.score).toBeGreaterThanOrEqual(0.75);
    expect(planted.identities).toEqual(
      expect.arrayContaining([
        { source: 'cliniko', external_id: 'c60' },
        { source: 'cliniko', external_id: 'c61' },
      ]),
    );
  });

  it('reconcile: a dry run plans the merge, a real run applies it with an audit id', async () => {
    const dry = await db(['reconcile', '--org', ORG, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, scope: 'all', merges: [expect.any(Object)] });
    // Around what was written since the last pass (every identity here): the same plan.
    const near = await db(['reconcile', '--org', ORG, '--changed', '--dry-run', '--json']);
    expect(near.code, near.stderr).toBe(0);
    expect(JSON.parse(near.stdout)).toMatchObject({ scope: 'changed', merges: JSON.parse(dry.stdout).merges });

    const rec = await db(['reconcile', '--org', ORG, '--json']);
    expect(rec.code, rec.stderr).toBe(0);
    const applied = JSON.parse(rec.stdout);
    expect(applied.merges).toHaveLength(1);
    expect(applied.merges[0].audit_id).toMatch(/^\d+$/);
    // The pass cleared the marks: nothing was written since.
    const after = await db(['reconcile', '--org', ORG, '--changed', '--json']);
    expect(JSON.parse(after.stdout)).toMatchObject({ scope: 'changed', marked: 0, merges: [] });
  });

  it('duplicates as text: a table on stdout, the count on stderr', async () => {
    const text = await db(['duplicates', '--org', ORG]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^score\s+band\s+patient\s+patient\s+identities\s+why$/m);
    expect(text.stdout).toMatch(/cliniko:c6[01] ~ cliniko:c6[01]/);
    expect(text.stderr).toMatch(/^1 likely duplicate pair\(s\) among 5 identities of org_cli$/m);
  });

  it('merge by hand, a second merge is refused, unmerge by patient id', async () => {
    const from = links.get('cliniko:c61')!;
    const into = links.get('cliniko:c60')!;
    const merge = await db(['merge', from, into, '--org', ORG, '--reason', 'same person, typo', '--json']);
    expect(merge.code, merge.stderr).toBe(0);
    expect(JSON.parse(merge.stdout)).toMatchObject({ from, into, identity_ids: [expect.any(String)] });

    const again = await child(['merge', from, into, '--org', ORG, '--reason', 'twice']);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/already merged into/);

    const unmerge = await db(['unmerge', from, '--org', ORG, '--reason', 'different people']);
    expect(unmerge.code, unmerge.stderr).toBe(0);
    expect(unmerge.stdout).toMatch(/^undid merge #\d+: patient .* is separate from .* again/);
  });

  it("refuses another organization's patient; the unmerged pair is no longer listed", async () => {
    const cross = await child(['merge', otherPatient, links.get('cliniko:c60')!, '--org', ORG, '--reason', 'x']);
    expect(cross.code).toBe(3);
    expect(cross.stdout).toBe('');
    expect(cross.stderr).toMatch(/^RQ1008 no patient .* in organization "org_cli"/);

    const after = await db(['duplicates', '--org', ORG]);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe('');
    expect(after.stderr).toMatch(/^0 likely duplicate pair\(s\) .*; 1 pair\(s\) kept apart by an unmerge not listed$/m);
  });
});
