/**
 * Where a workbench test read goes: a configured organization's connection (real credentials from the environment,
 * the configured database read for stored cursors), the bundled simulator, or the fixtures recorded beside the
 * connector (replayed on loopback, fully offline).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type ConnectionConfig,
  type Database,
  type OrganizationConfig,
  openDatabase,
  type RoutiqConfig,
  RoutiqError,
  resolveSecrets,
  safeMessage,
} from '@routiq/runner';
import {
  BASE,
  type Cassette,
  type ReplayServer,
  startReplay,
  substituteBase,
  type TargetKind,
  type WorkbenchTarget,
} from '@routiq/runner/workbench';

/** Connectors with a bundled simulator (cli/src/workbench/simulators.ts). */
export const SIMULATED = ['calendly', 'chatwoot', 'cliniko', 'manychat'];

export interface TargetChoice {
  kind: TargetKind;
  /** `org/connection`, `simulator` or `fixtures`. */
  id: string;
  label: string;
}

export function fixturesFile(connectorsDir: string, connector: string): string {
  return path.join(connectorsDir, connector, 'fixtures', 'workbench.json');
}

export function listTargets(config: RoutiqConfig, connector: string): TargetChoice[] {
  const out: TargetChoice[] = [];
  for (const org of config.organizations)
    for (const c of org.connections)
      if (c.connector === connector)
        out.push({
          kind: 'connection',
          id: `${org.id}/${c.name}`,
          label: `${org.name} (${org.id}) / ${c.name}${c.enabled ? '' : ' (disabled)'}`,
        });
  if (SIMULATED.includes(connector))
    out.push({ kind: 'simulator', id: 'simulator', label: `the bundled ${connector} simulator` });
  const file = fixturesFile(config.connectorsDir, connector);
  if (existsSync(file))
    out.push({ kind: 'fixtures', id: 'fixtures', label: `recorded fixtures (${path.relative(process.cwd(), file)})` });
  return out;
}

export interface OpenedTarget {
  target: WorkbenchTarget;
  /** The configured database (connection targets), read-only for the test read; written only with --write. */
  db?: Database;
  replay?: ReplayServer;
  /** Settings as recorded in a cassette: the origin becomes {{BASE}}. */
  recordAs: { config: Record<string, unknown>; secrets: string[] };
  close(): Promise<void>;
}

const workbenchOrg = (connections: ConnectionConfig[]): OrganizationConfig => ({
  id: 'org_workbench',
  name: 'Connector workbench',
  defaultCountry: 'AU',
  timezone: 'UTC',
  settings: {},
  connections,
});

/** A connection whose secrets are `${ENV}` references to values only this process holds. */
function ownConnection(connector: string, config: Record<string, unknown>, secrets: Record<string, string>) {
  const env: NodeJS.ProcessEnv = {};
  const refs: Record<string, string> = {};
  for (const [k, v] of Object.entries(secrets)) {
    const name = `ROUTIQ_WORKBENCH_${k.toUpperCase()}`;
    env[name] = v;
    refs[k] = `\${${name}}`;
  }
  const conn: ConnectionConfig = {
    connector,
    name: connector,
    enabled: true,
    config,
    secrets: refs,
    allowInsecureHttp: false,
  };
  return { conn, env };
}

export async function openTarget(
  config: RoutiqConfig,
  connector: string,
  choice: TargetChoice,
  o: { useDatabase?: boolean; warn?: (s: string) => void } = {},
): Promise<OpenedTarget> {
  if (choice.kind === 'connection') {
    const [orgId, connName] = choice.id.split('/');
    const org = config.organizations.find((x) => x.id === orgId);
    const conn = org?.connections.find((c) => c.name === connName && c.connector === connector);
    if (!org || !conn)
      throw new RoutiqError('RQ1008', `no connection ${choice.id} of connector ${connector} in ${config.file}`);
    // A missing secret is reported before the database is opened (RQ1004 names the variable).
    resolveSecrets(conn, org.id, process.env);
    let db: Database | undefined;
    if (o.useDatabase !== false) {
      try {
        db = await openDatabase({
          url: config.database.url,
          embeddedDir: config.database.embeddedDir,
          poolMax: config.database.poolMax,
          schema: config.database.schema,
        });
      } catch (e) {
        o.warn?.(
          `the database (${config.database.url ? 'DATABASE_URL' : config.database.embeddedDir}) could not be opened, so stored cursors are not shown: ${safeMessage(e)}`,
        );
      }
    }
    return {
      target: { kind: 'connection', label: choice.label, org, conn, env: process.env },
      ...(db ? { db } : {}),
      recordAs: { config: conn.config, secrets: Object.keys(conn.secrets) },
      close: async () => {
        await db?.close();
      },
    };
  }
  if (choice.kind === 'simulator') {
    let sims: typeof import('./simulators.ts');
    try {
      sims = await import('./simulators.ts');
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ROUTIQ_DEV_ONLY' && code !== 'ERR_MODULE_NOT_FOUND') throw e;
      throw new RoutiqError(
        'RQ6001',
        'the simulators (@routiq/sandbox) are a development dependency this installation does not have; use --org or --replay',
      );
    }
    const start = sims.SIMULATORS[connector];
    if (!start) throw new RoutiqError('RQ6001', `there is no bundled simulator for ${connector}`);
    const sim = await start();
    const { conn, env } = ownConnection(connector, sim.config, sim.secrets);
    return {
      target: {
        kind: 'simulator',
        label: sim.label,
        org: workbenchOrg([conn]),
        conn,
        env,
        ...(sim.partitions ? { partitions: sim.partitions } : {}),
      },
      recordAs: { config: sim.config, secrets: Object.keys(sim.secrets) },
      close: () => sim.close(),
    };
  }
  const file = fixturesFile(config.connectorsDir, connector);
  if (!existsSync(file))
    throw new RoutiqError('RQ6104', `${connector} has no recorded fixtures (${path.relative(process.cwd(), file)})`);
  const cassette = JSON.parse(readFileSync(file, 'utf8')) as Cassette;
  const replay = await startReplay(cassette);
  const recorded = cassette.connection ?? { config: {}, secrets: [] };
  const { conn, env } = ownConnection(
    connector,
    substituteBase(recorded.config, BASE, replay.url),
    Object.fromEntries(recorded.secrets.map((k) => [k, 'replayed-secret-value'])),
  );
  const partitions = (cassette as Cassette & { partitions?: WorkbenchTarget['partitions'] }).partitions;
  return {
    target: {
      kind: 'fixtures',
      label: `fixtures ${path.relative(process.cwd(), file)}`,
      org: workbenchOrg([conn]),
      conn,
      env,
      ...(partitions ? { partitions } : {}),
    },
    replay,
    recordAs: recorded,
    close: () => replay.close(),
  };
}

/** The target the command line asks for, or the first that exists (simulator, then fixtures). */
export function chooseTarget(
  choices: TargetChoice[],
  connector: string,
  want: { org?: string | undefined; target?: string | undefined; replay?: boolean },
): TargetChoice {
  if (want.org !== undefined) {
    const c = choices.find((x) => x.kind === 'connection' && (x.id === want.org || x.id.split('/')[0] === want.org));
    if (!c)
      throw new RoutiqError(
        'RQ1008',
        `no connection of ${connector} for organization "${want.org}" (configured: ${
          choices
            .filter((x) => x.kind === 'connection')
            .map((x) => x.id)
            .join(', ') || 'none'
        })`,
      );
    return c;
  }
  const kind = want.replay ? 'fixtures' : want.target;
  if (kind !== undefined) {
    const c = choices.find((x) => x.kind === kind);
    if (!c) {
      if (kind === 'fixtures')
        throw new RoutiqError(
          'RQ6104',
          `${connector} has no recorded fixtures (connectors/${connector}/fixtures/workbench.json)`,
        );
      throw new RoutiqError(
        'RQ6001',
        `target ${kind} is not available for ${connector} (available: ${choices.map((x) => x.id).join(', ') || 'none'})`,
      );
    }
    return c;
  }
  const first = choices.find((x) => x.kind === 'simulator') ?? choices.find((x) => x.kind === 'fixtures') ?? choices[0];
  if (!first)
    throw new RoutiqError(
      'RQ6001',
      `nothing to test ${connector} against: no configured connection, no simulator, no fixtures\n  hint: add a connection to the config (routiq connector test ${connector} --org ID) or record fixtures`,
    );
  return first;
}
