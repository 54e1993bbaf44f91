/**
 * The audit log of data access and changes (docs/security.md): who (a structured actor), in which organization,
 * did what to which resource, how many records, under which correlation id (a run, an HTTP request, a CLI
 * invocation), when. Rows are append-only (a trigger refuses UPDATE/DELETE/TRUNCATE, migration 0011) and never
 * hold a secret or a record's content: only names, ids and counts.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Database } from '../db/database.ts';
import { crossOrganization, forOrganization, type Querier, transaction } from '../db/tx.ts';

export type ActorType = 'system' | 'cli' | 'service_token' | 'user' | 'anonymous';

export interface Actor {
  type: ActorType;
  /** The OS user (cli), the token's label (service_token), the Clerk user id (user), a component (system). */
  id: string;
}

/**
 * The structured form of an actor given as a string (`cli:alice`, `user:user_2x…`, `service-token`, `system`). Any
 * other text (an operator's `--actor` name) was typed at a command line: a `cli` actor with that id.
 */
export function actorOf(a: Actor | string): Actor {
  if (typeof a !== 'string') return a;
  const i = a.indexOf(':');
  const kind = i >= 0 ? a.slice(0, i) : a;
  const id = i >= 0 ? a.slice(i + 1) : a;
  if (kind === 'system') return { type: 'system', id: i >= 0 ? id : 'system' };
  if (kind === 'cli') return { type: 'cli', id };
  if (kind === 'user') return { type: 'user', id };
  if (kind === 'service-token' || kind === 'service_token')
    return { type: 'service_token', id: i >= 0 ? id : 'static' };
  return { type: 'cli', id: a };
}

export function actorLabel(a: Actor): string {
  return `${a.type}:${a.id}`;
}

/** The person at this terminal, for CLI commands. */
export function cliActor(): Actor {
  let user = process.env.USER ?? process.env.USERNAME ?? 'unknown';
  try {
    user = os.userInfo().username || user;
  } catch {
    // no passwd entry (containers): keep the environment's name
  }
  return { type: 'cli', id: user };
}

/** One id per process run of a CLI command: every audit row it writes shares it. */
export const CLI_CORRELATION_ID = randomUUID();

export interface AuditEntry {
  actor: Actor | string;
  organizationId: string | null;
  /** `<area>.<verb>`: sync.write, dlq.show, credentials.set, config.reload, auth.denied … (docs/security.md). */
  action: string;
  resourceType: string;
  resourceId?: string | null | undefined;
  /** How many records the action touched or showed. */
  count?: number | null | undefined;
  correlationId?: string | null | undefined;
  /** Names, ids, counts: never a secret, never a record's content. */
  details?: Record<string, unknown>;
}

/** Append one row (inside the caller's transaction when q is one); returns its id. */
export async function recordAudit(q: Querier, e: AuditEntry): Promise<string> {
  const actor = actorOf(e.actor);
  const rows = await q<{ id: string }>(
    `insert into audit_log (organization_id, actor, actor_type, actor_id, action, resource_type, resource_id, count,
       correlation_id, details)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb) returning id::text as id`,
    [
      e.organizationId,
      typeof e.actor === 'string' ? e.actor : actorLabel(actor),
      actor.type,
      actor.id,
      e.action,
      e.resourceType,
      e.resourceId ?? null,
      e.count ?? null,
      e.correlationId ?? null,
      JSON.stringify(e.details ?? {}),
    ],
  );
  return rows[0]?.id as string;
}

/**
 * Append one row in a transaction of its own, under the scope its organization needs: the organization's (row-level
 * security lets the app role write only its rows), or the cross-organization path for a row of no organization
 * (a cross-organization read, a refused anonymous request). Raw `db.query` would fail under an app-role login.
 */
export function auditTo(db: Database, e: AuditEntry): Promise<string> {
  const scoped = e.organizationId
    ? forOrganization(db, e.organizationId)
    : crossOrganization(db, 'audit log: a row of no organization');
  return transaction(scoped, (q) => recordAudit(q, e));
}
