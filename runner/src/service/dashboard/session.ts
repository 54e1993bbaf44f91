/**
 * How a browser gets into the status page: the login form exchanges the admin credential (today the service token)
 * for an HttpOnly, SameSite=Strict session cookie signed with a key derived from that credential, so every
 * instance accepts it and rotating the token ends every session. Forms that change something carry a CSRF token
 * derived from the session. The credential check itself is the gate's `verify`: one function to swap for another
 * admin authentication.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export interface AdminGate {
  /** Is this credential (what an operator pastes into the login form) an admin's? */
  verify(credential: string): boolean;
  /** Does the request itself carry admin credentials (e.g. Authorization: Bearer)? */
  request(req: FastifyRequest): boolean;
  /** The key sessions are signed with; undefined: no admin credential is configured, nobody gets in. */
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

export function issueSession(key: string, now = Date.now()): string {
  const body = `v1.${Math.floor(now / 1000) + SESSION_SECONDS}`;
  return `${body}.${mac(key, body)}`;
}

export function sessionValid(key: string | undefined, value: string | undefined, now = Date.now()): boolean {
  if (!key || !value) return false;
  const m = /^(v1\.(\d+))\.([A-Za-z0-9_-]+)$/.exec(value);
  if (!m?.[1] || !m[3]) return false;
  return Number(m[2]) * 1000 > now && same(mac(key, m[1]), m[3]);
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

export type Access = { ok: true; session: string | undefined } | { ok: false };

/** A valid session cookie, or admin credentials on the request itself (scripts, curl). */
export function access(gate: AdminGate, req: FastifyRequest): Access {
  const s = cookieOf(req);
  if (sessionValid(gate.sessionKey(), s)) return { ok: true, session: s };
  if (gate.request(req)) return { ok: true, session: undefined };
  return { ok: false };
}

/** A state-changing request from the page: the session's CSRF token, or admin credentials on the request. */
export function csrfOk(gate: AdminGate, req: FastifyRequest, a: Access, presented: string | undefined): boolean {
  if (!a.ok) return false;
  if (a.session === undefined) return true; // Bearer credentials: no ambient cookie, nothing to forge
  const key = gate.sessionKey();
  return !!key && !!presented && same(csrfToken(key, a.session), presented);
}
