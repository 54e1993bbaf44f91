/**
 * `routiq credentials set|list|rotate|delete`: the encrypted per-organization credential store
 * (docs/security.md). A value is read from stdin or from a named environment variable, never from the command
 * line (argv is visible to every user of the machine through ps); nothing this command prints contains one.
 */
import { parseArgs } from 'node:util';
import {
  CLI_CORRELATION_ID,
  cliActor,
  deleteCredential,
  ensureOrganization,
  listCredentials,
  loadConnector,
  type RoutiqConfig,
  RoutiqError,
  requireKeyRing,
  rotateCredentials,
  setCredential,
} from '@routiq/runner';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out, table } from '../output.ts';

export const CREDENTIALS_HELP = `Usage: routiq credentials <sub-command> [options]

The encrypted credential store: per organization and connection, each secret setting of its connector, sealed with
AES-256-GCM under ROUTIQ_ENCRYPTION_KEYS ("id:base64key,…", the first key seals; docs/security.md). A connection
reads it when its config says credential_store: true.

  set ORG CONNECTION NAME [--from-env VAR]   store a value read from stdin (one trailing newline dropped) or VAR
  list [--org ID] [--connection NAME]        names, key ids, versions (never a value)
  rotate [--batch-size N]                    re-seal every value under the first key, online (syncs keep running)
  delete ORG CONNECTION NAME                 remove one stored value

Common options: --config FILE, --json. Values never appear on the command line, in output or in logs.
Examples:
  printf %s "$NEW_KEY" | routiq credentials set org_a cliniko api_key
  routiq credentials set org_a chatwoot api_access_token --from-env CHATWOOT_TOKEN
  ROUTIQ_ENCRYPTION_KEYS="k2:…,k1:…" routiq credentials rotate
Exit codes: 0 ok, 1 rotation left values it could not open or delete found nothing, 2 usage, 3 config or keys,
4 database.`;

function usage(message: string): never {
  throw new RoutiqError('RQ6001', `${message} (usage: routiq credentials help)`);
}

const COMMON = { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } as const;

/** The connection must be configured and the name one of its connector's secret settings. */
function checkTarget(config: RoutiqConfig, org: string, connection: string, name: string) {
  const o = config.organizations.find((x) => x.id === org);
  if (!o) throw new RoutiqError('RQ1008', `organization "${org}" is not configured in ${config.file}`);
  const c = o.connections.find((x) => x.name === connection);
  if (!c)
    throw new RoutiqError(
      'RQ1007',
      `organization ${org} has no connection "${connection}" (connections: ${o.connections.map((x) => x.name).join(', ')})`,
    );
  const { spec } = loadConnector(config.connectorsDir, c.connector);
  const secrets = Object.entries(spec.connection.properties)
    .filter(([, p]) => p.secret)
    .map(([k]) => k);
  if (!secrets.includes(name))
    throw new RoutiqError(
      'RQ1007',
      `"${name}" is not a secret setting of connector ${spec.name} (secret settings: ${secrets.join(', ') || 'none'})`,
    );
  return o;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function set(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...COMMON, 'from-env': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 3) usage('credentials set takes ORG CONNECTION NAME (the value comes from stdin)');
  const [org, connection, name] = positionals as [string, string, string];
  const { config } = loadContext(values.config);
  const ring = requireKeyRing(process.env, 'routiq credentials set');
  const o = checkTarget(config, org, connection, name);
  let value: string;
  const from = values['from-env'];
  if (from !== undefined) {
    value = process.env[from] ?? '';
    if (!value) usage(`--from-env ${from}: the variable is not set or empty`);
  } else {
    if (process.stdin.isTTY) usage('pipe the value on stdin, or name a variable with --from-env VAR');
    value = await readStdin();
    if (!value) usage('stdin was empty: nothing to store');
  }
  const r = await withDatabase(config, async (db) => {
    await ensureOrganization(db, o);
    return setCredential(db, ring, { organizationId: org, connection, name }, value, {
      actor: cliActor(),
      correlationId: CLI_CORRELATION_ID,
    });
  });
  if (values.json) out(JSON.stringify({ organization_id: org, connection, name, key_id: ring.primary, ...r }));
  else
    err(
      `${r.created ? 'stored' : 'replaced'} ${org}/${connection}/${name} (version ${r.version}, key ${ring.primary})`,
    );
  return ExitCode.Ok;
}

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...COMMON, org: { type: 'string' }, connection: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length) usage('credentials list takes no arguments; use --org / --connection');
  const { config } = loadContext(values.config);
  const rows = await withDatabase(config, (db) =>
    listCredentials(db, { organizationId: values.org, connection: values.connection }),
  );
  if (values.json) {
    out(
      JSON.stringify(
        rows.map((r) => ({
          organization_id: r.organizationId,
          connection: r.connection,
          name: r.name,
          key_id: r.keyId,
          version: r.version,
          updated_at: r.updatedAt,
        })),
        null,
        2,
      ),
    );
  } else if (rows.length) {
    out(
      table(
        rows.map((r) => [r.organizationId, r.connection, r.name, r.keyId, r.version, r.updatedAt]),
        ['org', 'connection', 'name', 'key', 'version', 'updated'],
      ),
    );
  } else err('no stored credentials matched');
  return ExitCode.Ok;
}

async function rotate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...COMMON, 'batch-size': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length) usage('credentials rotate takes no arguments');
  const batch = values['batch-size'] === undefined ? 100 : Number(values['batch-size']);
  if (!Number.isInteger(batch) || batch < 1) usage('--batch-size must be a positive integer');
  const { config } = loadContext(values.config);
  const ring = requireKeyRing(process.env, 'routiq credentials rotate');
  const r = await withDatabase(config, (db) =>
    rotateCredentials(db, ring, { actor: cliActor(), correlationId: CLI_CORRELATION_ID }, { batchSize: batch }),
  );
  if (values.json) out(JSON.stringify({ key_id: ring.primary, ...r }, null, 2));
  else {
    err(`re-sealed ${r.rotated} credential(s) under key ${ring.primary}; ${r.remaining} still under another key`);
    for (const f of r.failed) err(`  ${f.credential}: ${f.reason}`);
    if (r.remaining === 0) err('every credential is under the first key: older keys may now be removed');
  }
  return r.failed.length || r.remaining ? ExitCode.Failure : ExitCode.Ok;
}

async function remove(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true, strict: true });
  if (positionals.length !== 3) usage('credentials delete takes ORG CONNECTION NAME');
  const [org, connection, name] = positionals as [string, string, string];
  const { config } = loadContext(values.config);
  const done = await withDatabase(config, (db) =>
    deleteCredential(
      db,
      { organizationId: org, connection, name },
      { actor: cliActor(), correlationId: CLI_CORRELATION_ID },
    ),
  );
  if (values.json) out(JSON.stringify({ organization_id: org, connection, name, deleted: done }));
  else err(done ? `deleted ${org}/${connection}/${name}` : `no stored credential ${org}/${connection}/${name}`);
  return done ? ExitCode.Ok : ExitCode.Failure;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'set':
      return set(rest);
    case 'list':
      return list(rest);
    case 'rotate':
      return rotate(rest);
    case 'delete':
      return remove(rest);
    case 'help':
      out(CREDENTIALS_HELP);
      return ExitCode.Ok;
    case undefined:
      return usage('a sub-command is required');
    default:
      return usage(`unknown sub-command "${sub}"`);
  }
}
