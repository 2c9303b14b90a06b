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
 *   proper DISCONNECT LK_FRAME_TOO_LARGE from the session; beyond it uWS closes the socket itself
 *   (close code 1009) without reading the rest, so a 1 GiB frame never gets buffered.
 * - idleTimeout 960 s (uWS's maximum): keepalive is the protocol's PINGREQ (browsers cannot send
 *   WebSocket pings) enforced by the session registry at 1.5 x the negotiated keepalive (at most
 *   600 s); the uWS timeout is only a backstop.
 * - maxBackpressure = maxBackpressureBytes and closeOnBackpressureLimit off: when a send is
 *   dropped or the queue passes the limit, the session ends as a slow consumer with a coded close.
 * - compression disabled: frames are AES-GCM ciphertext and do not compress.
 */
import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import { ERRORS, LatchkeyError } from '../errors.js';
import { Session, type SessionHost, type Transport } from '../session/session.js';
import type { SessionRegistry } from '../session/registry.js';
import type { BootstrapReply } from '../bootstrap/service.js';

export const ENDPOINT_PATH = '/ep/v1';
export const SUBPROTOCOL = 'latchkey.v1';

interface WsData {
  session: Session | null;
  transport: WsTransport | null;
  remoteAddress: string;
}

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
  /** Frames queued by sendDeferred(); while any wait, send() queues behind them (wire order = counter order). */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  constructor(
    private readonly ws: uWS.WebSocket<WsData>,
    readonly remoteAddress: string,
    private readonly maxBackpressure: number,
  ) {}
  send(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.queue.length > 0) return this.sendDeferred(frame);
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
    this.queue.push(frame);
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
    if (this.queue.length === 0) return;
    const frames = this.queue;
    this.queue = [];
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
    if (this.queue.length > 0) {
      const frames = this.queue;
      this.queue = [];
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
  maxFrameBytes: number;
  maxBackpressureBytes: number;
  sessionHost: SessionHost;
  registry: SessionRegistry;
  health: () => Record<string, unknown>;
  /** POST /bootstrap/v1/resolve on the endpoint listener (absent: 404). */
  bootstrap?: { path: string; maxBodyBytes: number; resolve(body: Buffer): BootstrapReply | Promise<BootstrapReply> };
  /** Mount further admin-listener routes (admin API, /metrics) before the catch-all. */
  mountAdmin?: (app: uWS.TemplatedApp) => void;
  log: Logger;
}

function isNativeUws(): boolean {
  // The npm republish falls back to a slow `ws`-based shim when the native binary does not load.
  return typeof (uWS as unknown as { us_socket_local_port?: unknown }).us_socket_local_port === 'function' &&
    String(uWS.App).includes('[native code]');
}

function listen(app: uWS.TemplatedApp, host: string, port: number): Promise<uWS.us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (sock) => (sock ? resolve(sock) : reject(new LatchkeyError('LK_LISTEN_FAILED', `${host}:${port}`))));
  });
}

function textDecoder(ab: ArrayBuffer): string {
  return Buffer.from(ab).toString('utf8');
}

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

function mountBootstrap(app: uWS.TemplatedApp, b: NonNullable<GatewayOptions['bootstrap']>, log: Logger): void {
  app.options(b.path, (res) => {
    res.cork(() => {
      res.writeStatus('204 No Content');
      for (const [k, v] of Object.entries(CORS)) res.writeHeader(k, v);
      res.end();
    });
  });
  const tooLarge: BootstrapReply = { status: 413, contentType: 'application/json', body: JSON.stringify({ code: 'LK_BODY_TOO_LARGE', message: ERRORS.LK_BODY_TOO_LARGE.message }) };
  const internal: BootstrapReply = { status: 500, contentType: 'application/json', body: JSON.stringify({ code: 'LK_INTERNAL', message: ERRORS.LK_INTERNAL.message }) };
  const send = (res: uWS.HttpResponse, st: { aborted: boolean }, r: BootstrapReply): void => {
    if (st.aborted) return;
    res.cork(() => {
      // 200 is uWS's default status line.
      if (r.status !== 200) res.writeStatus(`${r.status} ${r.status === 404 ? 'Not Found' : r.status === 413 ? 'Payload Too Large' : r.status === 503 ? 'Service Unavailable' : r.status >= 500 ? 'Internal Server Error' : 'Bad Request'}`);
      res.writeHeader(H_CONTENT_TYPE, r.contentType === 'application/octet-stream' ? H_OCTET_STREAM : r.contentType).writeHeader(H_ACAO, H_ANY).end(r.body);
    });
  };
  app.post(b.path, (res) => {
    // One small state object per request; the hot path (one chunk, cached answer) allocates little else.
    const st = { aborted: false, done: false, size: 0, chunks: null as Buffer[] | null };
    res.onAborted(() => {
      st.aborted = true;
    });
    res.onData((ab, isLast) => {
      if (st.done) return;
      st.size += ab.byteLength;
      if (st.size > b.maxBodyBytes) {
        st.done = true;
        send(res, st, tooLarge);
        return;
      }
      let body: Buffer;
      if (isLast && st.chunks === null) {
        // The common case, one chunk: a view is enough, because resolve() reads the body before it
        // returns or awaits anything (the ArrayBuffer is only valid during this callback).
        body = Buffer.from(ab);
      } else {
        // Copy: the ArrayBuffer is only valid during this callback.
        (st.chunks ??= []).push(Buffer.from(new Uint8Array(ab)));
        if (!isLast) return;
        body = Buffer.concat(st.chunks);
      }
      st.done = true;
      st.chunks = null;
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
        );
      }
      else send(res, st, r);
    });
  });
}

export class Gateway {
  private listenSockets: uWS.us_listen_socket[] = [];
  port = 0;
  adminPort = 0;
  readonly native = isNativeUws();

  constructor(private readonly opts: GatewayOptions) {}

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
      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const protocols = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const remoteAddress = textDecoder(res.getRemoteAddressAsText());
        const protocol = protocols.split(',').map((p) => p.trim()).includes(SUBPROTOCOL) ? SUBPROTOCOL : '';
        res.upgrade<WsData>({ session: null, transport: null, remoteAddress }, key, protocol, extensions, context);
      },
      open: (ws) => {
        const data = ws.getUserData();
        const transport = new WsTransport(ws, data.remoteAddress, o.maxBackpressureBytes);
        const session = new Session(o.sessionHost, transport);
        data.transport = transport;
        data.session = session;
        o.registry.opened(session);
      },
      message: (ws, message, isBinary) => {
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
      },
      close: (ws) => {
        const data = ws.getUserData();
        if (data.transport) data.transport.closed = true;
        data.session?.onTransportClosed();
      },
    });
    if (o.bootstrap) mountBootstrap(app, o.bootstrap, o.log);
    app.any('/*', (res) => {
      res.cork(() => {
        res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end(JSON.stringify({ code: 'LK_NOT_FOUND', message: ERRORS.LK_NOT_FOUND.message }));
      });
    });

    const admin = uWS.App();
    admin.get('/healthz', (res) => {
      const body = JSON.stringify({ status: 'ok', uws: this.native ? 'native' : 'fallback', ...o.health() });
      res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
    });
    o.mountAdmin?.(admin);
    admin.any('/*', (res) => {
      res.cork(() => {
        res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end(JSON.stringify({ code: 'LK_NOT_FOUND', message: ERRORS.LK_NOT_FOUND.message }));
      });
    });

    const sock = await listen(app, o.host, o.port);
    this.listenSockets.push(sock);
    this.port = uWS.us_socket_local_port(sock as unknown as uWS.us_socket);
    let adminSock: uWS.us_listen_socket;
    try {
      adminSock = await listen(admin, o.adminHost, o.adminPort);
    } catch (err) {
      this.stopListening();
      throw err;
    }
    this.listenSockets.push(adminSock);
    this.adminPort = uWS.us_socket_local_port(adminSock as unknown as uWS.us_socket);
  }

  /** Stop accepting connections. Live sessions are ended by the caller (server.ts). */
  stopListening(): void {
    for (const s of this.listenSockets) uWS.us_listen_socket_close(s);
    this.listenSockets = [];
  }
}
