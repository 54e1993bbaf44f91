/**
 * `lintConfigText`: the config-file checks of loadConfig (YAML, config.schema.json, duplicate organizations and
 * connections), but reporting every problem at its own line:col instead of throwing the first. With a
 * connectors directory it also checks each connection against its connector's `connection.properties`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { type Finding, Findings, normalizeFindings, show } from './finding.ts';
import { prepared, validateAgainst } from './schema.ts';
import { schemaFindings } from './schema-findings.ts';
import { SourceFile } from './source.ts';
import { suggestion } from './suggest.ts';
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
  schemaFindings(
    validateAgainst('config.schema.json', structuredClone(data)),
    prepared('config.schema.json').schema,
    data,
    src,
    out,
    codes,
  );

  const cache = new Map<string, ConnectorSettings | null>();
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
      if (opts.connectorsDir && typeof c.connector === 'string')
        checkConnection(c, p, opts.connectorsDir, src, out, cache);
    });
  });
  return normalizeFindings(out.list);
}

interface ConnectorSettings {
  props: Obj;
  required: string[];
}

/** The connection settings a connector declares, or null when it does not exist. */
function connectorSettings(
  dir: string,
  connector: string,
  cache: Map<string, ConnectorSettings | null>,
): ConnectorSettings | null {
  const file = path.join(dir, connector, 'connector.yaml');
  const cached = cache.get(file);
  if (cached !== undefined) return cached;
  let settings: ConnectorSettings | null = null;
  if (existsSync(file)) {
    settings = { props: {}, required: [] };
    try {
      const spec = parseDocument(readFileSync(file, 'utf8')).toJS() as unknown;
      const conn = isObj(spec) && isObj(spec.connection) ? spec.connection : {};
      if (isObj(conn.properties)) settings.props = conn.properties;
      settings.required = asArr(conn.required).filter((x): x is string => typeof x === 'string');
    } catch {
      // A broken connector is reported when the connector itself is linted.
    }
  }
  cache.set(file, settings);
  return settings;
}

function checkConnection(
  c: Obj,
  p: Array<string | number>,
  dir: string,
  src: SourceFile,
  out: Findings,
  cache: Map<string, ConnectorSettings | null>,
): void {
  const connector = c.connector as string;
  const settings = connectorSettings(dir, connector, cache);
  if (settings === null) {
    const known = existsSync(dir)
      ? readdirSync(dir).filter((d) => existsSync(path.join(dir, d, 'connector.yaml')))
      : [];
    const at = [...p, 'connector'];
    out.add(
      'RQ1006',
      'error',
      src.valuePos(at),
      at,
      `connector ${show(connector)} does not exist in ${path.basename(dir)}/${suggestion(connector, known) || (known.length ? `; connectors are ${known.join(', ')}` : '')}`,
    );
    return;
  }
  const props = settings.props;
  const isSecret = (k: string): boolean => isObj(props[k]) && (props[k] as Obj).secret === true;
  const config = isObj(c.config) ? c.config : {};
  const secrets = isObj(c.secrets) ? c.secrets : {};
  for (const [k, v] of Object.entries(config)) {
    const at = [...p, 'config', k];
    if (!(k in props)) {
      const names = Object.keys(props).filter((x) => !isSecret(x));
      out.add(
        'RQ1007',
        'error',
        src.keyPos(at),
        at,
        `config.${k} is not a setting of connector ${show(connector)}${suggestion(k, names)}`,
      );
    } else if (isSecret(k)) {
      out.add(
        'RQ1007',
        'error',
        src.keyPos(at),
        at,
        `${k} is a secret of connector ${show(connector)}: put it under secrets: as \${ENV_VAR}, never in config:`,
      );
    } else {
      const want = (props[k] as Obj).type;
      const got = typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
      const ok = want === got || (want === 'number' && got === 'integer');
      if (typeof want === 'string' && !ok) {
        out.add(
          'RQ1007',
          'error',
          src.valuePos(at),
          at,
          `config.${k} must be ${want === 'integer' ? 'an integer' : `a ${want}`}, got ${show(v)}`,
        );
      }
    }
  }
  for (const k of Object.keys(secrets)) {
    const at = [...p, 'secrets', k];
    if (!(k in props)) {
      const names = Object.keys(props).filter(isSecret);
      out.add(
        'RQ1007',
        'error',
        src.keyPos(at),
        at,
        `secrets.${k} is not a setting of connector ${show(connector)}${suggestion(k, names)}`,
      );
    } else if (!isSecret(k)) {
      out.add(
        'RQ1007',
        'error',
        src.keyPos(at),
        at,
        `${k} is not a secret of connector ${show(connector)}: put it under config:`,
      );
    }
  }
  const missing = settings.required.filter(
    (k) => !(k in config) && !(k in secrets) && !(isObj(props[k]) && 'default' in (props[k] as Obj)),
  );
  if (missing.length) {
    out.add(
      'RQ1007',
      'error',
      src.keyPos(p),
      p,
      `connection to ${show(connector)} is missing required setting${missing.length > 1 ? 's' : ''} ${missing.map((m) => `${isSecret(m) ? 'secrets' : 'config'}.${m}`).join(', ')}`,
    );
  }
}
