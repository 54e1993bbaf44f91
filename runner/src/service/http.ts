/**
 * The HTTP face of `routiq serve` (fastify): webhook endpoints, health, metrics, the JSON status API, on-demand
 * syncs and DLQ replays, and the OpenAPI document, which is built from the same route table that registers them.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

export interface RouteDef {
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  /** Needs admin credentials (Authorization: Bearer <service token or Clerk JWT>). */
  admin: boolean;
  body?: Record<string, unknown>;
  responses: Record<number, string>;
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

export interface HttpOptions {
  bodyLimitBytes: number;
  /** The static service token; undefined: admin endpoints answer 401 (none configured). */
  token: () => string | undefined;
  onAdminDenied?: (req: FastifyRequest, why: string) => void;
  /** Authenticates admin routes instead of the token alone (service/auth.ts); it answers a refusal itself. */
  authenticate?: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** A request refused before its handler ran (e.g. 413: body over the limit). */
  onRefused?: (req: FastifyRequest, status: number, why: string) => void;
}

/** The static service token check (constant time): `Authorization: Bearer <token>`. */
export function tokenOk(header: string | undefined, token: string | undefined): boolean {
  if (!token || !header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice('Bearer '.length));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildHttp(routes: RouteDef[], o: HttpOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimitBytes, return503OnClosing: true });
  // Webhook signatures are over the raw bytes: bodies reach handlers as strings, parsed by the handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: o.bodyLimitBytes }, (_req, body, done) =>
    done(null, body),
  );
  app.setErrorHandler((err: { statusCode?: number; message: string; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status === 413) o.onRefused?.(req, status, err.message);
    void reply
      .code(status)
      .send({ error: status === 500 ? 'internal error; see the service log' : err.message, code: err.code });
  });
  app.setNotFoundHandler((_req, reply) => void reply.code(404).send({ error: 'not found' }));
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      handler: async (req, reply) => {
        if (r.admin && o.authenticate) {
          await o.authenticate(req, reply);
          if (reply.sent) return reply;
        } else if (r.admin && !tokenOk(req.headers.authorization, o.token())) {
          const why = o.token() ? 'missing or wrong service token' : 'no service token is configured';
          o.onAdminDenied?.(req, why);
          return reply.code(401).send({ error: why });
        }
        return r.handler(req, reply);
      },
    });
  }
  return app;
}

/** JSON bodies of admin endpoints: `{}` for an empty body; a 400 for anything that is not a JSON object. */
export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const raw = typeof req.body === 'string' ? req.body.trim() : '';
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw Object.assign(new Error('the body is not JSON'), { statusCode: 400 });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw Object.assign(new Error('the body must be a JSON object'), { statusCode: 400 });
  return v as Record<string, unknown>;
}

/** OpenAPI 3.1 for every route of the table. */
export function openApi(routes: RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = r.url.replace(/:([a-z_]+)/g, '{$1}');
    const params = [...r.url.matchAll(/:([a-z_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    paths[p] ??= {};
    (paths[p] as Record<string, unknown>)[r.method.toLowerCase()] = {
      summary: r.summary,
      ...(params.length ? { parameters: params } : {}),
      // Either scheme (OpenAPI: alternatives are separate objects of the list).
      ...(r.admin ? { security: [{ serviceToken: [] }, { clerkJwt: [] }] } : {}),
      ...(r.body ? { requestBody: { required: false, content: { 'application/json': { schema: r.body } } } } : {}),
      responses: Object.fromEntries(Object.entries(r.responses).map(([code, description]) => [code, { description }])),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Routiq Pipeline service', version },
    components: {
      securitySchemes: {
        serviceToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The static service token (ROUTIQ_SERVICE_TOKEN): every organization.',
        },
        clerkJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "A Clerk-issued session JWT verified against service.auth's JWKS (issuer, audience, expiry, azp): the organization of its org_id (or o.id) claim only; a token without one is refused (403).",
        },
      },
    },
    paths,
  };
}
