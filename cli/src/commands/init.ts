/**
 * `routiq init connector <name>`: a connector folder that lints clean and runs in the workbench from the first
 * minute: the spec (with the schema modeline), a README to fill in, fixtures/ for recordings, a data test and a
 * hooks.ts with one example hook. docs/adding-a-connector.md walks on from there.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RoutiqError } from '@routiq/runner';
import { loadContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

export const INIT_HELP = `Usage: routiq init connector <name> [--config FILE] [--force]

Scaffolds connectors/<name>/ (the config's connectors_dir): connector.yaml with the schema modeline, README.md,
fixtures/, tests/contacts.yaml (records in → rows out, run by npm test) and hooks.ts (connector-local hooks).
Then: edit the spec, \`routiq lint\`, \`routiq connector test <name>\`. Guide: docs/adding-a-connector.md.
Examples:
  routiq init connector intercom && routiq lint connectors/intercom && routiq connector test intercom
  routiq init connector intercom --force      # overwrite the scaffold's files`;

export function scaffold(name: string, dir: string, schemaRel: string): Record<string, string> {
  const title = name.charAt(0).toUpperCase() + name.slice(1);
  return {
    'connector.yaml': `# yaml-language-server: $schema=${schemaRel}
# ${title}. What this spec reads, and the platform's traps it handles: README.md beside this file.
spec_version: 1
name: ${name}
version: 0.1.0
title: ${title}
description: Contacts from ${title} (fill in what the connector syncs).

connection:
  properties:
    base_url:
      type: string
      format: uri
      description: API base URL (the simulator's in tests).
    api_token:
      type: string
      secret: true
      description: An API token with read access.
  required: [base_url, api_token]

base_url: "{{ $config.base_url }}"

auth:
  type: bearer
  token: "{{ $secrets.api_token }}"

request:
  headers:
    Accept: application/json

streams:
  - name: contacts
    description: Every contact, oldest change first.
    request:
      path: /contacts
      params: { per_page: 50 }
    records: data
    pagination: { type: page_number, size: 50, param: page }
    incremental:
      cursor_field: updated_at
      type: datetime
      order: asc
      lookback: PT1M
      send:
        params: { updated_since: "{{ $cursor }}" }
    map:
      - target: patient_identities
        expression: |
          {
            "external_id": $string(id),
            "display_name": name,
            "email": email ? email : null,
            "phone": phone ? phone : null,
            "metadata": { "updated_at": updated_at }
          }
`,
    'README.md': `# ${title} connector

What it syncs, from which endpoints, and the platform's traps (rate limits, pagination quirks, deletions) the
spec handles. Settings: see \`connection\` in connector.yaml.

- Test it: \`routiq connector test ${name}\` (interactive), \`--record\` to save fixtures, \`--replay --json\` in CI.
- Data tests: tests/*.yaml (records in → unified rows out), run by \`npm test\`.
- Hooks: hooks.ts (named \`${name}.*\`), for what YAML cannot express.
`,
    'fixtures/README.md': `Recorded exchanges (\`routiq connector test ${name} --record\` writes workbench.json here; credentials are
never stored). \`routiq connector test ${name} --replay\` serves them offline.
`,
    'tests/contacts.yaml': `# Records in, unified rows out (docs/adding-a-connector.md). Run by npm test.
stream: contacts
response:
  data:
    - { id: 1, name: "Ana Lima", email: "ana@example.com", phone: "+61412345678", updated_at: "2026-01-02T03:04:05Z" }
expect:
  rows:
    patient_identities:
      - { external_id: "1", display_name: "Ana Lima", email: "ana@example.com", phone: "+61412345678" }
`,
    'hooks.ts': `/**
 * ${title}'s own hooks, registered by name when the connector is loaded (no SDK edit). A stream names one under
 * \`hooks:\` (before_request, after_fetch, after_map). Keep each entry as '<name>': { kind: '<kind>', … }: lint reads them.
 */
import { type AfterFetchHook, defineHooks } from '@routiq/sdk';

/** Example: drop records the platform marks as test data. */
const dropTestRecords: AfterFetchHook = (records) =>
  records.filter((r) => !(r && typeof r === 'object' && (r as { test?: unknown }).test === true));

export default defineHooks({
  '${name}.drop_test_records': {
    kind: 'after_fetch',
    fn: dropTestRecords,
    description: 'Drops records flagged test: true',
  },
});
`,
  };
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, force: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const [what, name] = positionals;
  if (what !== 'connector' || !name || positionals.length > 2)
    throw new RoutiqError('RQ6001', `usage: routiq init connector <name>\n${INIT_HELP}`);
  if (!/^[a-z][a-z0-9_]*$/.test(name))
    throw new RoutiqError('RQ6001', `connector names are lower-case letters, digits and _ (got "${name}")`);
  const { config } = loadContext(values.config);
  const dir = path.join(config.connectorsDir, name);
  if (existsSync(dir) && !values.force)
    throw new RoutiqError(
      'RQ6001',
      `${path.relative(process.cwd(), dir)} exists; --force overwrites the scaffold's files`,
    );
  const schema = path.relative(dir, path.resolve(import.meta.dirname, '../../../schemas/connector.schema.json'));
  for (const [file, text] of Object.entries(scaffold(name, dir, schema.split(path.sep).join('/')))) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
    out(path.relative(process.cwd(), path.join(dir, file)));
  }
  err(
    `next: routiq lint ${path.relative(process.cwd(), dir)} · routiq connector test ${name} --org <id> (add a connection to the config) · docs/adding-a-connector.md`,
  );
  return ExitCode.Ok;
}
