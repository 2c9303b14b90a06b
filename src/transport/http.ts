/**
 * HTTP as plain data, for handlers that know nothing of uWS: the request a listener read
 * (HttpRequest), the reply a handler gives (HttpReply), coded JSON answers, HEAD, and inject() to
 * call a handler in-process exactly as a listener would (fastify's inject()). http-uws.ts reads and
 * writes these on a uWS app; the admin API (admin/http.ts) is an HttpHandler.
 */
import { ERRORS, LatchkeyError } from '../errors.js';

/** A request as a listener read it: everything copied out of uWS, the body complete. */
export interface HttpRequest {
  /** Upper case, as sent (any token: PATCH and unknown methods too). */
  method: string;
  /** The path, percent-escapes left as sent, without the query. */
  path: string;
  /** The query string without `?` ('' when there is none). */
  query: string;
  /** Lower-case names; a repeated header keeps its first value. */
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  /**
   * The body passed the handler's maxBodyBytes: `body` is empty and the rest was not read. The
   * handler answers (413 where the route exists), so its own answers (404, 405) still come first.
   */
  bodyTooLarge: boolean;
  remoteAddress: string;
  /** performance.now() when the listener got the request (before the body): request timing starts here. */
  receivedAt: number;
}

/** A reply: `body` null for none. The writer adds Content-Length and leaves the body out for HEAD. */
export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer | null;
}

/** What a listener mounts: the paths it owns ('*' at the end: any path under that prefix), its body bound, its handler. */
export interface HttpHandler {
  readonly paths: readonly string[];
  readonly maxBodyBytes: number;
  /**
   * false: the handler answers this request without its body (a refusal such as 404), so the
   * listener does not wait for one and hands over an empty body. Absent: every body is read.
   */
  wantsBody?(method: string, path: string): boolean;
  /** Never rejects on a request's account (errors are replies); a rejection is a bug, answered 500. */
  handle(req: HttpRequest): Promise<HttpReply>;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** `404 Not Found`: the status line uWS's writeStatus takes. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}

/** Buffers leave as base64 strings (JSON.stringify otherwise writes `{ type: 'Buffer', data: [...] }`). */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('base64');
  }
  return v;
}

/** `value` as JSON (Buffers as base64), after `headers`. */
export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): HttpReply {
  return { status, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(value, jsonReplacer) };
}

/** The body every coded error answers with: `{ code, message }`. */
export function errorJson(e: LatchkeyError): string {
  return JSON.stringify({ code: e.code, message: e.message });
}

/** A coded error: the catalogue's HTTP status and `{ code, message }`. */
export function errorReply(e: LatchkeyError, headers: Record<string, string> = {}): HttpReply {
  return { status: ERRORS[e.code].http, headers: { ...headers, 'content-type': 'application/json' }, body: errorJson(e) };
}

/**
 * The answer to HEAD for the answer a GET got: the same status and headers, the length of the body
 * it leaves out (none for a reply without a body), no body (RFC 9110 9.3.2).
 */
export function headReply(reply: HttpReply): HttpReply {
  if (reply.body === null) return reply;
  return { status: reply.status, headers: { ...reply.headers, 'content-length': String(Buffer.byteLength(reply.body)) }, body: null };
}

export interface InjectOptions {
  method: string;
  /** Path and query as sent: `/admin/v1/tenants?limit=5`. */
  url: string;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as it is; anything else as JSON. */
  body?: unknown;
  remoteAddress?: string;
}

export interface InjectedReply {
  status: number;
  headers: Record<string, string>;
  /** The body as a client reads it ('' for HEAD and for none). */
  text: string;
  /** The body parsed as JSON when the reply says it is JSON and has one; else undefined. */
  json: unknown;
}

/**
 * Call `handler` with the request a listener would have read for these options (no body where
 * the handler wants none, none either past maxBodyBytes; HEAD replies lose their body), without a
 * socket.
 */
export async function inject(handler: HttpHandler, o: InjectOptions): Promise<InjectedReply> {
  const q = o.url.indexOf('?');
  const raw = o.body === undefined ? Buffer.alloc(0) : typeof o.body === 'string' || Buffer.isBuffer(o.body) ? Buffer.from(o.body) : Buffer.from(JSON.stringify(o.body));
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
  const method = o.method.toUpperCase();
  const path = q < 0 ? o.url : o.url.slice(0, q);
  const read = handler.wantsBody?.(method, path) ?? true;
  const tooLarge = read && raw.length > handler.maxBodyBytes;
  let reply = await handler.handle({
    method,
    path,
    query: q < 0 ? '' : o.url.slice(q + 1),
    headers,
    body: read && !tooLarge ? raw : Buffer.alloc(0),
    bodyTooLarge: tooLarge,
    remoteAddress: o.remoteAddress ?? '127.0.0.1',
    receivedAt: performance.now(),
  });
  if (method === 'HEAD') reply = headReply(reply);
  const text = reply.body === null ? '' : reply.body.toString();
  const json = text !== '' && reply.headers['content-type'] === 'application/json' ? (JSON.parse(text) as unknown) : undefined;
  return { status: reply.status, headers: { ...reply.headers }, text, json };
}
