/**
 * Connector tests as data: `connectors/<name>/tests/*.yaml`, each a stream's input (raw records, or a whole response
 * body read through the stream's `records` path) and the unified rows (and failures) it must map to. They run
 * through the engine's own mapping and validation, without a database or a network: cheap enough for every
 * connector on every `npm test`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HookContext } from '@routiq/sdk';
import { parse } from 'yaml';
import { mapRecords } from '../engine/map.ts';
import { extractRecords } from '../engine/paginate.ts';
import { RoutiqError } from '../errors/registry.ts';
import { scopeBindings } from '../spec/bindings.ts';
import { loadConnectorHooks } from '../spec/hooks-file.ts';
import { loadConnector } from '../spec/load.ts';

export interface ConnectorTestCase {
  /** The file, for messages. */
  file: string;
  stream: string;
  description?: string;
  records?: unknown[];
  response?: unknown;
  /** `$parent` of a child stream's records. */
  parent?: unknown;
  /** The connection's settings (`$config`), e.g. a base URL a mapping reads. */
  config?: Record<string, unknown>;
  expect: {
    /** Per unified table, the rows in order; each lists the fields it checks (others are not compared). */
    rows?: Record<string, Array<Record<string, unknown>>>;
    /** Records that must fail, in order, by code (and optionally a piece of the message). */
    failures?: Array<{ code: string; message?: string }>;
  };
}

export interface ConnectorTestResult {
  file: string;
  stream: string;
  ok: boolean;
  /** What differs, one line each. */
  problems: string[];
  rows: Record<string, Array<Record<string, unknown>>>;
  failures: Array<{ code: string; message: string }>;
}

export function listConnectorTests(connectorsDir: string, connector: string): string[] {
  const dir = path.join(connectorsDir, connector, 'tests');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => path.join(dir, f));
}

export function loadConnectorTest(file: string): ConnectorTestCase {
  const doc = parse(readFileSync(file, 'utf8')) as Partial<ConnectorTestCase> | null;
  if (
    !doc ||
    typeof doc.stream !== 'string' ||
    !doc.expect ||
    (doc.records === undefined && doc.response === undefined)
  )
    throw new RoutiqError(
      'RQ6106',
      `${file}: a connector test needs \`stream\`, \`records\` or \`response\`, and \`expect\``,
    );
  return { ...doc, file } as ConnectorTestCase;
}

/** Every key of `want` equal (deeply) in `got`. */
function subsetProblems(want: unknown, got: unknown, at: string): string[] {
  if (want && typeof want === 'object' && !Array.isArray(want)) {
    if (!got || typeof got !== 'object' || Array.isArray(got))
      return [`${at}: expected an object, got ${JSON.stringify(got)}`];
    return Object.entries(want).flatMap(([k, v]) =>
      subsetProblems(v, (got as Record<string, unknown>)[k], `${at}.${k}`),
    );
  }
  if (JSON.stringify(want) === JSON.stringify(got ?? null)) return [];
  return [`${at}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`];
}

const noDb: HookContext['db'] = {
  query: async () => {
    throw new RoutiqError('RQ6101', 'a connector test has no database: hooks cannot query it');
  },
};

export async function runConnectorTest(
  connectorsDir: string,
  connector: string,
  file: string,
): Promise<ConnectorTestResult> {
  const t = loadConnectorTest(file);
  const { spec } = loadConnector(connectorsDir, connector);
  await loadConnectorHooks(connectorsDir, connector);
  const s = spec.streams.find((x) => x.name === t.stream);
  if (!s)
    throw new RoutiqError(
      'RQ6106',
      `${file}: connector ${connector} has no stream "${t.stream}" (streams: ${spec.streams.map((x) => x.name).join(', ')})`,
    );
  const base = {
    config: t.config ?? {},
    connector: spec.name,
    org: { id: 'org_test', name: 'Test', default_country: 'AU', timezone: 'UTC' },
  };
  const records =
    t.records ?? (await extractRecords(t.response, s.records, scopeBindings('data', { ...base, parent: t.parent })));
  const hookContext = (): HookContext => ({
    organizationId: 'org_test',
    connector: spec.name,
    stream: s.name,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    db: noDb,
    settings: {},
    defaultCountry: 'AU',
  });
  const { parents, dead } = await mapRecords(
    {
      stream: s.name,
      maps: s.map,
      primaryKey: s.primary_key,
      bindings: scopeBindings('mapping', { ...base, parent: t.parent }),
      afterMap: s.hooks?.after_map,
      hookContext,
      requireKey: true,
    },
    records,
  );
  const rows: ConnectorTestResult['rows'] = {};
  for (const p of parents)
    for (const r of p.rows) {
      const list = rows[r.target] ?? [];
      list.push(r.row);
      rows[r.target] = list;
    }
  const failures = dead.map((d) => ({ code: d.code, message: d.message }));
  const problems: string[] = [];
  const want = t.expect.rows ?? {};
  for (const target of new Set([...Object.keys(want), ...Object.keys(rows)])) {
    const w = want[target] ?? [];
    const g = rows[target] ?? [];
    if (w.length !== g.length) problems.push(`${target}: expected ${w.length} row(s), got ${g.length}`);
    w.forEach((row, i) => {
      if (i < g.length) problems.push(...subsetProblems(row, g[i], `${target}[${i}]`));
    });
  }
  const wf = t.expect.failures ?? [];
  if (wf.length !== failures.length)
    problems.push(
      `expected ${wf.length} failure(s), got ${failures.length}${failures.length ? `: ${failures.map((f) => `${f.code} ${f.message}`).join('; ')}` : ''}`,
    );
  wf.forEach((f, i) => {
    const g = failures[i];
    if (!g) return;
    if (g.code !== f.code) problems.push(`failures[${i}]: expected ${f.code}, got ${g.code} ${g.message}`);
    if (f.message && !g.message.includes(f.message))
      problems.push(`failures[${i}]: message "${g.message}" does not contain "${f.message}"`);
  });
  return { file, stream: s.name, ok: problems.length === 0, problems, rows, failures };
}
