/**
 * The static checks of a configuration file beyond its JSON schema, shared by loadConfig (start-up) and
 * `routiq lint` (findings): each connection's connector exists and its settings match the connector's
 * `connection` properties; secrets are only `${VAR}` references to variables that can hold a secret; no password
 * is written into a URL. Messages never repeat a secret value.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { show } from '../lint/finding.ts';
import { formatPath } from '../lint/source.ts';
import { suggestion } from '../lint/suggest.ts';
import { hasUrlPassword, redactUrlCredentials } from '../util/redact.ts';
import { notASecretVariable } from './environment.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export type ConfigPath = Array<string | number>;

export interface ConfigProblem {
  code: 'RQ1003' | 'RQ1006' | 'RQ1007';
  path: ConfigPath;
  /** Whether the problem is about the key itself or about its value. */
  at: 'key' | 'value';
  message: string;
}

/** The only form a secret takes in a config file. */
export const SECRET_REFERENCE = /^\$\{([A-Z_][A-Z0-9_]*)\}$/;

export interface StaticCheckOptions {
  /** Folder of `<connector>/connector.yaml`; without it connections are not checked against their connector. */
  connectorsDir?: string | undefined;
  /** How that folder is named in messages (default: its base name). */
  connectorsLabel?: string | undefined;
}

export function staticConfigProblems(data: unknown, opts: StaticCheckOptions = {}): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!isObj(data)) return out;
  databaseUrlProblems(data, out);
  asArr(data.organizations).forEach((o, i) => {
    if (!isObj(o)) return;
    alertProblems(o, i, out);
    asArr(o.connections).forEach((c, j) => {
      if (!isObj(c)) return;
      const p: ConfigPath = ['organizations', i, 'connections', j];
      secretProblems(c, p, out);
      if (opts.connectorsDir !== undefined && typeof c.connector === 'string') {
        const label = opts.connectorsLabel ?? `${path.basename(opts.connectorsDir)}/`;
        settingProblems(c, p, opts.connectorsDir, label, out);
      }
    });
  });
  return out;
}

/** The alert channel settings that are credentials (a Slack webhook URL, an SMTP URL with its password). */
function alertChannels(o: Record<string, unknown>): Array<[Record<string, unknown>, string]> {
  const a = o.alerts;
  if (!isObj(a)) return [];
  const out: Array<[Record<string, unknown>, string]> = [[a, 'slack_webhook_url']];
  if (isObj(a.email)) out.push([a.email, 'smtp_url']);
  return out;
}

/** An alerts block needs a channel; channel URLs only as ${ENV_VAR} (reported without their value). */
function alertProblems(o: Record<string, unknown>, i: number, out: ConfigProblem[]): void {
  const a = o.alerts;
  if (!isObj(a)) return;
  const base: ConfigPath = ['organizations', i, 'alerts'];
  if (a.slack_webhook_url === undefined && a.email === undefined)
    out.push({
      code: 'RQ1003',
      path: base,
      at: 'key',
      message: `${formatPath(base)} needs a channel: slack_webhook_url, email, or both`,
    });
  for (const [holder, key] of alertChannels(o)) {
    const v = holder[key];
    if (typeof v === 'string' && !SECRET_REFERENCE.test(v)) {
      const p: ConfigPath = holder === a ? [...base, key] : [...base, 'email', key];
      out.push({
        code: 'RQ1003',
        path: p,
        at: 'value',
        message: `${formatPath(p)} must be an \${ENV_VAR} reference: it is a credential (value not shown)`,
      });
    }
  }
}

/**
 * A copy fit for schema validation and for messages that echo values: literal secrets (reported by
 * staticConfigProblems without their value) become a harmless reference, and URL passwords are masked.
 */
export function withoutSecrets(data: unknown): unknown {
  const copy = maskUrls(data);
  if (!isObj(copy)) return copy;
  for (const o of asArr(copy.organizations)) {
    if (!isObj(o)) continue;
    for (const [holder, key] of alertChannels(o))
      if (typeof holder[key] === 'string' && !SECRET_REFERENCE.test(holder[key]))
        holder[key] = '${LITERAL_VALUE_NOT_SHOWN}';
    for (const c of asArr(o.connections)) {
      if (!isObj(c) || c.secrets === undefined) continue;
      if (!isObj(c.secrets)) {
        c.secrets = {};
        continue;
      }
      for (const [k, v] of Object.entries(c.secrets)) {
        if (typeof v !== 'string' || !SECRET_REFERENCE.test(v)) c.secrets[k] = '${LITERAL_VALUE_NOT_SHOWN}';
      }
    }
  }
  return copy;
}

function maskUrls(v: unknown): unknown {
  if (typeof v === 'string') return redactUrlCredentials(v);
  if (Array.isArray(v)) return v.map(maskUrls);
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskUrls(x)]));
  return v;
}

/** A suggested variable name for a secret setting: CLINIKO_API_KEY. */
function variableFor(c: Obj, key: string): string {
  const base = typeof c.connector === 'string' ? `${c.connector}_${key}` : key;
  return base.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

function secretProblems(c: Obj, p: ConfigPath, out: ConfigProblem[]): void {
  const secrets = c.secrets;
  if (secrets === undefined) return;
  const sp = [...p, 'secrets'];
  if (!isObj(secrets)) {
    out.push({
      code: 'RQ1003',
      path: sp,
      at: 'value',
      message: `${formatPath(sp)} must be a mapping of setting: \${ENV_VAR} references (its value is not shown)`,
    });
    return;
  }
  for (const [k, v] of Object.entries(secrets)) {
    const at = [...sp, k];
    const name = typeof v === 'string' ? SECRET_REFERENCE.exec(v)?.[1] : undefined;
    const suggested = variableFor(c, k);
    if (name === undefined) {
      out.push({
        code: 'RQ1003',
        path: at,
        at: 'value',
        message:
          v === null || v === ''
            ? `${formatPath(at)} has no value: write ${k}: \${${suggested}} and set ${suggested} in the environment`
            : `${formatPath(at)} is a literal value (not shown); secrets never appear in the config file: set it in the environment as ${suggested} and write ${k}: \${${suggested}}`,
      });
      continue;
    }
    const why = notASecretVariable(name);
    if (why) {
      out.push({
        code: 'RQ1003',
        path: at,
        at: 'value',
        message: `${formatPath(at)} references \${${name}}, but ${why}: reference the variable that holds this secret, e.g. \${${suggested}}`,
      });
    }
  }
}

/** `database.url` from the file may name a user, never a literal password (DATABASE_URL or a `${VAR}` may). */
function databaseUrlProblems(data: Obj, out: ConfigProblem[]): void {
  const url = isObj(data.database) ? data.database.url : undefined;
  if (typeof url !== 'string') return;
  const at = ['database', 'url'];
  const passwords: string[] = [];
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1];
  const colon = userinfo?.indexOf(':') ?? -1;
  if (userinfo !== undefined && colon >= 0) passwords.push(userinfo.slice(colon + 1));
  for (const m of url.matchAll(/[?&]password=([^&#]*)/gi)) passwords.push(m[1] ?? '');
  for (const pw of passwords.filter(Boolean)) {
    const name = SECRET_REFERENCE.exec(pw)?.[1];
    if (name === undefined) {
      out.push({
        code: 'RQ1003',
        path: at,
        at: 'value',
        message:
          'database.url holds a literal password (not shown): set DATABASE_URL in the environment instead, or write the password as a reference, e.g. postgresql://user:${DB_PASSWORD}@host/db',
      });
      return;
    }
    const why = notASecretVariable(name);
    if (why) {
      out.push({
        code: 'RQ1003',
        path: at,
        at: 'value',
        message: `database.url references \${${name}} as its password, but ${why}: reference the variable that holds the password`,
      });
    }
  }
}

// ---- connections against their connector ----

interface SettingDecl {
  type?: unknown;
  secret?: unknown;
  default?: unknown;
  enum?: unknown;
  pattern?: unknown;
  format?: unknown;
}

interface ConnectorSettings {
  props: Record<string, SettingDecl>;
  required: string[];
}

const settingsCache = new Map<string, { version: string; settings: ConnectorSettings | 'unreadable' }>();

/**
 * Only the `connection:` block of a connector, read cheaply (parse, no lint): start-up must not pay for linting
 * every spec, and a broken spec is reported with all its findings when it is loaded or linted.
 */
function connectorSettings(dir: string, connector: string): ConnectorSettings | 'missing' | 'unreadable' {
  const file = path.join(dir, connector, 'connector.yaml');
  if (!existsSync(file)) return 'missing';
  const st = statSync(file);
  const version = `${st.mtimeMs}:${st.size}`;
  const hit = settingsCache.get(file);
  if (hit?.version === version) return hit.settings;
  let settings: ConnectorSettings | 'unreadable' = 'unreadable';
  try {
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (!doc.errors.length) {
      const spec = doc.toJS({ maxAliasCount: 100 }) as unknown;
      const conn = isObj(spec) && isObj(spec.connection) ? spec.connection : {};
      const props = isObj(conn.properties) ? conn.properties : {};
      settings = {
        props: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, isObj(v) ? (v as SettingDecl) : {}])),
        required: asArr(conn.required).filter((x): x is string => typeof x === 'string'),
      };
    }
  } catch {
    // Reported when the connector itself is loaded or linted.
  }
  settingsCache.set(file, { version, settings });
  return settings;
}

export function knownConnectors(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'connector.yaml')))
    .map((d) => d.name)
    .sort();
}

function settingProblems(c: Obj, p: ConfigPath, dir: string, dirLabel: string, out: ConfigProblem[]): void {
  const connector = c.connector as string;
  const settings = connectorSettings(dir, connector);
  if (settings === 'unreadable') return;
  if (settings === 'missing') {
    const known = knownConnectors(dir);
    const list = known.length ? ` (known: ${known.join(', ')})` : ` (${dirLabel} holds no connectors)`;
    out.push({
      code: 'RQ1006',
      path: [...p, 'connector'],
      at: 'value',
      message: `connector ${show(connector)} does not exist in ${dirLabel}${suggestion(connector, known)}${list}`,
    });
    return;
  }
  const { props } = settings;
  const isSecret = (k: string): boolean => props[k]?.secret === true;
  const config = isObj(c.config) ? c.config : {};
  const secrets = isObj(c.secrets) ? c.secrets : {};
  const problem = (at: ConfigPath, which: 'key' | 'value', message: string) =>
    out.push({ code: 'RQ1007', path: at, at: which, message });

  for (const [k, v] of Object.entries(config)) {
    const at = [...p, 'config', k];
    const decl = props[k];
    if (!decl) {
      const names = Object.keys(props).filter((x) => !isSecret(x));
      problem(at, 'key', `config.${k} is not a setting of connector ${show(connector)}${suggestion(k, names)}`);
    } else if (isSecret(k)) {
      // The value is a secret written in the file: never repeat it.
      problem(
        at,
        'key',
        `${k} is a secret of connector ${show(connector)}: put it under secrets: as \${ENV_VAR}, never in config:`,
      );
    } else {
      const bad = valueProblem(k, v, decl);
      if (bad) problem(at, 'value', bad);
    }
  }
  for (const k of Object.keys(secrets)) {
    const at = [...p, 'secrets', k];
    if (!(k in props)) {
      const names = Object.keys(props).filter(isSecret);
      problem(at, 'key', `secrets.${k} is not a setting of connector ${show(connector)}${suggestion(k, names)}`);
    } else if (!isSecret(k)) {
      problem(at, 'key', `${k} is not a secret of connector ${show(connector)}: put it under config:`);
    }
  }
  // With the credential store on, secrets may live there: only the running connection can tell.
  const stored = c.credential_store === true;
  const missing = settings.required.filter(
    (k) =>
      !(k in config) && !(k in secrets) && !(stored && isSecret(k)) && !(props[k] && 'default' in (props[k] as Obj)),
  );
  if (missing.length) {
    problem(
      p,
      'key',
      `connection to ${show(connector)} is missing required setting${missing.length > 1 ? 's' : ''} ${missing.map((m) => `${isSecret(m) ? 'secrets' : 'config'}.${m}`).join(', ')}`,
    );
  }
}

/** The same checks the engine makes when the connection runs, made at start-up instead. */
function valueProblem(k: string, v: unknown, decl: SettingDecl): string | undefined {
  const shown = redactUrlCredentials(show(v));
  const want = decl.type;
  const got = typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
  if (typeof want === 'string' && !(want === got || (want === 'number' && got === 'integer'))) {
    return `config.${k} must be ${want === 'integer' ? 'an integer' : `a ${want}`}, got ${shown}`;
  }
  if (Array.isArray(decl.enum) && !decl.enum.includes(v)) {
    return `config.${k} must be one of ${decl.enum.map((x) => JSON.stringify(x)).join(', ')}, got ${shown}`;
  }
  if (typeof v !== 'string') return undefined;
  if (hasUrlPassword(v)) {
    return `config.${k} has a password in its URL (not shown): credentials go under secrets: as \${ENV_VAR} references`;
  }
  if (typeof decl.pattern === 'string' && !safeTest(decl.pattern, v)) {
    return `config.${k} ${shown} does not match ${decl.pattern}`;
  }
  if (decl.format === 'uri' && !URL.canParse(v)) return `config.${k} must be a URL, got ${shown}`;
  if (decl.format === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v)) {
    return `config.${k} must be an email address, got ${shown}`;
  }
  return undefined;
}

function safeTest(pattern: string, v: string): boolean {
  try {
    return new RegExp(pattern).test(v);
  } catch {
    return true; // a bad pattern is the spec's problem, reported by its lint
  }
}
