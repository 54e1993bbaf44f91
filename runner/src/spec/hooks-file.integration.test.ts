import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startChatwoot } from '@routiq/sandbox';
import { getHook } from '@routiq/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorsDir, org, silentLogger, testConfig } from '../../../test/helpers/engine.ts';
import { lintSpecText } from '../lint/index.ts';
import { testRead } from '../workbench/test-read.ts';
import { declaredHooks, loadConnectorHooks } from './hooks-file.ts';

/**
 * A connector folder ships its own hooks (hooks.ts, `export default defineHooks({…})`): lint knows them from the
 * file, the engine registers them when it opens the connector, and a before_request hook sees the cursor, the
 * parent and the page it builds.
 */
const CONNECTORS = path.resolve(import.meta.dirname, '../../../connectors');
const SDK = path.resolve(import.meta.dirname, '../../../sdk/src/index.ts');
const HOOKS = `import { defineHooks } from ${JSON.stringify(SDK)};
export default defineHooks({
  'chatwoot.trace': {
    kind: 'before_request',
    description: 'adds where the stream is to the query (test)',
    fn: (req, ctx) => ({
      ...req,
      searchParams: [
        ...req.searchParams,
        ['hook_page', String(ctx.pagination?.page)],
        ['hook_cursor', String(ctx.cursor ?? 'none')],
        ['hook_parent', String((ctx.parent as { id?: number } | undefined)?.id ?? 'none')],
      ],
    }),
  },
});
`;

function connectorWithHooks(): string {
  const spec = readFileSync(path.join(CONNECTORS, 'chatwoot/connector.yaml'), 'utf8')
    .replace('$schema=../../schemas/', `$schema=${path.resolve(CONNECTORS, '../schemas')}/`)
    .replace(
      '    records: payload\n    pagination: { type: id_window',
      '    records: payload\n    hooks: { before_request: chatwoot.trace }\n    pagination: { type: id_window',
    );
  const dir = connectorsDir({ chatwoot: spec });
  writeFileSync(path.join(dir, 'chatwoot/hooks.ts'), HOOKS);
  return dir;
}

describe('connector-local hooks (connectors/<name>/hooks.ts)', () => {
  let sim: Awaited<ReturnType<typeof startChatwoot>>;
  beforeAll(async () => {
    sim = await startChatwoot({ accounts: [{ accountId: 1, token: 'hooks-token-1234' }], seed: 3, scale: 1 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('lint reads the names and kinds from the file; a name it does not declare is still an error', () => {
    const dir = connectorWithHooks();
    expect(declaredHooks(path.join(dir, 'chatwoot'))).toEqual([{ name: 'chatwoot.trace', kind: 'before_request' }]);
    const file = path.join(dir, 'chatwoot/connector.yaml');
    const text = readFileSync(file, 'utf8');
    expect(lintSpecText(text, file).filter((f) => f.severity === 'error')).toEqual([]);
    const wrong = lintSpecText(text.replace('chatwoot.trace', 'chatwoot.trase'), file);
    expect(wrong.map((f) => [f.code, f.message])).toContainEqual([
      'RQ2053',
      expect.stringContaining('did you mean "chatwoot.trace"'),
    ]);
  });

  it('the engine registers them and a before_request hook gets the page, the cursor and the parent', async () => {
    const dir = connectorWithHooks();
    expect(await loadConnectorHooks(dir, 'chatwoot')).toEqual(['chatwoot.trace']);
    expect(getHook('chatwoot.trace', 'before_request')).toBeTypeOf('function');
    const o = org('org_hooks', [
      { connector: 'chatwoot', config: { base_url: sim.url, account_id: 1 }, secrets: { api_token: '${T}' } },
    ]);
    const report = await testRead({
      config: testConfig(dir, [o]),
      target: { kind: 'simulator', label: 'sim', org: o, conn: o.connections[0]!, env: { T: 'hooks-token-1234' } },
      streams: ['messages'],
      maxPages: 1,
      maxPartitions: 1,
      logger: silentLogger,
    });
    expect(report.ok, JSON.stringify(report.streams.map((s) => s.error))).toBe(true);
    const messages = report.streams.find((s) => s.stream === 'messages')!;
    const conversation = (report.streams.find((s) => s.stream === 'conversations')!.samples[0]!.raw as { id: number })
      .id;
    expect(messages.firstRequest?.url).toContain(`hook_page=1&hook_cursor=none&hook_parent=${conversation}`);
    // The next run starts after the newest message id: the hook sees that cursor.
    const saved = messages.partitions[0]!.cursor!.wouldSave;
    expect(messages.nextRun[0]!.url).toContain(`hook_cursor=${saved}&hook_parent=${conversation}`);
  });
});
