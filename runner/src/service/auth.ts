/**
 * Who may call the admin endpoints of `routiq serve` (docs/security.md): the static service token
 * (ROUTIQ_SERVICE_TOKEN: every organization) or a Clerk-issued session JWT, verified against the instance's JWKS with
 * `jose` (signature, issuer, audience, expiry, authorized party), which scopes the caller to the one organization
 * its `org_id` claim (or `o.id`, Clerk's v2 tokens; `service.auth.organization_claim` picks another) names.
 * A refused request answers 401 (no or bad credentials) or 403/404 (another organization's resource) and is
 * written to the audit log (`auth.denied`) without the token.
 *
 * For other HTTP surfaces (the dashboard): `auth.preHandler` as a fastify preHandler, then `principalOf(req)`.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import type { Logger } from 'pino';
import type { JwtAuthConfig } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { safeMessage } from '../db/tx.ts';
import { type Actor, auditTo } from '../security/audit.ts';

export type Principal =
  | { kind: 'service_token'; actor: Actor; organizationId: undefined }
  /** expiresAt: the token's `exp` (ms), so a status-page session made from it ends no later. */
  | { kind: 'user'; actor: Actor; organizationId: string; expiresAt?: number | undefined };

export interface AuthOptions {
  db: Database;
  logger: Logger;
  /** Read at every request: a configuration reload takes effect at once. */
  token: () => string | undefined;
  jwt: () => JwtAuthConfig | undefined;
}

/** A refusal is 401 (no or bad credentials) or 403 (a valid token that names no organization: admin of nothing). */
export type Outcome = { ok: true; principal: Principal } | { ok: false; status: 401 | 403; reason: string };

const principals = new WeakMap<FastifyRequest, Principal>();
const correlations = new WeakMap<FastifyRequest, string>();

/** The authenticated caller of a request that passed `preHandler`. */
export function principalOf(req: FastifyRequest): Principal | undefined {
  return principals.get(req);
}

/** The request's correlation id: its X-Request-Id when it sent a sane one, else a fresh UUID. */
export function correlationOf(req: FastifyRequest): string {
  let id = correlations.get(req);
  if (!id) {
    const h = req.headers['x-request-id'];
    id = typeof h === 'string' && /^[A-Za-z0-9._:-]{1,100}$/.test(h) ? h : randomUUID();
    correlations.set(req, id);
  }
  return id;
}

/** May this caller see or act on this organization's resources? */
export function mayAccess(p: Principal, organizationId: string): boolean {
  return p.kind === 'service_token' || p.organizationId === organizationId;
}

// Asymmetric only: a JWKS never holds an HMAC secret, and `none` is never acceptable.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

function tokenEquals(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Why a verification failed, in words that never include the token. */
function jwtReason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is not valid';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'the token was not signed by a key of the configured JWKS';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's "${err.claim}" claim is not accepted`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid)
    return 'the JWKS could not be fetched or read';
  if (err instanceof joseErrors.JOSEError) return 'the token is malformed';
  return `the token could not be verified (${safeMessage(err)})`;
}

export class AdminAuth {
  private jwks: { url: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;

  constructor(private readonly o: AuthOptions) {}

  /** Authenticate the request's `Authorization: Bearer …` header. */
  async authenticate(req: Pick<FastifyRequest, 'headers'>): Promise<Outcome> {
    const header = req.headers.authorization;
    if (!header) return { ok: false, status: 401, reason: 'no Authorization header' };
    if (!header.startsWith('Bearer '))
      return { ok: false, status: 401, reason: 'the Authorization header is not "Bearer <token>"' };
    return this.credential(header.slice('Bearer '.length).trim());
  }

  /** Authenticate a bare credential (a service token or a JWT), e.g. what the status page's sign-in form got. */
  async credential(given: string): Promise<Outcome> {
    const token = this.o.token();
    if (token && tokenEquals(given, token))
      return {
        ok: true,
        principal: { kind: 'service_token', actor: { type: 'service_token', id: 'static' }, organizationId: undefined },
      };
    const jwt = this.o.jwt();
    if (!jwt || given.split('.').length !== 3)
      return {
        ok: false,
        status: 401,
        reason: token || jwt ? 'wrong service token' : 'no service token or JWT verification is configured',
      };
    return this.verifyJwt(given, jwt);
  }

  private async verifyJwt(token: string, cfg: JwtAuthConfig): Promise<Outcome> {
    if (this.jwks?.url !== cfg.jwksUrl)
      this.jwks = { url: cfg.jwksUrl, set: createRemoteJWKSet(new URL(cfg.jwksUrl), { timeoutDuration: 5000 }) };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks.set, {
        issuer: cfg.issuer,
        ...(cfg.audience ? { audience: cfg.audience } : {}),
        algorithms: ALGORITHMS,
        clockTolerance: cfg.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      return { ok: false, status: 401, reason: jwtReason(err) };
    }
    if (cfg.authorizedParties.length && !cfg.authorizedParties.includes(String(payload.azp ?? '')))
      return { ok: false, status: 401, reason: 'the token\'s "azp" (authorized party) is not accepted' };
    let org = claimAt(payload, cfg.organizationClaim);
    if (org === undefined && cfg.organizationClaim === 'org_id') org = claimAt(payload, 'o.id');
    if (typeof org !== 'string' || !org)
      return { ok: false, status: 403, reason: `the token has no organization (claim "${cfg.organizationClaim}")` };
    return {
      ok: true,
      principal: {
        kind: 'user',
        actor: { type: 'user', id: String(payload.sub) },
        organizationId: org,
        expiresAt: Number(payload.exp) * 1000,
      },
    };
  }

  /**
   * Record a refused request: 401 without a principal, 403/404 with one (the organization it reached for).
   * Never throws (a failing audit write is logged; the refusal stands).
   */
  async denied(
    req: FastifyRequest,
    status: number,
    reason: string,
    o: { principal?: Principal | undefined; organizationId?: string | null | undefined } = {},
  ): Promise<void> {
    const path = req.url.split('?')[0] ?? req.url;
    this.o.logger.warn({ method: req.method, path, status, why: reason }, 'admin request refused');
    await auditTo(this.o.db, {
      actor: o.principal?.actor ?? { type: 'anonymous', id: req.ip || 'unknown' },
      organizationId: o.organizationId ?? null,
      action: 'auth.denied',
      resourceType: 'endpoint',
      resourceId: `${req.method} ${path}`,
      count: 0,
      correlationId: correlationOf(req),
      details: {
        status,
        reason,
        ...(o.principal?.organizationId ? { principal_organization: o.principal.organizationId } : {}),
      },
    }).catch((e) => this.o.logger.error({ err: { message: safeMessage(e) } }, 'could not audit a refused request'));
  }

  /**
   * A fastify preHandler: 401 (or 403 for a token of no organization; audited) unless the caller authenticates; the
   * principal is then principalOf(req).
   */
  readonly preHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const r = await this.authenticate(req);
    if (r.ok) {
      principals.set(req, r.principal);
      return;
    }
    await this.denied(req, r.status, r.reason);
    if (r.status === 401) reply.header('www-authenticate', 'Bearer');
    await reply.code(r.status).send({ error: r.reason });
  };
}
