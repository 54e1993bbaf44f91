/**
 * One organization's connection, opened once for a sync pass, a webhook delivery or a DLQ replay: the spec,
 * the resolved settings and secrets, the identity hook, and the bookkeeping every write path shares (hook and
 * write contexts, dead letters, child partitions, raw payloads). One code path, so the three cannot drift.
 */

import type { UnifiedTarget } from '@routiq/schemas';
import { getHook, type HookContext, type MatchIdentityHook } from '@routiq/sdk';
import type { Logger } from 'pino';
import { resolveSecrets } from '../config/load.ts';
import type { ConnectionConfig, OrganizationConfig, RoutiqConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { forOrganization, type Querier, readOnlyQuerier, safeMessage, transaction } from '../db/tx.ts';
import { RoutiqError } from '../errors/registry.ts';
import { sourcePriorityOf } from '../identity/rows.ts';
import { loadCredentials } from '../security/credentials.ts';
import { requireKeyRing } from '../security/crypto.ts';
import { type BindingArea, scopeBindings } from '../spec/bindings.ts';
import { loadConnectorHooks } from '../spec/hooks-file.ts';
import { loadConnector } from '../spec/load.ts';
import type { ConnectorSpec, StreamSpec } from '../spec/types.ts';
import { type DeadLetterInput, insertDeadLetter, storeRawRecords } from './bookkeeping.ts';
import { buildConnectionContext, type ConnectionContext } from './connection.ts';
import { markPartitionsIfParentChanged, markPartitionsPending, type StateKey } from './cursor.ts';
import { type Bindings, evaluate } from './expr.ts';
import type { ParentInfo } from './map.ts';
import type { WriteContext } from './writer.ts';

export interface SessionOptions {
  db: Database;
  config: RoutiqConfig;
  org: OrganizationConfig;
  conn: ConnectionConfig;
  logger: Logger;
  /** Where `${ENV}` secrets are read (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Extra fields on every log line of the session (e.g. `{ webhook: true }`). */
  logFields?: Record<string, unknown>;
}

/** A record written under a parent stream or webhook event: which child partitions it feeds. */
export interface ChildMarking {
  /** A full refresh marks every child and re-reads it from the start (its cursor is reset). */
  fullRefresh?: boolean;
  /** Pushed records: every child partition is marked, changed or not. */
  all?: boolean;
}

/** A session's writes to a table from which it is analyzed, then again at every power of ten (analyzeAsGrown). */
const ANALYZE_FROM = 1000;
/** The same table of the same database is analyzed at most this often by one process. */
const ANALYZE_EVERY_MS = 30_000;
/** Per database, schema and table: the last analyze this process started, and the one running. */
const analyzed = new Map<string, { at: number; running: Promise<void> | undefined }>();

export class Session {
  readonly spec: ConnectorSpec;
  readonly org: OrganizationConfig;
  readonly conn: ConnectionConfig;
  readonly matchIdentity: MatchIdentityHook;
  log: Logger;
  /** Child streams by parent stream name. */
  private readonly children = new Map<string, StreamSpec[]>();
  /** Rows this session wrote (inserted or changed) per table, for analyzeAsGrown. */
  private readonly grown = new Map<string, number>();

  constructor(
    readonly db: Database,
    readonly config: RoutiqConfig,
    readonly cctx: ConnectionContext,
    logger: Logger,
  ) {
    this.spec = cctx.spec;
    this.org = cctx.org;
    this.conn = cctx.conn;
    this.log = logger;
    const hookName = this.spec.identity?.match_identity ?? 'identity.match';
    const hook = getHook(hookName, 'match_identity');
    if (!hook) throw new RoutiqError('RQ2000', `identity hook "${hookName}" is not registered`);
    this.matchIdentity = hook;
    for (const s of this.spec.streams)
      if (s.parent?.stream) this.children.set(s.parent.stream, [...(this.children.get(s.parent.stream) ?? []), s]);
  }

  /**
   * ANALYZE a table (`routiq_analyze`, migration 0017) once this session's writes to it pass 1,000 rows, and again
   * at 10,000, 100,000 … A table written from empty has no statistics until autovacuum gets to it, and a new
   * organization is in none of a shared table's: the planner then takes (organization_id, source) to match one row
   * and reads the organization's rows for every page (a first sync's cost grew with the square of its size). New
   * identities grow `patients` and `identity_keys` with them. In the background, never awaited by a write (an
   * ANALYZE takes 0.1–0.3 s; twenty webhook sessions crossing 1,000 rows together held processing up for seconds),
   * one per table of a database at a time and at most one per table every 30 s. The promise is for tests; a failure
   * is logged.
   */
  analyzeAsGrown(written: ReadonlyMap<UnifiedTarget, ReadonlySet<string>>): Promise<void> {
    const due: string[] = [];
    for (const [target, keys] of written) {
      if (!keys.size) continue;
      const before = this.grown.get(target) ?? 0;
      const after = before + keys.size;
      this.grown.set(target, after);
      if (after < ANALYZE_FROM || Math.floor(Math.log10(after)) === Math.floor(Math.log10(Math.max(1, before))))
        continue;
      due.push(...(target === 'patient_identities' ? [target, 'patients', 'identity_keys'] : [target]));
    }
    return Promise.all(due.map((table) => this.analyze(table))).then(() => undefined);
  }

  private analyze(table: string): Promise<void> {
    const key = `${this.db.connectionUrl} ${this.db.schema} ${table}`;
    const last = analyzed.get(key);
    if (last && (last.running || Date.now() - last.at < ANALYZE_EVERY_MS)) return last.running ?? Promise.resolve();
    const running = this.db
      .query('select routiq_analyze(?)', [table])
      .then(
        () => undefined,
        (err) => this.log.warn({ table, err: { message: safeMessage(err) } }, 'could not analyze a table'),
      )
      .finally(() => analyzed.set(key, { at: Date.now(), running: undefined }));
    analyzed.set(key, { at: Date.now(), running });
    return running;
  }

  get secrets(): Record<string, string> {
    return this.cctx.secrets;
  }

  /** The bindings of an area (spec/bindings.ts): the connection's own plus `extra`, nothing lint does not allow. */
  bindings(area: BindingArea, extra: Bindings = {}): Bindings {
    return scopeBindings(area, { ...this.cctx.bindings, ...extra });
  }

  /** Streams whose partitions come from records of `parent` (a stream name, or `webhook:<event>`). */
  childrenOf(parent: string): StreamSpec[] {
    if (parent.startsWith('webhook:')) {
      const ev = parent.slice('webhook:'.length);
      return this.spec.streams.filter((s) => s.parent?.webhook === ev);
    }
    return this.children.get(parent) ?? [];
  }

  /** What hooks get: a database they can only read (inside the caller's transaction when `q` is given). */
  hookContext(q: Querier | undefined, stream?: string): HookContext {
    return {
      organizationId: this.org.id,
      connector: this.spec.name,
      ...(stream ? { stream } : {}),
      logger: this.log,
      db: { query: readOnlyQuerier(this.db, q) },
      settings: this.org.settings,
      defaultCountry: this.org.defaultCountry,
    };
  }

  writeContext(stream: string, runId: string | null): WriteContext {
    return {
      organizationId: this.org.id,
      source: this.spec.name,
      specVersion: this.spec.version,
      stream,
      runId,
      defaultCountry: this.org.defaultCountry,
      matchIdentity: this.matchIdentity,
      hookContext: (q: Querier) => this.hookContext(q, stream),
      sourcePriority: sourcePriorityOf(this.org.settings),
    };
  }

  async deadLetter(
    q: Querier,
    d: Omit<DeadLetterInput, 'organizationId' | 'connector' | 'connection' | 'specVersion'>,
  ): Promise<void> {
    await insertDeadLetter(q, {
      ...d,
      organizationId: this.org.id,
      connector: this.spec.name,
      connection: this.conn.name,
      specVersion: this.spec.version,
    });
  }

  /**
   * Mark the child partitions of written parent records pending, in the parent's transaction: a parent that
   * did not change has children that did not either (unless the child says `only_changed: false`).
   */
  async markChildren(
    q: Querier,
    parentStream: string,
    parents: ParentInfo[],
    changed: Map<UnifiedTarget, Set<string>>,
    o: ChildMarking = {},
  ): Promise<void> {
    const kids = this.childrenOf(parentStream);
    if (!kids.length) return;
    // parent.key runs on the parent's record: no $parent of its own (spec/bindings.ts `parent_key`).
    const keyBindings = this.bindings('parent_key');
    const marks: Array<{ key: StateKey; parent: unknown; parentHash: string }> = [];
    const ifParentChanged: typeof marks = [];
    for (const child of kids) {
      for (const p of parents) {
        const isChanged =
          o.fullRefresh ||
          o.all ||
          child.parent?.only_changed === false ||
          p.produced.some(([t, id]) => changed.get(t)?.has(id));
        const k = await evaluate(child.parent?.key ?? 'id', p.raw, keyBindings).catch(() => undefined);
        if (k === undefined || k === null || k === '') continue;
        (isChanged ? marks : ifParentChanged).push({
          key: { organizationId: this.org.id, connection: this.conn.name, stream: child.name, partition: String(k) },
          parent: p.raw,
          parentHash: p.hash,
        });
      }
    }
    await markPartitionsPending(q, marks, { resetCursor: !!o.fullRefresh });
    // Unchanged rows are not proof of an unchanged parent: another stream or a webhook may have written them first.
    await markPartitionsIfParentChanged(q, ifParentChanged);
  }

  /** Lineage: raw payloads by (source, stream, id), kept for runner.raw_retention_days (0 keeps none). */
  async storeRaw(q: Querier, stream: string, parents: ParentInfo[]): Promise<void> {
    if (this.config.runner.rawRetentionDays <= 0) return;
    const byKey = new Map<string, { key: string; hash: string; raw: unknown }>();
    for (const p of parents) if (p.key !== null) byKey.set(p.key, { key: p.key, hash: p.hash, raw: p.raw });
    await storeRawRecords(
      q,
      { organizationId: this.org.id, source: this.spec.name, stream, specVersion: this.spec.version },
      [...byKey.values()],
    );
  }
}

/** Make sure the organization row exists and matches the config (the config file is the source of truth). */
export async function ensureOrganization(db: Database, org: OrganizationConfig): Promise<void> {
  await db.query(
    `insert into organizations (id, name, default_country, timezone, settings) values (?, ?, ?, ?, ?::jsonb)
     on conflict (id) do update set name = excluded.name, default_country = excluded.default_country, timezone = excluded.timezone,
       settings = excluded.settings, updated_at = now()
     where (organizations.name, organizations.default_country, organizations.timezone, organizations.settings)
       is distinct from (excluded.name, excluded.default_country, excluded.timezone, excluded.settings)`,
    [org.id, org.name, org.defaultCountry, org.timezone, JSON.stringify(org.settings)],
  );
}

/**
 * Open an organization's connection: load and lint its spec, resolve secrets, validate its settings, check the
 * identity hook, make sure the organization row exists. Throws a RoutiqError (RQ1xxx/RQ2000) naming what is wrong.
 */
export async function openSession(o: SessionOptions): Promise<Session> {
  const { spec } = loadConnector(o.config.connectorsDir, o.conn.connector);
  await loadConnectorHooks(o.config.connectorsDir, o.conn.connector);
  const env = o.env ?? process.env;
  const secrets = resolveSecrets(o.conn, o.org.id, env);
  // `${ENV}` references win over stored values (an operator can override one stored secret for a while).
  if (o.conn.credentialStore) {
    const ring = requireKeyRing(env, `connection ${o.org.id}/${o.conn.name} (credential_store: true)`);
    // Under the organization's scope: the credential rows are a protected tenant table (an app-role login sees
    // nothing through a raw query).
    const stored = await transaction(forOrganization(o.db, o.org.id), (q) =>
      loadCredentials(q, ring, o.org.id, o.conn.name),
    );
    for (const [k, v] of Object.entries(stored)) secrets[k] ??= v;
    for (const [k, p] of Object.entries(spec.connection.properties))
      if (p.secret && spec.connection.required?.includes(k) && secrets[k] === undefined)
        throw new RoutiqError(
          'RQ1021',
          `secret "${k}" of connection ${o.org.id}/${o.conn.name} is neither under secrets: nor in the credential store (routiq credentials set ${o.org.id} ${o.conn.name} ${k})`,
          { where: `${o.org.id}/${o.conn.name}/${k}` },
        );
  }
  const cctx = await buildConnectionContext(spec, o.org, o.conn, secrets);
  const log = o.logger.child({ org: o.org.id, connection: o.conn.name, connector: spec.name, ...o.logFields });
  // Every transaction of the session sees this organization's rows only (row-level security, docs/database.md).
  const db = forOrganization(o.db, o.org.id);
  const session = new Session(db, o.config, cctx, log);
  await ensureOrganization(db, o.org);
  return session;
}
