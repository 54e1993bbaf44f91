import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import '@routiq/sdk';
import { describe, expect, it } from 'vitest';
import { connectorsDir } from '../../../test/helpers/engine.ts';
import { runConnectorTest } from './connector-tests.ts';

const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const spec = readFileSync(path.join(CONNECTORS, 'chatwoot/connector.yaml'), 'utf8').replace(
  '$schema=../../schemas/',
  `$schema=${path.resolve(CONNECTORS, '../schemas')}/`,
);

function withCase(text: string): { dir: string; file: string } {
  const dir = connectorsDir({ chatwoot: spec });
  mkdirSync(path.join(dir, 'chatwoot/tests'));
  const file = path.join(dir, 'chatwoot/tests/case.yaml');
  writeFileSync(file, text);
  return { dir, file };
}

describe('connector data tests', () => {
  it('report a wrong field, a missing row and an unexpected failure, each on its own line', async () => {
    const { dir, file } = withCase(`stream: contacts
response: { payload: [ { id: 1, name: "Ana Lima", email: "a@x.io" }, { name: "no id" } ] }
expect:
  rows:
    patient_identities:
      - { external_id: "1", last_name: "Lima", email: "other@x.io" }
      - { external_id: "2" }
`);
    const r = await runConnectorTest(dir, 'chatwoot', file);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'patient_identities: expected 2 row(s), got 1',
      'patient_identities[0].email: expected "other@x.io", got "a@x.io"',
      'expected 0 failure(s), got 1: RQ5007 contacts: primary key id is missing',
    ]);
  });

  it('read a response through the stream records path, so a typo there fails the test', async () => {
    const { dir, file } = withCase(`stream: conversations
response: { data: { payload: [ { id: 5, status: open, inbox_id: 1, channel: "Channel::Api", meta: { sender: { id: 9, name: "Bo" } } } ] } }
expect:
  rows:
    conversations: [ { external_id: "5", status: open, channel: api, patient_external_id: "9" } ]
    patient_identities: [ { external_id: "9", first_name: Bo } ]
`);
    expect((await runConnectorTest(dir, 'chatwoot', file)).problems).toEqual([]);
    const typo = withCase(readFileSync(file, 'utf8'));
    writeFileSync(
      path.join(typo.dir, 'chatwoot/connector.yaml'),
      spec.replace('records: data.payload', 'records: data.payloads'),
    );
    const r = await runConnectorTest(typo.dir, 'chatwoot', typo.file);
    expect(r.problems).toContain('conversations: expected 1 row(s), got 0');
  });
});
