/**
 * How a browser gets into the status page: the login form exchanges an admin credential — the service token, or a
 * Clerk-issued JWT verified as the API verifies it (service/auth.ts) — for an HttpOnly, SameSite=Strict session
 * cookie signed with a key derived from the service token, so every instance accepts it and rotating the token ends
 * every session. A JWT's session names its user and organization (the page then shows that organization only) and
 * ends when the JWT does. Forms that change something carry a CSRF token derived from the session. Scripts send
 * `Authorization: Bearer` (either credential) instead of a cookie.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Outcome, Principal } from '../auth.ts';

export interface AdminGate {
  /** Who signs in with this credential (what an operator pastes into the login form), or why not. */
  verify(credential: string): Promise<Outcome>;
  /** The request's own admin credentials (called when it has `Authorization: Bearer …`); undefined: none. */
  request(req: FastifyRequest): Promise<Outcome | undefined>;
  /** The key sessions are signed with; undefined: no service token is configured, no session can be issued. */
  sessionKey(): string | undefined;
}

export const COOKIE = 'routiq_status';
export const SESSION_SECONDS = 12 * 3600;

const mac = (key: string, data: string) => createHmac('sha256', key).update(data).digest('base64url');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString();
const SERVICE: Principal = {
  kind: 'service_token',
  actor: { type: 'service_token', id: 'static' },
  organizationId: undefined,
};

/**
 * A session for the principal: `v1.<exp>.<mac>` for the service token, `u1.<exp>.<org>.<user>.<mac>` for a JWT's
 * user (base64url ids), expiring after SESSION_SECONDS or with the JWT, whichever comes first.
 */
export function issueSession(key: string, now = Date.now(), principal: Principal = SERVICE): string {
  let exp = Math.floor(now / 1000) + SESSION_SECONDS;
  let body = `v1.${exp}`;
  if (principal.kind === 'user') {
    if (principal.expiresAt !== undefined) exp = Math.min(exp, Math.floor(principal.expiresAt / 1000));
    body = `u1.${exp}.${b64(principal.organizationId)}.${b64(principal.actor.id)}`;
  }
  return `${body}.${mac(key, body)}`;
}

/** The principal of a valid, unexpired session of this key. */
export function sessionOf(key: string | undefined, value: string | undefined, now = Date.now()): Principal | undefined {
  if (!key || !value) return undefined;
  const m = /^((v1)\.(\d+)|(u1)\.(\d+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+))\.([A-Za-z0-9_-]+)$/.exec(value);
  if (!m?.[1] || !m[8]) return undefined;
  const exp = Number(m[3] ?? m[5]) * 1000;
  if (!(exp > now) || !same(mac(key, m[1]), m[8])) return undefined;
  if (m[2]) return SERVICE;
  const org = unb64(m[6] ?? '');
  const user = unb64(m[7] ?? '');
  if (!org || !user) return undefined;
  return { kind: 'user', actor: { type: 'user', id: user }, organizationId: org, expiresAt: exp };
}

export function sessionValid(key: string | undefined, value: string | undefined, now = Date.now()): boolean {
  return sessionOf(key, value, now) !== undefined;
}

export function csrfToken(key: string, session: string): string {
  return mac(key, `csrf.${session}`);
}

export function cookieOf(req: FastifyRequest, name = COOKIE): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Secure when the browser came over HTTPS (directly or through a proxy that says so). */
function secure(req: FastifyRequest): boolean {
  return req.protocol === 'https' || String(req.headers['x-forwarded-proto'] ?? '').startsWith('https');
}

export function setCookie(req: FastifyRequest, value: string, maxAge = SESSION_SECONDS): string {
  return `${COOKIE}=${value}; Path=/status; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure(req) ? '; Secure' : ''}`;
}

export type Access =
  | { ok: true; session: string | undefined; principal: Principal }
  | { ok: false; status: 401 | 403; reason: string };

/** Does the request carry `Authorization: Bearer …` (not, say, a proxy's Basic credentials)? */
export function hasBearer(req: FastifyRequest): boolean {
  return /^Bearer /.test(req.headers.authorization ?? '');
}

/**
 * A valid session cookie, else admin credentials on the request itself (scripts, curl). The cookie first: a proxy in
 * front of the page may add its own Authorization header, which must not end a signed-in session.
 */
export async function access(gate: AdminGate, req: FastifyRequest): Promise<Access> {
  const s = cookieOf(req);
  const p = sessionOf(gate.sessionKey(), s);
  if (p) return { ok: true, session: s, principal: p };
  const r = hasBearer(req) ? await gate.request(req) : undefined;
  if (r) return r.ok ? { ok: true, session: undefined, principal: r.principal } : r;
  return { ok: false, status: 401, reason: s ? 'the session has expired or is not valid' : 'not signed in' };
}

/** A state-changing request from the page: the session's CSRF token, or admin credentials on the request. */
export function csrfOk(gate: AdminGate, req: FastifyRequest, a: Access, presented: string | undefined): boolean {
  if (!a.ok) return false;
  if (a.session === undefined) return true; // Bearer credentials: no ambient cookie, nothing to forge
  const key = gate.sessionKey();
  return !!key && !!presented && same(csrfToken(key, a.session), presented);
}
