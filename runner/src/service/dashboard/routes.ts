/**
 * The status page's routes (docs/status-page.md), added to the service's route table (and so to its OpenAPI
 * document): the page, its live part, sign-in/out, its assets, and the dead-letter replay button.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RoutiqConfig } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { safeMessage } from '../../db/tx.ts';
import { type ReplayOutcome, replayDeadLetters } from '../../dlq/index.ts';
import { recordAudit } from '../../security/audit.ts';
import type { RouteDef } from '../http.ts';
import { CSS, JS } from './assets.ts';
import { statusView } from './data.ts';
import { liveSection, loginPage, statusPage } from './render.ts';
import { type AdminGate, access, csrfOk, csrfToken, issueSession, setCookie } from './session.ts';

export interface DashboardOptions {
  db: Database;
  gate: AdminGate;
  config: () => RoutiqConfig;
  intervalMinutes: () => number;
  env?: NodeJS.ProcessEnv | undefined;
  instanceId?: string | undefined;
  logger: Logger;
  onDenied?: (req: FastifyRequest, why: string) => void;
}

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
  const view = () =>
    statusView({
      db: o.db,
      config: o.config(),
      env: o.env,
      intervalMinutes: o.intervalMinutes(),
      instanceId: o.instanceId,
    });
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
      summary: 'The status page (HTML; signed-in session cookie or service token).',
      admin: false,
      responses,
      handler: async (req, reply) => {
        const a = access(o.gate, req);
        if (!a.ok) return secure(reply).redirect('/status/login', 303);
        const q = (req.query ?? {}) as Record<string, string>;
        const outcome = q.replayed && UUID.test(q.replayed) ? OUTCOME_TEXT[q.outcome ?? ''] : undefined;
        const notice = outcome ? `Dead letter ${q.replayed}: ${outcome}` : undefined;
        return html(reply, 200, statusPage(await view(), csrfOf(a.session), notice));
      },
    },
    {
      method: 'GET',
      url: '/status/live',
      summary: "The status page's live part (HTML fragment the page's script refreshes).",
      admin: false,
      responses: { 200: 'HTML fragment.', 401: 'Not signed in.' },
      handler: async (req, reply) => {
        const a = access(o.gate, req);
        if (!a.ok) return html(reply, 401, 'not signed in');
        return html(reply, 200, liveSection(await view(), csrfOf(a.session)));
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
      summary: 'Sign in (form field `token`): sets an HttpOnly session cookie and redirects to /status.',
      admin: false,
      responses: { 303: 'Signed in.', 401: 'Wrong token, or none configured.' },
      handler: async (req, reply) => {
        const key = o.gate.sessionKey();
        const token = form(req).get('token') ?? '';
        if (!key) {
          o.onDenied?.(req, 'no service token is configured');
          return html(reply, 401, loginPage('No admin token is configured on this service (ROUTIQ_SERVICE_TOKEN).'));
        }
        if (!token || !o.gate.verify(token)) {
          o.onDenied?.(req, 'wrong token on the status page sign-in');
          return html(reply, 401, loginPage('That token is not valid. Check ROUTIQ_SERVICE_TOKEN.'));
        }
        return secure(reply)
          .header('set-cookie', setCookie(req, issueSession(key)))
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
        403: 'Missing or wrong CSRF token.',
      },
      handler: async (req, reply) => {
        const a = access(o.gate, req);
        const wantsJson = String(req.headers.accept ?? '').includes('application/json');
        if (!a.ok) {
          o.onDenied?.(req, 'replay from the status page without a session');
          return secure(reply).code(401).send({ error: 'not signed in' });
        }
        if (!csrfOk(o.gate, req, a, form(req).get('csrf') ?? undefined))
          return secure(reply).code(403).send({ error: 'missing or wrong CSRF token; reload the page' });
        const id = (req.params as { id: string }).id;
        if (!UUID.test(id)) return secure(reply).code(400).send({ error: 'dead-letter ids are UUIDs' });
        const actor = a.session ? 'status-page:session' : 'status-page:service-token';
        let outcome: ReplayOutcome | undefined;
        let failure: string | undefined;
        try {
          [outcome] = await replayDeadLetters(o.db, o.config(), [id], { logger: o.logger, env: o.env, actor });
        } catch (err) {
          failure = safeMessage(err);
        }
        // Who pressed the button, from where, and what came of it — whatever came of it.
        await recordAudit(o.db.query.bind(o.db), {
          actor: { type: 'service_token', id: actor },
          organizationId: outcome?.organizationId ?? null,
          action: 'status_page.dlq_replay',
          resourceType: 'dead_letter',
          resourceId: id,
          details: {
            status: outcome?.status ?? 'error',
            ...(outcome?.code ? { code: outcome.code } : {}),
            ...(failure ? { error: failure } : {}),
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
