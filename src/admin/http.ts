/**
 * The admin API's HTTP plumbing on uWebSockets.js: route matching, body reading with a size limit,
 * request validation against each route's declared schema, JSON answers with catalogue codes.
 * Routes (routes.ts) declare everything the OpenAPI document (openapi.ts) says about them, so the
 * document cannot drift from the code.
 *
 * Every request, whatever its outcome:
 *   - HEAD runs the GET route and answers its status and headers without a body; a path without GET
 *     answers 405 (no body) with `Allow`, as every 405 does;
 *   - a change (POST, PUT, DELETE) writes one audit line at info: `admin change` with `audit: true`,
 *     method, route template, path parameters, status, the API key id (null when it did not
 *     authenticate) and the refusal code; never the body (it may carry key material or tokens);
 *   - the answer is counted and timed (metrics.ts) by method, route template and status.
 *
 * uWS rules: copy what is needed out of `req` synchronously; register onAborted before anything
 * async; cork every late write.
 */
import type uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import type client from 'prom-client';
import { AdminMetrics, UNMATCHED_ROUTE } from './metrics.js';
import { endWithoutBody } from '../transport/http-head.js';
import { defaultUiDir, mountUi } from './ui-static.js';
import { ERRORS, LatchkeyError, toLatchkeyError, type ErrorCode } from '../errors.js';

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

function errorBody(e: LatchkeyError): string {
  return JSON.stringify({ code: e.code, message: e.message });
}

function statusLine(status: number): string {
  const text: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
  return `${status} ${text[status] ?? 'Status'}`;
}

export interface AdminRouterOptions {
  /**
   * Register the admin request metrics (metrics.ts) on this registry: the node's Stats.registry,
   * so they are scraped with the rest. Without it nothing is measured.
   */
  registry?: client.Registry;
  /**
   * Serve the Administration UI at /ui/ from this directory (ui-static.ts); default: dist/ui of
   * this checkout or package; null: no UI routes (the catch-all 404 answers /ui/).
   */
  uiDir?: string | null;
}

/** Methods that change something: each answer to one is an audit line. */
const CHANGES: ReadonlySet<string> = new Set(['POST', 'PUT', 'DELETE']);


export class AdminRouter {
  private readonly compiled: CompiledRoute[];
  private readonly metrics: AdminMetrics | null;
  private readonly uiDir: string | null;

  constructor(
    readonly routes: Route[],
    private readonly auth: Authenticator,
    private readonly log: Logger,
    opts: AdminRouterOptions = {},
  ) {
    this.compiled = routes.map(compile);
    this.metrics = opts.registry ? new AdminMetrics(opts.registry) : null;
    this.uiDir = opts.uiDir === undefined ? defaultUiDir() : opts.uiDir;
  }

  /**
   * Mount on a uWS app: every /admin/* request goes through here, and so do public routes outside
   * /admin (/readyz), and the Administration UI's static files under /ui/ (ui-static.ts, unless
   * uiDir is null). A handler bug answers 500 LK_INTERNAL and is counted (`onHandlerError`); it
   * never reaches uWS, where it would end the process.
   */
  mount(app: uWS.TemplatedApp, onHandlerError: (err: unknown) => void = () => undefined): void {
    const entry = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      try {
        this.handle(res, req);
      } catch (err) {
        onHandlerError(err);
        this.log.error({ err }, 'admin request handler threw');
        try {
          res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end(errorBody(new LatchkeyError('LK_INTERNAL'))));
        } catch {
          // Already answered or aborted: nothing more to say on this socket.
        }
      }
    };
    app.any('/admin/*', entry);
    const outside = new Set(this.routes.filter((r) => !r.path.startsWith('/admin/')).map((r) => r.path));
    for (const path of outside) {
      if (path.includes('{')) throw new Error(`route ${path}: parameters are supported under /admin/ only`);
      app.any(path, entry);
    }
    if (this.uiDir !== null) {
      const guard = (fn: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void) => (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
        try {
          fn(res, req);
        } catch (err) {
          onHandlerError(err);
          this.log.error({ err }, 'admin UI request handler threw');
          try {
            res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end(errorBody(new LatchkeyError('LK_INTERNAL'))));
          } catch {
            // Already answered or aborted.
          }
        }
      };
      mountUi(app, this.uiDir, this.log, guard);
    }
  }

  private handle(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    // Copy everything out of req now: it is invalid after this function returns.
    const started = performance.now();
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const authorization = req.getHeader('authorization');
    const contentLengthText = req.getHeader('content-length');
    const contentLength = Number(contentLengthText || '0');
    const head = method === 'HEAD';
    // What the audit line and the metrics name: the route template (bounded), never the raw URL.
    let routeLabel = UNMATCHED_ROUTE;
    let params: Record<string, string> = {};
    const who: { apiKeyId: string | null } = { apiKeyId: null };
    let aborted = false;
    let answered = false;
    res.onAborted(() => {
      aborted = true;
    });
    const send = (status: number, body: string | null, headers: Record<string, string> = {}, code?: string): void => {
      if (answered) return;
      answered = true;
      this.metrics?.observe(method, routeLabel, status, (performance.now() - started) / 1000);
      if (CHANGES.has(method)) {
        // The audit trail: what was asked, by which key, and how it ended; never the body (it
        // may carry key material or tokens).
        this.log.info({ audit: true, method, route: routeLabel, params, status, apiKeyId: who.apiKeyId, ...(code ? { code } : {}) }, 'admin change');
      }
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(status));
        for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
        if (body !== null) res.writeHeader('content-type', 'application/json');
        if (head) endWithoutBody(res, body === null ? null : Buffer.byteLength(body));
        else if (body !== null) res.end(body);
        else res.end();
      });
    };
    const fail = (e: LatchkeyError, headers: Record<string, string> = {}): void => send(ERRORS[e.code].http, errorBody(e), headers, e.code);

    // HEAD is GET without the body: it runs the GET route (authentication included).
    const wanted = head ? 'GET' : method;
    let match: { route: Route; params: Record<string, string> } | null = null;
    const allowed = new Set<string>();
    for (const c of this.compiled) {
      const m = c.regex.exec(url);
      if (!m) continue;
      if (routeLabel === UNMATCHED_ROUTE) routeLabel = c.route.path;
      allowed.add(c.route.method);
      if (c.route.method === 'GET') allowed.add('HEAD');
      if (c.route.method !== wanted || match) continue;
      const decoded: Record<string, string> = {};
      for (let i = 0; i < c.names.length; i++) {
        const v = decodePathParam(m[i + 1]!);
        if (v === null) {
          fail(new LatchkeyError('LK_BAD_PATH', `parameter ${c.names[i]}`));
          return;
        }
        decoded[c.names[i]!] = v;
      }
      match = { route: c.route, params: decoded };
    }
    if (!match) {
      if (allowed.size === 0) fail(new LatchkeyError('LK_NOT_FOUND', `${method} ${url}`));
      else fail(new LatchkeyError('LK_METHOD_NOT_ALLOWED', `${method} ${url}`), { allow: [...allowed].join(', ') });
      return;
    }
    routeLabel = match.route.path;
    params = match.params;
    if (contentLength > MAX_BODY_BYTES) {
      fail(new LatchkeyError('LK_BODY_TOO_LARGE', `limit ${MAX_BODY_BYTES} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    res.onData((ab, isLast) => {
      try {
        onChunk(ab, isLast);
      } catch (err) {
        this.log.error({ err, method, url }, 'admin request handler threw');
        fail(new LatchkeyError('LK_INTERNAL'));
      }
    });
    let complete = false;
    const onChunk = (ab: ArrayBuffer, isLast: boolean): void => {
      if (tooLarge || complete) return;
      size += ab.byteLength;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        fail(new LatchkeyError('LK_BODY_TOO_LARGE', `limit ${MAX_BODY_BYTES} bytes`));
        return;
      }
      // Copy: the ArrayBuffer is only valid during this callback.
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (!isLast) return;
      complete = true;
      const route = match!.route;
      void this.run(route, match!.params, query, authorization, Buffer.concat(chunks), who).then(
        (reply) => send(reply.status, reply.body === undefined ? null : JSON.stringify(reply.body, jsonReplacer)),
        (err: unknown) => {
          const e = toLatchkeyError(err);
          if (e.code === 'LK_INTERNAL') this.log.error({ err, method, url }, 'admin request failed');
          fail(e);
        },
      ).catch((err: unknown) => this.log.error({ err, method, url }, 'admin answer could not be written'));
    };
    // `Content-Length: 0` whose header arrived in more than one TCP segment: uWS 20.30 never calls
    // onData for it (npm run fuzz found the request hanging until the idle timeout). The body is
    // known to be empty, so the request is complete now.
    if (contentLengthText === '0') onChunk(new ArrayBuffer(0), true);
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

/** Buffers leave as base64 strings. */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('base64');
  }
  return v;
}
