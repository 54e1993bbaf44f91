/**
 * The status page's routes (docs/status-page.md), added to the service's route table (and so to its OpenAPI
 * document): the page, its live part, sign-in/out, its assets, and the dead-letter replay button.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RoutiqConfig } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { forOrganization, safeMessage } from '../../db/tx.ts';
import { type ReplayOutcome, replayDeadLetters } from '../../dlq/index.ts';
import { actorLabel, auditTo } from '../../security/audit.ts';
import { correlationOf, type Principal } from '../auth.ts';
import type { RouteDef } from '../http.ts';
import { CSS, JS } from './assets.ts';
import { type StatusView, statusView } from './data.ts';
import { liveSection, loginPage, statusPage } from './render.ts';
import {
  type Access,
  type AdminGate,
  access,
  csrfOk,
  csrfToken,
  hasBearer,
  issueSession,
  setCookie,
} from './session.ts';

export interface DashboardOptions {
  db: Database;
  gate: AdminGate;
  config: () => RoutiqConfig;
  intervalMinutes: () => number;
  env?: NodeJS.ProcessEnv | undefined;
  instanceId?: string | undefined;
  logger: Logger;
  /** A refused request (401, 403, 404): log and audit it (service/auth.ts AdminAuth.denied). */
  onDenied?: (req: FastifyRequest, status: number, why: string, principal?: Principal) => Promise<void> | void;
}

/** A page left open refreshes every 5 s: its live part is audited once per viewer and window, the page at each load. */
export const LIVE_AUDIT_WINDOW_MS = 5 * 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OUTCOME_TEXT: Record<string, string> = {
  replayed: 'replayed: the record is written',
  requeued: 'requeued: the next sync fetches it again',
  superseded: 'superseded by newer data: resolved',
  failed: 'still failing with the current connector spec',
  skipped: 'already resolved',
  not_replayable: 'not replayable (the next sync retries it)',
  error: 'could not be replayed now (see the service log)',
  not_found: 'not found',
};

function signInError(status: number): string {
  return status === 403
    ? 'That token names no organization: ask for a token of your organization (its org_id claim).'
    : 'That token is not valid. Sign in with the service token (ROUTIQ_SERVICE_TOKEN) or a current Clerk session token.';
}

async function ownLetter(db: Database, organizationId: string, id: string): Promise<boolean> {
  const rows = await forOrganization(db, organizationId).query('select 1 from sync_errors where id = ?::uuid', [id]);
  return rows.length > 0;
}

/** No inline script or style, no framing, nothing cached: the page shows operational data. */
function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header(
      'content-security-policy',
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store');
}

const form = (req: FastifyRequest): URLSearchParams =>
  new URLSearchParams(typeof req.body === 'string' ? req.body : '');

export function dashboardRoutes(o: DashboardOptions): RouteDef[] {
  // A user's session (a Clerk JWT) sees its organization only; the service token every organization.
  const view = (p: Principal) =>
    statusView({
      db: o.db,
      config: o.config(),
      env: o.env,
      intervalMinutes: o.intervalMinutes(),
      instanceId: o.instanceId,
      organizationId: p.kind === 'user' ? p.organizationId : undefined,
    });
  const lastLiveAudit = new Map<string, number>();
  /**
   * The page shows patient-derived data (dead letters' record keys and messages): every view is in the audit log
   * with its actor, the organizations shown and how many dead letters; a cross-organization view has no
   * organization_id and lists them in details.
   */
  const audited = async (req: FastifyRequest, a: Access & { ok: true }, v: StatusView, part: 'page' | 'live') => {
    const viewer = `${actorLabel(a.principal.actor)}|${a.session ?? 'bearer'}`;
    if (part === 'live') {
      const now = Date.now();
      const last = lastLiveAudit.get(viewer);
      if (last !== undefined && now - last < LIVE_AUDIT_WINDOW_MS) return;
      lastLiveAudit.set(viewer, now);
      if (lastLiveAudit.size > 1000)
        for (const [k, t] of lastLiveAudit) if (now - t >= LIVE_AUDIT_WINDOW_MS) lastLiveAudit.delete(k);
    }
    const shown = v.organizations.map((x) => x.id);
    await auditTo(o.db, {
      actor: a.principal.actor,
      organizationId: a.principal.kind === 'user' ? a.principal.organizationId : null,
      action: 'status_page.view',
      resourceType: 'status_view',
      resourceId: part,
      count: v.organizations.reduce((n, x) => n + x.connections.reduce((m, c) => m + c.latestDeadLetters.length, 0), 0),
      correlationId: correlationOf(req),
      details: {
        organizations: shown,
        cross_organization: a.principal.kind !== 'user',
        via: a.session ? 'session' : 'bearer',
      },
    });
  };
  const refuse = async (req: FastifyRequest, a: Access & { ok: false }) => {
    await o.onDenied?.(req, a.status, `status page: ${a.reason}`);
  };
  const csrfOf = (session: string | undefined) => {
    const key = o.gate.sessionKey();
    return key && session ? csrfToken(key, session) : '';
  };
  const html = (reply: FastifyReply, code: number, body: string) =>
    secure(reply).code(code).type('text/html; charset=utf-8').send(body);
  const responses = { 200: 'HTML.', 303: 'To the sign-in form when not signed in.' };

  return [
    {
      method: 'GET',
      url: '/status',
      summary:
        'The status page (HTML; session cookie, or Bearer service token or Clerk JWT: a JWT sees its organization only). Audited.',
      admin: false,
      responses: { ...responses, 401: 'Bad Bearer credentials.', 403: 'A JWT that names no organization.' },
      handler: async (req, reply) => {
        const a = await access(o.gate, req);
        if (!a.ok) {
          if (a.status === 401 && !hasBearer(req)) return secure(reply).redirect('/status/login', 303);
          await refuse(req, a);
          return html(reply, a.status, loginPage(signInError(a.status)));
        }
        const q = (req.query ?? {}) as Record<string, string>;
        const outcome = q.replayed && UUID.test(q.replayed) ? OUTCOME_TEXT[q.outcome ?? ''] : undefined;
        const notice = outcome ? `Dead letter ${q.replayed}: ${outcome}` : undefined;
        const v = await view(a.principal);
        await audited(req, a, v, 'page');
        return html(reply, 200, statusPage(v, csrfOf(a.session), notice));
      },
    },
    {
      method: 'GET',
      url: '/status/live',
      summary: "The status page's live part (HTML fragment the page's script refreshes).",
      admin: false,
      responses: { 200: 'HTML fragment.', 401: 'Not signed in.', 403: 'A JWT that names no organization.' },
      handler: async (req, reply) => {
        const a = await access(o.gate, req);
        if (!a.ok) {
          if (a.status === 403 || hasBearer(req)) await refuse(req, a);
          return html(reply, a.status, a.status === 403 ? 'no organization' : 'not signed in');
        }
        const v = await view(a.principal);
        await audited(req, a, v, 'live');
        return html(reply, 200, liveSection(v, csrfOf(a.session)));
      },
    },
    {
      method: 'GET',
      url: '/status/login',
      summary: 'The sign-in form of the status page.',
      admin: false,
      responses: { 200: 'HTML.' },
      handler: async (_req, reply) => html(reply, 200, loginPage()),
    },
    {
      method: 'POST',
      url: '/status/login',
      summary:
        'Sign in (form field `token`: the service token or a Clerk JWT): sets an HttpOnly session cookie and redirects to /status.',
      admin: false,
      responses: {
        303: 'Signed in.',
        401: 'Wrong token, or no service token configured (it signs sessions).',
        403: 'A JWT that names no organization.',
      },
      handler: async (req, reply) => {
        const key = o.gate.sessionKey();
        const token = (form(req).get('token') ?? '').trim();
        if (!key) {
          await o.onDenied?.(req, 401, 'status page sign-in: no service token is configured');
          return html(reply, 401, loginPage('No admin token is configured on this service (ROUTIQ_SERVICE_TOKEN).'));
        }
        const r = token ? await o.gate.verify(token) : ({ ok: false, status: 401, reason: 'no token' } as const);
        if (!r.ok) {
          await o.onDenied?.(req, r.status, `status page sign-in: ${r.reason}`);
          return html(reply, r.status, loginPage(signInError(r.status)));
        }
        const now = Date.now();
        const session = issueSession(key, now, r.principal);
        const exp = Number(session.split('.')[1]) * 1000;
        return secure(reply)
          .header('set-cookie', setCookie(req, session, Math.max(1, Math.floor((exp - now) / 1000))))
          .redirect('/status', 303);
      },
    },
    {
      method: 'POST',
      url: '/status/logout',
      summary: 'Sign out of the status page.',
      admin: false,
      responses: { 303: 'Signed out.' },
      handler: async (req, reply) =>
        secure(reply)
          .header('set-cookie', setCookie(req, '', 0))
          .redirect('/status/login', 303),
    },
    {
      method: 'POST',
      url: '/status/dlq/:id/replay',
      summary:
        'Replay one dead letter now from the status page (session and CSRF token, or service token); audited in audit_log.',
      admin: false,
      responses: {
        200: 'The outcome (JSON, when asked for).',
        303: 'Back to the page with the outcome.',
        400: 'Not a dead-letter id.',
        401: 'Not signed in.',
        403: 'Missing or wrong CSRF token; a JWT of no organization.',
        404: "Not a dead letter of the signed-in user's organization.",
      },
      handler: async (req, reply) => {
        const a = await access(o.gate, req);
        const wantsJson = String(req.headers.accept ?? '').includes('application/json');
        if (!a.ok) {
          await refuse(req, a);
          return secure(reply)
            .code(a.status)
            .send({ error: a.status === 403 ? 'the token names no organization' : 'not signed in' });
        }
        if (!csrfOk(o.gate, req, a, form(req).get('csrf') ?? undefined))
          return secure(reply).code(403).send({ error: 'missing or wrong CSRF token; reload the page' });
        const id = (req.params as { id: string }).id;
        if (!UUID.test(id)) return secure(reply).code(400).send({ error: 'dead-letter ids are UUIDs' });
        const p = a.principal;
        // A user replays its own organization's letters only; another's answer 404 (their existence is not revealed).
        if (p.kind === 'user' && !(await ownLetter(o.db, p.organizationId, id))) {
          await o.onDenied?.(req, 404, 'status page: a dead letter outside the organization', p);
          return secure(reply)
            .code(404)
            .send({ error: `no dead letter of your organization has id ${id}` });
        }
        const actor =
          p.kind === 'user'
            ? p.actor
            : { type: 'service_token' as const, id: a.session ? 'status-page:session' : 'status-page:service-token' };
        let outcome: ReplayOutcome | undefined;
        let failure: string | undefined;
        try {
          [outcome] = await replayDeadLetters(o.db, o.config(), [id], {
            logger: o.logger,
            env: o.env,
            actor: p.kind === 'user' ? actorLabel(actor) : actor.id,
          });
        } catch (err) {
          failure = safeMessage(err);
        }
        // Who pressed the button, from where, and what came of it — whatever came of it.
        await auditTo(o.db, {
          actor,
          organizationId: outcome?.organizationId ?? null,
          action: 'status_page.dlq_replay',
          resourceType: 'dead_letter',
          resourceId: id,
          details: {
            status: outcome?.status ?? 'error',
            ...(outcome?.code ? { code: outcome.code } : {}),
            ...(failure ? { error: failure } : {}),
            via: a.session ? 'session' : 'bearer',
            ip: req.ip,
            user_agent: String(req.headers['user-agent'] ?? '').slice(0, 200),
          },
        });
        if (failure) return secure(reply).code(500).send({ error: failure });
        const status = outcome?.status ?? 'not_found';
        const message = `Dead letter ${id}: ${OUTCOME_TEXT[status] ?? status}${outcome?.message && status !== 'replayed' ? ` (${outcome.message})` : ''}`;
        if (wantsJson) return secure(reply).code(200).send({ id, status, message, outcome });
        return secure(reply).redirect(`/status?replayed=${id}&outcome=${status}`, 303);
      },
    },
    {
      method: 'GET',
      url: '/status/assets/app.css',
      summary: "The status page's stylesheet.",
      admin: false,
      responses: { 200: 'CSS.' },
      handler: async (_req, reply) =>
        reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=300').send(CSS),
    },
    {
      method: 'GET',
      url: '/status/assets/app.js',
      summary: "The status page's script.",
      admin: false,
      responses: { 200: 'JavaScript.' },
      handler: async (_req, reply) =>
        reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=300').send(JS),
    },
  ];
}
