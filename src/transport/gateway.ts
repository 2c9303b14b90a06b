/**
 * uWebSockets.js glue, and nothing else: the endpoint WebSocket on /ep/v1 and the small admin
 * listener. Protocol logic lives in src/session (no uWS imports there).
 *
 * uWS rules followed here (from its typings and examples): a message ArrayBuffer is only valid
 * during the callback and Buffer.from(ab) is a view, so bytes are copied before anything async;
 * a WebSocket object must not be touched after its close handler ran, so the transport tracks it.
 *
 * Settings, and why:
 * - maxPayloadLength = 4 x maxFrameBytes: frames between maxFrameBytes and this hard limit get a
 *   proper DISCONNECT LK_FRAME_TOO_LARGE from the session; beyond it uWS cuts the TCP connection
 *   itself (no close frame: the endpoint sees 1006, see below) without reading the rest, so a 1 GiB
 *   frame never gets buffered.
 * - idleTimeout 960 s (uWS's maximum): keepalive is the protocol's PINGREQ (browsers cannot send
 *   WebSocket pings) enforced by the session registry at 1.5 x the negotiated keepalive (at most
 *   600 s); the uWS timeout is only a backstop.
 * - maxBackpressure = maxBackpressureBytes and closeOnBackpressureLimit off: when a send is
 *   dropped or the queue passes the limit, the session ends as a slow consumer with a coded close.
 * - compression disabled: frames are AES-GCM ciphertext and do not compress.
 *
 * What this uWS build (20.30, the newest that runs on glibc < 2.38) does by itself, measured with a
 * raw socket, and what latchkey makes of it:
 * - a frame over maxPayloadLength, or a text frame that is not UTF-8: uWS closes the TCP connection
 *   without a close frame (the endpoint sees 1006; no 1009/1007 can be sent, there is no hook before
 *   the close). The close handler gets code 1006 and uWS's reason; the session is counted as ended
 *   with LK_FRAME_OVER_HARD_LIMIT / LK_FRAME_BAD_UTF8 (latchkey_sessions_ended_total).
 *   Why not raise maxPayloadLength and send 1009 from the message callback instead: uWS reserves
 *   its fragment buffer for the length a frame header announces (WebSocketContext.h handleFragment,
 *   `fragmentBuffer.reserve(length + remainingBytes)`), and forceClose() is a plain
 *   us_socket_close(), so every byte of limit above the hard limit is memory a stranger can make the
 *   server reserve per connection with one header. docs/protocol.md section 1 documents the 1006;
 *   test/e2e/protocol-frames.test.ts pins it (raw socket: no close frame arrives).
 * - an unmasked client frame: uWS's server parser reads 4 mask bytes that are not there and waits,
 *   so nothing reaches the session; the socket ends at the handshake timeout (before CONNECT, 10 s)
 *   or the keepalive timeout (after), like any silent socket.
 *
 * Guarding (DESIGN 9, issue 9): uWS calls back into JavaScript from C++; an exception escaping a
 * callback ends the process. Every callback here catches: a WebSocket callback that throws closes that
 * one socket with LK_INTERNAL, an HTTP one answers 500; both are counted by place
 * (latchkey_handler_errors_total{where}). src/fatal.ts handles whatever still escapes.
 */
import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import { ERRORS, LatchkeyError, type ErrorCode } from '../errors.js';
import { Session, type SessionHost, type Transport } from '../session/session.js';
import type { SessionRegistry } from '../session/registry.js';
import { mountBootstrap, type BootstrapRoute } from './bootstrap-route.js';
import { errorJson, jsonReply, statusLine } from './http.js';
import { answer500, writeReply } from './http-uws.js';

export { ENDPOINT_PATH, SUBPROTOCOL } from '../protocol/constants.js';
import { ENDPOINT_PATH, SUBPROTOCOL } from '../protocol/constants.js';

interface WsData {
  session: Session | null;
  transport: WsTransport | null;
  remoteAddress: string;
  /** A paced refusal (admission.ts): closed in `open` with this reason; no session, not counted open. */
  refusal?: { close: number; reason: string };
}

/** The close reason of a paced refusal (docs/protocol.md 1.1): the code, a space, `retryAfterMs=<ms>`. */
export function pacedReason(code: ErrorCode, retryAfterMs: number): string {
  return `${code} retryAfterMs=${Math.max(0, Math.round(retryAfterMs))}`;
}

/** uWS's reasons for the connections it cuts itself (close code 1006), and the code latchkey counts. */
const UWS_CUT_REASONS: Record<string, ErrorCode> = {
  'Received too big message': 'LK_FRAME_OVER_HARD_LIMIT',
  'Received invalid UTF-8': 'LK_FRAME_BAD_UTF8',
};

/**
 * Transports with frames queued by sendDeferred(), written together once per event-loop turn
 * (setImmediate: after every message uWS read in this turn was handled).
 */
const deferred = new Set<WsTransport>();
let flushScheduled = false;
function flushDeferred(): void {
  flushScheduled = false;
  const all = [...deferred];
  deferred.clear();
  for (const t of all) t.flush();
}

class WsTransport implements Transport {
  closed = false;
  /**
   * Frames queued by sendDeferred(); while any wait, send() queues behind them (wire order = counter
   * order). null while empty: most sessions never have a deferred frame, and an empty array per
   * session is 32 B (docs/performance.md "Per-session memory budget").
   */
  private queue: Buffer[] | null = null;
  private queuedBytes = 0;
  constructor(
    private readonly ws: uWS.WebSocket<WsData>,
    readonly remoteAddress: string,
    private readonly maxBackpressure: number,
  ) {}
  send(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.queue) return this.sendDeferred(frame);
    const status = this.ws.send(frame, true, false);
    return this.checkBackpressure(status);
  }
  /**
   * Queue a frame for the end of this event-loop turn. A relayed event is written from the
   * sender's message callback, where uWS corks only the sender's socket: written at once, each
   * delivery would be its own syscall and TCP segment (bench/events: ~4-5 µs per event). Queued,
   * a receiver's deliveries of one turn go out corked, in one write.
   */
  sendDeferred(frame: Buffer): boolean {
    if (this.closed) return false;
    (this.queue ??= []).push(frame);
    this.queuedBytes += frame.byteLength;
    if (this.queuedBytes + this.ws.getBufferedAmount() > this.maxBackpressure) {
      this.close(ERRORS.LK_SLOW_CONSUMER.close ?? 4008, 'LK_SLOW_CONSUMER');
      return false;
    }
    deferred.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushDeferred);
    }
    return true;
  }
  /** Write the queued frames in one corked batch. */
  flush(): void {
    if (!this.queue) return;
    const frames = this.queue;
    this.queue = null;
    this.queuedBytes = 0;
    deferred.delete(this);
    if (this.closed) return;
    let status = 0;
    this.ws.cork(() => {
      for (const f of frames) status = this.ws.send(f, true, false);
    });
    this.checkBackpressure(status);
  }
  private checkBackpressure(status: number): boolean {
    if (status === 2 || this.ws.getBufferedAmount() > this.maxBackpressure) {
      this.close(ERRORS.LK_SLOW_CONSUMER.close ?? 4008, 'LK_SLOW_CONSUMER');
      return false;
    }
    return true;
  }
  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount() + this.queuedBytes;
  }
  close(code: number, reason: string): void {
    if (this.closed) return;
    // Whatever was queued goes out before the close (a DISCONNECT queued behind events, say).
    if (this.queue) {
      const frames = this.queue;
      this.queue = null;
      this.queuedBytes = 0;
      deferred.delete(this);
      this.ws.cork(() => {
        for (const f of frames) this.ws.send(f, true, false);
      });
    }
    this.closed = true;
    this.ws.end(code, reason);
  }
}

export interface GatewayOptions {
  host: string;
  port: number;
  adminHost: string;
  adminPort: number;
  /**
   * Share the endpoint port with the other gateway processes of this node (SO_REUSEPORT: the
   * kernel spreads connections over them; node/primary.ts checked the port was free). Otherwise,
   * and always for the admin port, the port is taken exclusively: a second server on a taken port
   * fails with LK_LISTEN_FAILED instead of silently splitting its traffic.
   */
  shareEndpointPort?: boolean;
  /** No admin listener in this process (a gateway process of a multi-process node other than the first). */
  noAdminListener?: boolean;
  maxFrameBytes: number;
  maxBackpressureBytes: number;
  sessionHost: SessionHost;
  registry: SessionRegistry;
  health: () => Record<string, unknown>;
  /** A multi-process node: every process's health, listed under `processes` in /healthz. */
  processes?: () => Promise<unknown[]>;
  /** POST /bootstrap/v1/resolve on the endpoint listener (absent: 404). */
  bootstrap?: BootstrapRoute;
  /** Mount further admin-listener routes (admin API, /metrics) before the catch-all. */
  mountAdmin?: (app: uWS.TemplatedApp, guard: Gateway['httpGuard']) => void;
  /** Connection admission at the upgrade (protection/admission.ts); absent: everything is admitted. */
  admission?: {
    admitConnection(remoteAddress: string): { status: number; code: ErrorCode; retryAfterSec: number; retryAfterMs?: number } | null;
    connectionClosed(): void;
  };
  /** A callback threw (counted by place); the socket was closed or answered 500. */
  onHandlerError?: (where: string, err: unknown) => void;
  /** A connection uWS cut itself (oversize frame, bad UTF-8): count the session as ended with `code`. */
  onTransportCut?: (code: ErrorCode) => void;
  log: Logger;
}

/**
 * Refusal answers by (status, code, Retry-After): under a flood every refused upgrade would
 * otherwise build the same strings again (garbage on the hot path of an attack). Bounded: Retry-After
 * values are seconds of a ban's remaining time, so the map is cleared past REFUSAL_CACHE_MAX.
 */
const refusalCache = new Map<string, { status: Buffer; retryAfter: Buffer; body: Buffer }>();
const REFUSAL_CACHE_MAX = 4096;
const H_RETRY_AFTER = Buffer.from('retry-after');
const H_JSON = Buffer.from('application/json');
const H_CONTENT_TYPE = Buffer.from('content-type');

/** Answer a refused upgrade and close the connection (frees the file descriptor at once). */
function refuseUpgrade(res: uWS.HttpResponse, r: { status: number; code: ErrorCode; retryAfterSec: number }): void {
  const k = `${r.status} ${r.code} ${r.retryAfterSec}`;
  let a = refusalCache.get(k);
  if (!a) {
    if (refusalCache.size >= REFUSAL_CACHE_MAX) refusalCache.clear();
    a = {
      status: Buffer.from(statusLine(r.status)),
      retryAfter: Buffer.from(String(r.retryAfterSec)),
      body: Buffer.from(JSON.stringify({ code: r.code, message: ERRORS[r.code].message, retryAfterSec: r.retryAfterSec })),
    };
    refusalCache.set(k, a);
  }
  const answer = a;
  res.cork(() => {
    res.writeStatus(answer.status).writeHeader(H_CONTENT_TYPE, H_JSON).writeHeader(H_RETRY_AFTER, answer.retryAfter).end(answer.body, true);
  });
}

function isNativeUws(): boolean {
  // The npm republish falls back to a slow `ws`-based shim when the native binary does not load.
  return typeof (uWS as unknown as { us_socket_local_port?: unknown }).us_socket_local_port === 'function' &&
    String(uWS.App).includes('[native code]');
}

/** LIBUS_LISTEN_EXCLUSIVE_PORT: no SO_REUSEPORT, so a port another process holds fails to bind. */
const LISTEN_EXCLUSIVE = 1;
const LISTEN_SHARED = 0;

function listen(app: uWS.TemplatedApp, host: string, port: number, what: string, exclusive: boolean): Promise<uWS.us_listen_socket> {
  return new Promise((resolve, reject) => {
    // uWS.js takes (host, port, options, cb) although its typings only list (port, options, cb).
    const listenWith = app.listen as unknown as (h: string, p: number, opts: number, cb: (s: uWS.us_listen_socket | false) => void) => void;
    listenWith.call(app, host, port, exclusive ? LISTEN_EXCLUSIVE : LISTEN_SHARED, (sock) =>
      sock ? resolve(sock) : reject(new LatchkeyError('LK_LISTEN_FAILED', `${what} port ${host}:${port} is taken (or the address is not on this machine)`)),
    );
  });
}

function textDecoder(ab: ArrayBuffer): string {
  return Buffer.from(ab).toString('utf8');
}

export class Gateway {
  private listenSockets: uWS.us_listen_socket[] = [];
  port = 0;
  adminPort = 0;
  readonly native = isNativeUws();

  constructor(private readonly opts: GatewayOptions) {}

  /** The HTTP guard for routes mounted outside this class (bootstrap, admin API, /metrics). */
  readonly httpGuard = <A extends unknown[]>(where: string, fn: (res: uWS.HttpResponse, ...a: A) => void): ((res: uWS.HttpResponse, ...a: A) => void) => this.http(where, fn);

  /** Wrap a uWS HTTP callback: a throw answers 500 and is counted, never reaching uWS. */
  private http<A extends unknown[]>(where: string, fn: (res: uWS.HttpResponse, ...a: A) => void): (res: uWS.HttpResponse, ...a: A) => void {
    return (res, ...a) => {
      try {
        fn(res, ...a);
      } catch (err) {
        this.handlerError(where, err);
        answer500(res);
      }
    };
  }

  private handlerError(where: string, err: unknown): void {
    this.opts.log.error({ err, where }, 'uWS callback threw; answered with LK_INTERNAL');
    try {
      this.opts.onHandlerError?.(where, err);
    } catch {
      // Counting must not fail the guard.
    }
  }

  /** A WebSocket callback threw: close that one socket with LK_INTERNAL. */
  private wsError(where: string, ws: uWS.WebSocket<WsData>, err: unknown): void {
    this.handlerError(where, err);
    try {
      const t = ws.getUserData().transport;
      if (t && !t.closed) t.close(ERRORS.LK_INTERNAL.close!, 'LK_INTERNAL');
      else if (!t) ws.end(ERRORS.LK_INTERNAL.close!, 'LK_INTERNAL');
    } catch {
      // The socket is already gone.
    }
  }

  async start(): Promise<void> {
    const o = this.opts;
    if (!this.native) o.log.warn('uWebSockets.js native binary not loaded: running on its slow JavaScript fallback');
    const app = uWS.App();
    app.ws<WsData>(ENDPOINT_PATH, {
      compression: uWS.DISABLED,
      maxPayloadLength: o.maxFrameBytes * 4,
      idleTimeout: 960,
      maxBackpressure: o.maxBackpressureBytes,
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: false,
      upgrade: this.http('ws.upgrade', (res, req: uWS.HttpRequest, context: uWS.us_socket_context_t) => {
        const key = req.getHeader('sec-websocket-key');
        const protocols = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const remoteAddress = textDecoder(res.getRemoteAddressAsText());
        // Cheapest refusals first: bans, the connection cap, the per-address rate (admission.ts).
        const refusal = o.admission?.admitConnection(remoteAddress);
        const protocol = protocols.split(',').map((p) => p.trim()).includes(SUBPROTOCOL) ? SUBPROTOCOL : '';
        if (refusal?.retryAfterMs !== undefined) {
          // Paced: the endpoint must learn its return time, and a browser's WebSocket reads a close
          // reason but not an HTTP answer. uWS answers the upgrade natively; `open` closes it.
          const close = ERRORS[refusal.code].close ?? 4003;
          res.upgrade<WsData>({ session: null, transport: null, remoteAddress, refusal: { close, reason: pacedReason(refusal.code, refusal.retryAfterMs) } }, key, protocol, extensions, context);
          return;
        }
        if (refusal) return refuseUpgrade(res, refusal);
        try {
          res.upgrade<WsData>({ session: null, transport: null, remoteAddress }, key, protocol, extensions, context);
        } catch (err) {
          o.admission?.connectionClosed();
          throw err;
        }
      }),
      open: (ws) => {
        try {
          const data = ws.getUserData();
          if (data.refusal) return ws.end(data.refusal.close, data.refusal.reason);
          const transport = new WsTransport(ws, data.remoteAddress, o.maxBackpressureBytes);
          const session = new Session(o.sessionHost, transport);
          data.transport = transport;
          data.session = session;
          o.registry.opened(session);
        } catch (err) {
          this.wsError('ws.open', ws, err);
        }
      },
      message: (ws, message, isBinary) => {
        try {
          const session = ws.getUserData().session;
          if (!session) return;
          // A SYNC frame of an established session is opened synchronously and never kept (only its
          // decrypted contents are): it may borrow the ArrayBuffer. Anything else (a CONNECT waits
          // for the crypto pool) gets a copy: the ArrayBuffer is invalid after this callback returns.
          if (isBinary && session.state === 'ESTABLISHED' && message.byteLength > 0 && new Uint8Array(message, 0, 1)[0] === 0x0f) {
            session.onMessage(Buffer.from(message), isBinary);
            return;
          }
          const copy = Buffer.allocUnsafe(message.byteLength);
          copy.set(new Uint8Array(message));
          session.onMessage(copy, isBinary);
        } catch (err) {
          this.wsError('ws.message', ws, err);
        }
      },
      drain: () => undefined,
      close: (ws, code, reason) => {
        try {
          const data = ws.getUserData();
          if (data.refusal) return;
          o.admission?.connectionClosed();
          if (data.transport) data.transport.closed = true;
          if (code === 1006 && data.session && data.session.state !== 'CLOSED') {
            const cut = UWS_CUT_REASONS[Buffer.from(reason).toString('utf8')];
            if (cut) o.onTransportCut?.(cut);
          }
          data.session?.onTransportClosed();
        } catch (err) {
          this.handlerError('ws.close', err);
        }
      },
    });
    if (o.bootstrap) mountBootstrap(app, o.bootstrap, o.log, this.httpGuard);
    const notFoundJson = errorJson(new LatchkeyError('LK_NOT_FOUND'));
    const notFound = this.http('http.404', (res, req: uWS.HttpRequest) => {
      const head = req.getMethod() === 'head';
      res.cork(() => {
        res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json');
        // HEAD: the headers GET would get, never a body (RFC 9110; a body breaks HTTP clients).
        if (head) res.endWithoutBody();
        else res.end(notFoundJson);
      });
    });
    app.any('/*', notFound);

    const admin = uWS.App();
    admin.get('/healthz', this.http('admin.healthz', (res) => {
      const own = { status: 'ok', uws: this.native ? 'native' : 'fallback', ...o.health() };
      if (!o.processes) return writeReply(res, jsonReply(200, own), false);
      // The node's other processes answer through the primary; one that does not is listed with
      // its error, and the node is still alive (this process answers).
      let aborted = false;
      res.onAborted(() => (aborted = true));
      o.processes().then(
        (processes) => ({ ...own, processes }),
        (err: unknown) => ({ ...own, processes: null, processesError: (err as Error).message }),
      ).then((body) => {
        if (!aborted) writeReply(res, jsonReply(200, body), false);
      }).catch((err: unknown) => this.handlerError('admin.healthz', err));
    }));
    admin.head('/healthz', this.http('admin.healthz', (res) => {
      res.cork(() => res.writeHeader('content-type', 'application/json').endWithoutBody());
    }));
    o.mountAdmin?.(admin, this.httpGuard);
    admin.any('/*', notFound);

    // Admin first: with several gateway processes, the one holding the admin port is the only one
    // that may fail on it, before it accepts any endpoint.
    if (!o.noAdminListener) {
      const adminSock = await listen(admin, o.adminHost, o.adminPort, 'admin', true);
      this.listenSockets.push(adminSock);
      this.adminPort = uWS.us_socket_local_port(adminSock as unknown as uWS.us_socket);
    }
    let sock: uWS.us_listen_socket;
    try {
      sock = await listen(app, o.host, o.port, 'gateway', !o.shareEndpointPort);
    } catch (err) {
      this.stopListening();
      throw err;
    }
    this.listenSockets.push(sock);
    this.port = uWS.us_socket_local_port(sock as unknown as uWS.us_socket);
  }

  /** Stop accepting connections. Live sessions are ended by the caller (server.ts). */
  stopListening(): void {
    for (const s of this.listenSockets) uWS.us_listen_socket_close(s);
    this.listenSockets = [];
  }
}
