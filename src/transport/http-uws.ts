/**
 * Plain HTTP handlers (http.ts) on a uWS app, and the uWS request and reply pieces the listeners'
 * own routes share (bootstrap, /healthz, the catch-all 404).
 *
 * uWS rules followed here: everything a handler needs is copied out of `req` synchronously (it is
 * invalid once the callback returns); onAborted is registered before anything async and nothing is
 * written after it fired; every write is corked; body chunks are copied before the callback returns
 * unless the caller borrows them. A handler bug answers 500 LK_INTERNAL and is reported; it never
 * reaches uWS, where it would end the process.
 */
import type uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';
import { endWithoutBody } from './http-head.js';
import { errorJson, headReply, statusLine, type HttpHandler, type HttpReply } from './http.js';

const INTERNAL_JSON = errorJson(new LatchkeyError('LK_INTERNAL'));

/** Write a 500 LK_INTERNAL if the response can still take one (a handler threw before answering). */
export function answer500(res: uWS.HttpResponse): void {
  try {
    res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end(INTERNAL_JSON));
  } catch {
    // Already answered or aborted: nothing more to say on this socket.
  }
}

/**
 * Read the request body of `res`, at most `maxBytes`: `done(body)` once it is complete, `done(null)`
 * at once when Content-Length announces more or the chunks pass the bound (the rest is not read).
 * With `borrow`, a body that arrives in one chunk is a view of uWS's buffer, valid only until `done`
 * returns (no copy: the bootstrap route's hot path); otherwise the body is a copy. A throw from
 * `done` goes to `onError`. The caller has registered onAborted.
 */
export function readBody(
  res: uWS.HttpResponse,
  contentLength: string,
  maxBytes: number,
  borrow: boolean,
  done: (body: Buffer | null) => void,
  onError: (err: unknown) => void,
): void {
  let finished = false;
  let size = 0;
  let chunks: Buffer[] | null = null;
  const finish = (body: Buffer | null): void => {
    finished = true;
    chunks = null;
    try {
      done(body);
    } catch (err) {
      onError(err);
    }
  };
  if (Number(contentLength || '0') > maxBytes) return finish(null);
  res.onData((ab, isLast) => {
    try {
      if (finished) return;
      size += ab.byteLength;
      if (size > maxBytes) return finish(null);
      if (isLast && chunks === null) return finish(borrow ? Buffer.from(ab) : Buffer.from(new Uint8Array(ab)));
      // Copy: the ArrayBuffer is only valid during this callback.
      (chunks ??= []).push(Buffer.from(new Uint8Array(ab)));
      if (isLast) finish(Buffer.concat(chunks));
    } catch (err) {
      onError(err);
    }
  });
  // `Content-Length: 0` whose header arrived in more than one TCP segment: uWS 20.30 never calls
  // onData for it (npm run fuzz found the request hanging until the idle timeout). The body is
  // known to be empty, so the request is complete now.
  if (contentLength === '0') finish(Buffer.alloc(0));
}

/** Write `reply`, corked; to HEAD, its status and headers and the length of the body it leaves out. */
export function writeReply(res: uWS.HttpResponse, reply: HttpReply, head: boolean): void {
  const r = head ? headReply(reply) : reply;
  res.cork(() => {
    res.writeStatus(statusLine(r.status));
    for (const [k, v] of Object.entries(r.headers)) res.writeHeader(k, v);
    // 304 carries no body and no Content-Length of one (RFC 9110 15.4.5).
    if (head || r.status === 304) endWithoutBody(res, null);
    else if (r.body !== null) res.end(r.body);
    else res.end();
  });
}

export interface MountOptions {
  log: Logger;
  /** A handler bug (answered 500 LK_INTERNAL): count it. */
  onHandlerError?: (err: unknown) => void;
}

/** Mount `handler` on every method of each of its paths. */
export function mountHttp(app: uWS.TemplatedApp, handler: HttpHandler, o: MountOptions): void {
  const entry = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
    const st = { aborted: false };
    const bug = (err: unknown): void => {
      try {
        o.onHandlerError?.(err);
      } catch {
        // Counting must not stop the answer.
      }
      o.log.error({ err }, 'HTTP handler threw; answered with LK_INTERNAL');
      if (!st.aborted) answer500(res);
    };
    try {
      // Copy everything out of req now: it is invalid after this function returns.
      const receivedAt = performance.now();
      const method = req.getMethod().toUpperCase();
      const path = req.getUrl();
      const query = req.getQuery() ?? '';
      const headers = Object.create(null) as Record<string, string>;
      req.forEach((k, v) => {
        if (!(k in headers)) headers[k] = v;
      });
      const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString('utf8');
      res.onAborted(() => {
        st.aborted = true;
      });
      const run = (body: Buffer | null): void => {
        handler.handle({ method, path, query, headers, body: body ?? Buffer.alloc(0), bodyTooLarge: body === null, remoteAddress, receivedAt }).then(
          (reply) => {
            if (!st.aborted) writeReply(res, reply, method === 'HEAD');
          },
          bug,
        ).catch((err: unknown) => o.log.error({ err, method, path }, 'HTTP answer could not be written'));
      };
      if (handler.wantsBody?.(method, path) === false) run(Buffer.alloc(0));
      else readBody(res, headers['content-length'] ?? '', handler.maxBodyBytes, false, run, bug);
    } catch (err) {
      bug(err);
    }
  };
  for (const path of handler.paths) app.any(path, entry);
}
