/**
 * The bootstrap route on the endpoint listener (POST /bootstrap/v1/resolve, docs/protocol.md
 * section 9), over uWS: transport/ glue like gateway.ts, which mounts it.
 */
import type uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { BootstrapReply } from '../bootstrap/service.js';
import { LatchkeyError } from '../errors.js';
import { errorJson, statusLine } from './http.js';
import { readBody } from './http-uws.js';

/** What the gateway serves on the bootstrap path: the service's resolve and the request bound. */
export interface BootstrapRoute {
  path: string;
  maxBodyBytes: number;
  resolve(body: Buffer): BootstrapReply | Promise<BootstrapReply>;
}

/** Wraps an HTTP handler so that a throw answers 500 and is counted (Gateway.httpGuard). */
export type HttpGuard = <A extends unknown[]>(where: string, fn: (res: uWS.HttpResponse, ...a: A) => void) => (res: uWS.HttpResponse, ...a: A) => void;

const CORS = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '86400' } as const;

/**
 * The bootstrap route: the body is read in chunks up to `maxBodyBytes` (413 beyond), then answered
 * in the same tick when the service can (the cached path). CORS is open: browsers resolve too, and
 * the answer is public and signed.
 */
// Header names and values as bytes: uWS then copies them as they are instead of converting a JS
// string to UTF-8 on every response (visible in a profile of bench/bootstrap).
const H_CONTENT_TYPE = Buffer.from('content-type');
const H_OCTET_STREAM = Buffer.from('application/octet-stream');
const H_ACAO = Buffer.from('access-control-allow-origin');
const H_ANY = Buffer.from('*');

export function mountBootstrap(app: uWS.TemplatedApp, b: BootstrapRoute, log: Logger, guard: HttpGuard): void {
  app.options(b.path, guard('bootstrap.options', (res) => {
    res.cork(() => {
      res.writeStatus('204 No Content');
      for (const [k, v] of Object.entries(CORS)) res.writeHeader(k, v);
      res.end();
    });
  }));
  const tooLarge: BootstrapReply = { status: 413, contentType: 'application/json', body: errorJson(new LatchkeyError('LK_BODY_TOO_LARGE')) };
  const internal: BootstrapReply = { status: 500, contentType: 'application/json', body: errorJson(new LatchkeyError('LK_INTERNAL')) };
  const send = (res: uWS.HttpResponse, st: { aborted: boolean }, r: BootstrapReply): void => {
    if (st.aborted) return;
    res.cork(() => {
      // 200 is uWS's default status line.
      if (r.status !== 200) res.writeStatus(statusLine(r.status));
      res.writeHeader(H_CONTENT_TYPE, r.contentType === 'application/octet-stream' ? H_OCTET_STREAM : r.contentType).writeHeader(H_ACAO, H_ANY).end(r.body);
    });
  };
  app.post(b.path, guard('bootstrap.post', (res, req: uWS.HttpRequest) => {
    // One small state object per request; the hot path (one chunk, cached answer) allocates little else.
    const st = { aborted: false };
    res.onAborted(() => {
      st.aborted = true;
    });
    const failed = (err: unknown): void => {
      log.error({ err }, 'bootstrap request handler threw');
      send(res, st, internal);
    };
    // Borrowed: resolve() reads the body before it returns or awaits anything.
    readBody(res, req.getHeader('content-length'), b.maxBodyBytes, true, (body) => {
      if (body === null) return send(res, st, tooLarge);
      let r: BootstrapReply | Promise<BootstrapReply>;
      try {
        r = b.resolve(body);
      } catch (err) {
        log.error({ err }, 'bootstrap resolve failed');
        r = internal;
      }
      if (r instanceof Promise) {
        r.then(
          (x) => send(res, st, x),
          (err: unknown) => {
            log.error({ err }, 'bootstrap resolve failed');
            send(res, st, internal);
          },
        ).catch((err: unknown) => log.error({ err }, 'bootstrap answer could not be written'));
      }
      else send(res, st, r);
    }, failed);
  }));
}

