/**
 * `lintConfigText`: the config-file checks of loadConfig (YAML, config.schema.json, duplicate organizations and
 * connections, literal secrets and passwords: config/checks.ts), but reporting every problem at its own line:col
 * instead of throwing. With a connectors directory it also checks each connection against its connector's
 * `connection.properties`. No finding repeats a secret value.
 */
import { staticConfigProblems, withoutSecrets } from '../config/checks.ts';
import { type Finding, Findings, normalizeFindings, show } from './finding.ts';
import { prepared, validateAgainst } from './schema.ts';
import { schemaFindings } from './schema-findings.ts';
import { SourceFile } from './source.ts';
import { yamlFindings } from './yaml-findings.ts';

export interface LintConfigOptions {
  /** Folder of `<connector>/connector.yaml`; when given, connections are checked against their connector. */
  connectorsDir?: string | undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function lintConfigText(text: string, file: string, opts: LintConfigOptions = {}): Finding[] {
  const out = new Findings(file);
  const src = new SourceFile(text, file);
  if (yamlFindings(src, out, { syntax: 'RQ1002', duplicateKey: 'RQ1002' })) return normalizeFindings(out.list);
  const data = src.value ?? {};
  if (!isObj(data)) {
    out.add('RQ1003', 'error', src.keyPos([]), [], 'the configuration must be a mapping of keys');
    return normalizeFindings(out.list);
  }
  const codes = {
    unknownKey: 'RQ1003',
    missingKey: 'RQ1003',
    wrongType: 'RQ1003',
    badEnum: 'RQ1003',
    unknownVariant: 'RQ1003',
    invalidValue: 'RQ1003',
  };
  // Validated and described without the secrets: a message that quotes a value must not quote a secret.
  const shown = withoutSecrets(data) as Obj;
  schemaFindings(
    validateAgainst('config.schema.json', structuredClone(shown)),
    prepared('config.schema.json').schema,
    shown,
    src,
    out,
    codes,
  );
  for (const pr of staticConfigProblems(data, { connectorsDir: opts.connectorsDir })) {
    out.add(pr.code, 'error', pr.at === 'key' ? src.keyPos(pr.path) : src.valuePos(pr.path), pr.path, pr.message);
  }

  const orgIds = new Map<string, number>();
  asArr(data.organizations).forEach((o, i) => {
    if (!isObj(o)) return;
    if (typeof o.id === 'string') {
      const prev = orgIds.get(o.id);
      if (prev !== undefined) {
        const p = ['organizations', i, 'id'];
        out.add(
          'RQ1003',
          'error',
          src.valuePos(p),
          p,
          `organizations[${i}].id ${show(o.id)} is used twice (first by organizations[${prev}])`,
        );
      } else orgIds.set(o.id, i);
    }
    const names = new Map<string, number>();
    asArr(o.connections).forEach((c, j) => {
      if (!isObj(c)) return;
      const name = typeof c.name === 'string' ? c.name : c.connector;
      if (typeof name !== 'string') return;
      const prev = names.get(name);
      const p = ['organizations', i, 'connections', j];
      if (prev !== undefined) {
        out.add(
          'RQ1003',
          'error',
          src.keyPos(p),
          p,
          `${`organizations[${i}].connections[${j}]`}: connection name ${show(name)} is used twice; set a distinct name`,
        );
      } else names.set(name, j);
    });
  });
  return normalizeFindings(out.list);
}
