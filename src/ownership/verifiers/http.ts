/**
 * HTTP to identity providers, shared by the built-in verifiers.
 *
 * One undici Pool per verifier with `connections: max_parallel_connections` and pipelining 1: a
 * connection carries one request at a time, so at most max_parallel_connections requests are at the
 * provider at once; further calls wait in the pool's queue. Each call carries an AbortSignal of
 * request_timeout_ms that covers the queue wait, connect, headers and body, so a verify() is bounded
 * even when the provider is saturated or silent.
 *
 * Failure mapping (the verifier interprets 2xx-4xx answers itself):
 *   timeout, refused, reset, DNS, TLS        -> CONNECTION_ERROR
 *   5xx, body not JSON, body over 1 MiB, broken HTTP -> REMOTE_ERROR
 *   pool closed, anything else thrown        -> INTERNAL_ERROR
 */
import { createRequire } from 'node:module';
import type { Pool } from 'undici';
import { LatchkeyError } from '../../errors.js';
import type { VerifyFailure } from './types.js';

const MAX_BODY_BYTES = 1024 * 1024; // 1 MiB: token info, debug_token and JWKS answers are a few KiB

/** Avro fields every HTTP verifier shares; Kaa named the first one the same way. */
export const HTTP_CONFIG_FIELDS = [
  {
    name: 'max_parallel_connections',
    type: 'int',
    default: 5,
    doc: 'Most requests this verifier has at the provider at once (1-256); more calls queue, within their timeout',
  },
  {
    name: 'request_timeout_ms',
    type: 'int',
    default: 5000,
    doc: 'Bound of one provider call in ms (1-60000), including the wait for a free connection',
  },
] as const;

export interface HttpConfig {
  max_parallel_connections: number;
  request_timeout_ms: number;
}

export type JsonOutcome = { ok: true; status: number; body: unknown } | VerifyFailure;

export function fail(code: VerifyFailure['code'], reason: string): VerifyFailure {
  return { ok: false, code, reason };
}

/** Checks Avro cannot express; throws LK_BAD_VERIFIER_CONFIG naming the field. */
export function checkHttpConfig(type: string, c: HttpConfig): void {
  checkIntRange(type, 'max_parallel_connections', c.max_parallel_connections, 1, 256);
  checkIntRange(type, 'request_timeout_ms', c.request_timeout_ms, 1, 60_000);
}

export function checkIntRange(type: string, field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${type}: ${field} must be an integer in ${min}..${max}`);
  }
}

/** An absolute http(s) URL without credentials or fragment. */
export function providerUrl(type: string, field: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${type}: ${field} is not an absolute URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.hash) {
    throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${type}: ${field} must be an http(s) URL without credentials or fragment`);
  }
  return u;
}

/** `base` with `segment` appended to its path (keeps a version prefix such as /v19.0). */
export function joinPath(base: URL, segment: string): URL {
  const u = new URL(base.href);
  u.pathname = u.pathname.replace(/\/+$/, '') + '/' + segment.replace(/^\/+/, '');
  return u;
}

/** undici, loaded with the first provider client (~130 modules a gateway process need not load at start). */
let undici: typeof import('undici') | null = null;
function undiciPool(): typeof import('undici').Pool {
  return (undici ??= createRequire(import.meta.url)('undici') as typeof import('undici')).Pool;
}

export class ProviderClient {
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly timeoutMs: number;

  constructor(origin: URL, config: HttpConfig) {
    this.origin = origin.origin;
    this.timeoutMs = config.request_timeout_ms;
    const PoolCtor = undiciPool();
    this.pool = new PoolCtor(this.origin, {
      connections: config.max_parallel_connections,
      pipelining: 1,
      // Backstops to the per-call signal; the signal alone also covers the queue wait.
      connectTimeout: this.timeoutMs,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      maxResponseSize: MAX_BODY_BYTES,
    });
  }

  /** GET `url` (same origin as the pool) and parse the answer as JSON; 5xx is a failure here. */
  async getJson(url: URL, headers: Record<string, string> = {}): Promise<JsonOutcome> {
    if (url.origin !== this.origin) return fail('INTERNAL_ERROR', 'provider URL outside the verifier pool');
    let status: number;
    let text: string;
    try {
      const res = await this.pool.request({
        method: 'GET',
        path: url.pathname + url.search,
        headers: { accept: 'application/json', ...headers },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      // Always read the body, even of an error, so the connection returns to the pool.
      text = await res.body.text();
    } catch (err) {
      return transportFailure(err, this.timeoutMs);
    }
    if (status >= 500) return fail('REMOTE_ERROR', `provider answered HTTP ${status}`);
    if (text === '') return { ok: true, status, body: undefined };
    try {
      return { ok: true, status, body: JSON.parse(text) as unknown };
    } catch {
      return fail('REMOTE_ERROR', `provider answered HTTP ${status} with a body that is not JSON`);
    }
  }

  /** Waits for calls in flight (each bounded by its timeout), then closes the connections. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

export function transportFailure(err: unknown, timeoutMs: number): VerifyFailure {
  const e = (err ?? {}) as { name?: unknown; code?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (e.name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return fail('CONNECTION_ERROR', `provider did not answer within ${timeoutMs} ms`);
  }
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return fail('REMOTE_ERROR', `provider answer larger than ${MAX_BODY_BYTES} bytes`);
  if (code?.startsWith('HPE_')) return fail('REMOTE_ERROR', 'provider answered with malformed HTTP');
  if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED') return fail('INTERNAL_ERROR', 'verifier is closed');
  // System errors (ECONNREFUSED, ECONNRESET, ENOTFOUND...), TLS failures and undici socket errors.
  if (code !== undefined) return fail('CONNECTION_ERROR', `provider unreachable (${code})`);
  return fail('INTERNAL_ERROR', 'provider call failed');
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A provider id as a string: ids arrive as strings, but accept exact JSON integers too. */
export function idString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return undefined;
}

/** A number that may arrive as a numeric string (Google tokeninfo v3 sends "exp": "1712345678"). */
export function numeric(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return undefined;
}
