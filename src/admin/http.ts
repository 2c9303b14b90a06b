/**
 * The admin API's router: route matching, request validation against each route's declared schema,
 * authentication and scopes, JSON answers with catalogue codes. Routes (routes.ts) declare
 * everything the OpenAPI document (openapi.ts) says about them, so the document cannot drift from
 * the code. It takes and gives plain requests and replies (transport/http.ts), so it runs on a
 * uWS listener (transport/http-uws.ts mounts it) and in-process (inject()) alike.
 *
 * Every request, whatever its outcome:
 *   - HEAD runs the GET route; the listener (or inject()) sends its status and headers without the
 *     body (transport/http.ts headReply). A path without GET answers HEAD 405 with `Allow`, as
 *     every 405 does;
 *   - a change (POST, PUT, DELETE) writes one audit line at info: `admin change` with `audit: true`,
 *     method, route template, path parameters, status, the API key id (null when it did not
 *     authenticate) and the refusal code; never the body (it may carry key material or tokens);
 *   - the answer is counted and timed (metrics.ts) by method, route template and status.
 *
 * Order of refusals: no route has the path 404, none has the method 405, a path parameter with a
 * malformed percent-escape 400 LK_BAD_PATH, a body over MAX_BODY_BYTES 413; then authentication
 * (401), the scope (403), the body and query checks (400), and the handler.
 */
import type { Logger } from 'pino';
import type client from 'prom-client';
import { AdminMetrics, UNMATCHED_ROUTE } from './metrics.js';
import { LatchkeyError, toLatchkeyError, type ErrorCode } from '../errors.js';
import { errorReply, inject, jsonReply, type HttpHandler, type HttpReply, type HttpRequest, type InjectedReply, type InjectOptions } from '../transport/http.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The subset of JSON Schema the admin API uses (and the OpenAPI document publishes). */
export interface JsonSchema {
  type: 'object' | 'string' | 'integer' | 'boolean' | 'array';
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  enum?: string[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  nullable?: boolean;
  format?: string;
}

export interface RequestContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** The authenticated API key: tenantId null means root. */
  key: { id: string; tenantId: string | null };
}

export interface Reply {
  status: number;
  body?: unknown;
}

export interface Route {
  method: Method;
  /** OpenAPI-style path: /admin/v1/tenants/{tenantId} */
  path: string;
  summary: string;
  /** 'root': root keys only. 'tenant': root keys, or a key of the tenant the resource belongs to. */
  scope: 'root' | 'tenant' | 'public';
  body?: JsonSchema;
  query?: Record<string, JsonSchema>;
  /** Status -> description of the success answers (errors are documented once for all routes). */
  responses: Record<number, { description: string; schema?: JsonSchema }>;
  handler: (ctx: RequestContext) => Promise<Reply>;
}

interface CompiledRoute {
  route: Route;
  regex: RegExp;
  names: string[];
}

export const MAX_BODY_BYTES = 64 * 1024; // 64 KiB: the largest body is a PEM key plus a profile

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const pattern = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route, regex: new RegExp(`^${pattern}$`), names };
}

/** Validate `value` against `schema`; returns the error code and field path, or null. */
export function validate(schema: JsonSchema, value: unknown, path = ''): { code: ErrorCode; detail: string } | null {
  const where = path || 'body';
  if (value === null && schema.nullable) return null;
  switch (schema.type) {
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be an object` };
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        if (!schema.properties || !Object.hasOwn(schema.properties, k)) {
          if (schema.additionalProperties === false) return { code: 'LK_UNKNOWN_FIELD', detail: `${path ? path + '.' : ''}${k}` };
        }
      }
      for (const r of schema.required ?? []) {
        if (obj[r] === undefined) return { code: 'LK_BAD_ARGUMENT', detail: `${path ? path + '.' : ''}${r} is required` };
      }
      for (const [k, sub] of Object.entries(schema.properties ?? {})) {
        if (obj[k] === undefined) continue;
        const err = validate(sub, obj[k], path ? `${path}.${k}` : k);
        if (err) return err;
      }
      return null;
    }
    case 'string': {
      if (typeof value !== 'string') return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be a string` };
      if (schema.minLength !== undefined && value.length < schema.minLength) return { code: 'LK_BAD_ARGUMENT', detail: `${where} is too short` };
      if (schema.maxLength !== undefined && value.length > schema.maxLength) return { code: 'LK_BAD_ARGUMENT', detail: `${where} is too long` };
      if (schema.enum && !schema.enum.includes(value)) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be one of ${schema.enum.join(', ')}` };
      return null;
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be an integer` };
      if (schema.minimum !== undefined && value < schema.minimum) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be >= ${schema.minimum}` };
      if (schema.maximum !== undefined && value > schema.maximum) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be <= ${schema.maximum}` };
      return null;
    }
    case 'boolean':
      return typeof value === 'boolean' ? null : { code: 'LK_BAD_ARGUMENT', detail: `${where} must be true or false` };
    case 'array': {
      if (!Array.isArray(value)) return { code: 'LK_BAD_ARGUMENT', detail: `${where} must be an array` };
      for (let i = 0; i < value.length; i++) {
        const err = schema.items ? validate(schema.items, value[i], `${where}[${i}]`) : null;
        if (err) return err;
      }
      return null;
    }
  }
}

export interface Authenticator {
  /** Resolve an Authorization header to a key, or throw LK_AUTH_REQUIRED / LK_AUTH_INVALID. */
  authenticate(header: string): Promise<{ id: string; tenantId: string | null }>;
}

export interface AdminRouterOptions {
  /**
   * Register the admin request metrics (metrics.ts) on this registry: the node's Stats.registry,
   * so they are scraped with the rest. Without it nothing is measured.
   */
  registry?: client.Registry;
}

/** Methods that change something: each answer to one is an audit line. */
const CHANGES: ReadonlySet<string> = new Set(['POST', 'PUT', 'DELETE']);

export class AdminRouter implements HttpHandler {
  /** Every /admin/* path, and the public routes outside /admin (/readyz). */
  readonly paths: readonly string[];
  readonly maxBodyBytes = MAX_BODY_BYTES;
  private readonly compiled: CompiledRoute[];
  private readonly metrics: AdminMetrics | null;

  constructor(
    readonly routes: Route[],
    private readonly auth: Authenticator,
    private readonly log: Logger,
    opts: AdminRouterOptions = {},
  ) {
    this.compiled = routes.map(compile);
    this.metrics = opts.registry ? new AdminMetrics(opts.registry) : null;
    const outside = new Set(routes.filter((r) => !r.path.startsWith('/admin/')).map((r) => r.path));
    for (const path of outside) {
      if (path.includes('{')) throw new Error(`route ${path}: parameters are supported under /admin/ only`);
    }
    this.paths = ['/admin/*', ...outside];
  }

  /** Answer one request; never rejects (a handler's error is its coded answer, an unknown one 500 LK_INTERNAL). */
  async handle(req: HttpRequest): Promise<HttpReply> {
    const { method, path } = req;
    const found = this.find(method, path);
    // What the audit line and the metrics name: the route template (bounded), never the raw URL.
    const routeLabel = found.label;
    const params = 'match' in found ? found.match.params : {};
    const who: { apiKeyId: string | null } = { apiKeyId: null };
    const answer = (reply: HttpReply, code?: string): HttpReply => {
      this.metrics?.observe(method, routeLabel, reply.status, (performance.now() - req.receivedAt) / 1000);
      if (CHANGES.has(method)) {
        // The audit trail: what was asked, by which key, and how it ended; never the body (it
        // may carry key material or tokens).
        this.log.info({ audit: true, method, route: routeLabel, params, status: reply.status, apiKeyId: who.apiKeyId, ...(code ? { code } : {}) }, 'admin change');
      }
      return reply;
    };
    const fail = (e: LatchkeyError, headers: Record<string, string> = {}): HttpReply => answer(errorReply(e, headers), e.code);

    if ('refusal' in found) return fail(found.refusal, found.headers);
    const { match } = found;
    if (req.bodyTooLarge) return fail(new LatchkeyError('LK_BODY_TOO_LARGE', `limit ${MAX_BODY_BYTES} bytes`));
    try {
      const reply = await this.run(match.route, match.params, new URLSearchParams(req.query), req.headers.authorization ?? '', req.body, who);
      return answer(reply.body === undefined ? { status: reply.status, headers: {}, body: null } : jsonReply(reply.status, reply.body));
    } catch (err) {
      const e = toLatchkeyError(err);
      if (e.code === 'LK_INTERNAL') this.log.error({ err, method, url: path }, 'admin request failed');
      return fail(e);
    }
  }

  /** Only a request a route takes has its body read; the refusals of find() are answered at once. */
  wantsBody(method: string, path: string): boolean {
    return 'match' in this.find(method, path);
  }

  /**
   * The route for `method` and `path` with its decoded parameters, or the refusal the request gets
   * (404, 405 with Allow, 400 LK_BAD_PATH); `label` names the route template for the audit line and
   * the metrics (the first route with this path when none has the method).
   */
  private find(method: string, path: string): { label: string; match: { route: Route; params: Record<string, string> } } | { label: string; refusal: LatchkeyError; headers?: Record<string, string> } {
    // HEAD is GET without the body: it runs the GET route (authentication included).
    const wanted = method === 'HEAD' ? 'GET' : method;
    let label = UNMATCHED_ROUTE;
    let match: { route: Route; params: Record<string, string> } | null = null;
    const allowed = new Set<string>();
    for (const c of this.compiled) {
      const m = c.regex.exec(path);
      if (!m) continue;
      if (label === UNMATCHED_ROUTE) label = c.route.path;
      allowed.add(c.route.method);
      if (c.route.method === 'GET') allowed.add('HEAD');
      if (c.route.method !== wanted || match) continue;
      const decoded: Record<string, string> = {};
      for (let i = 0; i < c.names.length; i++) {
        const v = decodePathParam(m[i + 1]!);
        if (v === null) return { label, refusal: new LatchkeyError('LK_BAD_PATH', `parameter ${c.names[i]}`) };
        decoded[c.names[i]!] = v;
      }
      match = { route: c.route, params: decoded };
    }
    if (match) return { label: match.route.path, match };
    if (allowed.size === 0) return { label, refusal: new LatchkeyError('LK_NOT_FOUND', `${method} ${path}`) };
    return { label, refusal: new LatchkeyError('LK_METHOD_NOT_ALLOWED', `${method} ${path}`), headers: { allow: [...allowed].join(', ') } };
  }

  /** A request answered in-process, as a listener would answer it (transport/http.ts inject()). */
  inject(o: InjectOptions): Promise<InjectedReply> {
    return inject(this, o);
  }

  private async run(route: Route, params: Record<string, string>, query: URLSearchParams, authorization: string, raw: Buffer, who: { apiKeyId: string | null }): Promise<Reply> {
    const key = route.scope === 'public' ? { id: '', tenantId: null } : await this.auth.authenticate(authorization);
    if (route.scope !== 'public') who.apiKeyId = key.id;
    if (route.scope === 'root' && key.tenantId !== null) throw new LatchkeyError('LK_FORBIDDEN');
    let body: Record<string, unknown> = {};
    if (route.body) {
      let parsed: unknown;
      try {
        parsed = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        throw new LatchkeyError('LK_BAD_JSON');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new LatchkeyError('LK_BAD_JSON');
      const err = validate(route.body, parsed);
      if (err) throw new LatchkeyError(err.code, err.detail);
      body = parsed as Record<string, unknown>;
    } else if (raw.length > 0) {
      throw new LatchkeyError('LK_UNKNOWN_FIELD', 'this route takes no body');
    }
    for (const name of query.keys()) {
      if (!route.query || !Object.hasOwn(route.query, name)) throw new LatchkeyError('LK_UNKNOWN_FIELD', `query parameter ${name}`);
    }
    return route.handler({ params, query, body, key });
  }
}

/**
 * A path parameter, percent-decoded; null when an escape is malformed or the bytes are not UTF-8
 * (`%ZZ`, `%`, `%E0%A4%A`, `%C3%28`): decodeURIComponent throws URIError on those.
 */
export function decodePathParam(raw: string): string | null {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}
