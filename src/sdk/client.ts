/**
 * latchkey endpoint SDK: the client side of docs/protocol.md, written against the WebCrypto API and
 * the WHATWG WebSocket so it runs in browsers and in Node (Node 20 has globalThis.crypto; its
 * WebSocket comes from undici, which the SDK loads only when globalThis.WebSocket is missing).
 *
 * Mirrors Kaa's client API where Kaa had one: connect, register a profile (profile sync), keepalive,
 * reconnect; ownership (attachUser, attachEndpoint, detachEndpoint, endpoint access token) and events
 * (listenEvents, onEvent, sendEvent, findEventListeners).
 *
 *   const client = new EndpointClient({ url, appToken, serverKey: { id, spki }, keys });
 *   const r = await client.connect({ profile });      // r.ok, or r.code = CONNACK code name
 *   client.onDisconnect((d) => ...);
 *   await client.close();
 *
 * Reconnect (when `reconnect` is on): after an unexpected close, and after refusals and close codes
 * in the "reconnect" range (4000-4499, 1001, 1006, REFUSE_SERVER_UNAVAILABLE), the client waits a
 * random delay in [0, min(maxDelayMs, minDelayMs * 2^attempt)] ("full jitter", so a fleet that
 * lost its server does not come back in lock-step) and connects again. Terminal refusals (revoked,
 * bad credentials, ...) and close codes 4500-4999 stop it.
 *
 * Resumption (`resume`, on by default; docs/protocol.md 4.6; resumption.ts, hello.ts): every
 * accepted session asks for a ticket, and the next connect sends RESUME instead of CONNECT (no RSA
 * on either side), falling back to a full CONNECT at once when the ticket is refused.
 */
import wire from './wire.js';
import { ENDPOINT_PATH, FRAME, SUBPROTOCOL } from './constants.js';
import { concat, spkiOf, type ClientSessionKeys, type EndpointKeys, type WebCrypto } from './crypto.js';
import type { AccessPoint, SyncRequest, SyncResponse } from '../protocol/wire-schemas.js';
import { ClientError, type ClientErrorCode } from './errors.js';
import { defaultWebSocket, type WebSocketCtor } from './websocket.js';
import { BootstrapError, orderAccessPoints, resolveAccessPoints, type BootstrapOptions, type ResolvedAccessPoints } from './bootstrap.js';
import { fallsBackToConnect, TicketHolder, TICKETREQ_FRAME } from './resumption.js';
import { prepareConnect, prepareResume, type Hello } from './hello.js';

export { ClientError, type ClientErrorCode } from './errors.js';
export type { WebSocketCtor } from './websocket.js';

/** CONNACK return codes by name (Kaa's numbering). */
export const CONNACK_CODES = {
  1: 'ACCEPTED',
  2: 'REFUSE_BAD_PROTOCOL',
  3: 'REFUSE_ID_REJECT',
  4: 'REFUSE_SERVER_UNAVAILABLE',
  5: 'REFUSE_BAD_CREDENTIALS',
  6: 'REFUSE_NO_AUTH',
  7: 'REFUSE_VERIFICATION_FAILED',
} as const;
export type RefusalCode = Exclude<(typeof CONNACK_CODES)[keyof typeof CONNACK_CODES], 'ACCEPTED'>;
export type DisconnectReasonName = 'NONE' | 'BAD_REQUEST' | 'INTERNAL_ERROR' | 'CREDENTIALS_REVOKED';
const DISCONNECT_REASONS: Record<number, DisconnectReasonName> = { 0: 'NONE', 1: 'BAD_REQUEST', 2: 'INTERNAL_ERROR', 3: 'CREDENTIALS_REVOKED' };


export type ConnectResult =
  /** `resumed`: opened with RESUME from a ticket (no RSA), not with a full CONNECT. */
  | { ok: true; sessionId: string; keepAliveSec: number; sync: SyncResponse | null; resumed: boolean }
  /** The server refused: `code` is the CONNACK return code, `errorCode` the catalogue code. */
  | { ok: false; kind: 'refused'; code: RefusalCode; errorCode: string | null; retryable: boolean }
  /** The SDK could not complete the handshake. */
  | { ok: false; kind: 'failed'; code: ClientErrorCode; detail: string; retryable: boolean; bootstrapCode?: string };

export interface DisconnectInfo {
  /** DISCONNECT reason if the server sent one. */
  reason: DisconnectReasonName | null;
  /** Catalogue code from DISCONNECT or the close reason. */
  errorCode: string | null;
  closeCode: number;
  /** True when the client will reconnect by itself. */
  willReconnect: boolean;
}

export interface ReconnectOptions {
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  maxAttempts?: number;
}

export interface ClientOptions {
  /**
   * Gateway base URL, e.g. ws://127.0.0.1:9443 (the SDK appends /ep/v1 unless the URL has a path).
   * With `bootstrap`, leave url and serverKey out: they come from the signed access point list.
   */
  url?: string;
  appToken: string;
  serverKey?: { id: string; spki: Uint8Array | string };
  /**
   * Bootstrap servers and their public key (Kaa's SDK properties): the client resolves the signed
   * access point list, checks it, connects by priority and weight, fails over to the next access
   * point on a connection failure or REFUSE_SERVER_UNAVAILABLE, and resolves again when the list
   * expires, every access point failed, or a node redirects it to an access point it does not know.
   */
  bootstrap?: BootstrapOptions;
  /** Upper bound of the random delay (still connected) before following a REDIRECT, ms (default 500). */
  redirectJitterMs?: number;
  keys: EndpointKeys;
  /** Keepalive to ask for, seconds (0: server default). PINGREQ is sent at this interval. */
  keepAliveSec?: number;
  /**
   * Send the public key in CONNECT: 'always', or 'auto' (default: send it until one handshake
   * was accepted, then omit it, and resend once after REFUSE_NO_AUTH).
   */
  sendPublicKey?: 'always' | 'auto';
  /** Reconnect automatically; off by default. */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Session resumption (docs/protocol.md 4.6), on by default: each accepted session asks for a
   * ticket (TICKETREQ), kept in memory only, newest only, with that session's resumption secret;
   * the next connect (reconnect, or connect() after close()) sends RESUME instead of CONNECT while
   * the ticket is within its lifetime. A ticket the server refuses (LK_TICKET_*, LK_RESUME_*, a stale
   * timestamp or replayed nonce) is forgotten and a full CONNECT follows at once; other refusals
   * are handled as CONNECT's (terminal ones stay terminal). false: never TICKETREQ nor RESUME.
   */
  resume?: boolean;
  /** Timeout for CONNACK and for each SyncResponse, ms (default 10 000). */
  timeoutMs?: number;
  crypto?: WebCrypto;
  WebSocket?: WebSocketCtor;
  now?: () => number;
}

interface Pending {
  resolve: (r: SyncResponse) => void;
  reject: (e: ClientError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A session that lasted this long resets the reconnect backoff. */
const STABLE_SESSION_MS = 30_000;

const TERMINAL_REFUSALS: ReadonlySet<RefusalCode> = new Set(['REFUSE_BAD_PROTOCOL', 'REFUSE_ID_REJECT', 'REFUSE_BAD_CREDENTIALS', 'REFUSE_VERIFICATION_FAILED']);

function randomBytes(c: WebCrypto, n: number): Uint8Array {
  return c.getRandomValues(new Uint8Array(n));
}

export function emptyRequest(requestId: number): SyncRequest {
  return { requestId, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null, eventSyncRequest: null };
}

/** An event delivered to this endpoint (docs/protocol.md, events). */
export interface ReceivedEvent {
  eventClassFQN: string;
  data: Uint8Array | null;
  /** Key hash of the sending endpoint. */
  source: string;
  /** This endpoint's key hash for a targeted event, null for one sent to every listener. */
  target: string | null;
  /** The server's delivery counter for this session (0, 1, 2, ...). */
  seqNum: number;
  /** Events the server dropped for this endpoint (slow-receiver policy) just before this one. */
  missedBefore: number;
}

export class EndpointClient {
  private readonly c: WebCrypto;
  private ws: WebSocket | null = null;
  private session: ClientSessionKeys | null = null;
  private txCounter = 0;
  private rxCounter = 0;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  private rxChain: Promise<void> = Promise.resolve();
  private txChain: Promise<void> = Promise.resolve();
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingWaiters: Array<(rtt: number) => void> = [];
  private keyAccepted = false;
  private closedByUser = false;
  private attempt = 0;
  private lastProfile: Uint8Array | null = null;
  private readonly disconnectListeners = new Set<(d: DisconnectInfo) => void>();
  private readonly pushListeners = new Set<(r: SyncResponse) => void>();
  private readonly reconnectListeners = new Set<(r: ConnectResult) => void>();
  /** Event classes declared with listenEvents(); declared again in every new session. */
  private listened: string[] | null = null;
  private readonly eventListeners = new Set<(e: ReceivedEvent) => void>();
  /** Next seqNum the server will stamp on an event for this session. */
  private eventRxNext = 0;
  /** Our events' seqNum: strictly increasing for the life of the client. */
  private eventTxSeq = 0;
  sessionId: string | null = null;
  keepAliveSec = 0;
  /** The current (or last) session was resumed from a ticket. */
  resumed = false;
  /** The newest resumption ticket; null with `resume: false`. */
  private readonly tickets: TicketHolder | null;

  /** Where connectOnce() goes: the configured gateway, or the access point being tried. */
  private target: { url: string; serverKey: { id: string; spki: Uint8Array | string } } | null = null;
  /** The checked access point list (bootstrap mode). */
  private accessList: ResolvedAccessPoints | null = null;
  /** A REDIRECT named this access point: tried first at the next connect. */
  private preferredAccessPoint: number | null = null;
  private redirecting = false;
  private readonly redirectListeners = new Set<(r: { accessPointId: number; result: ConnectResult }) => void>();
  /** The access point of the current session (bootstrap mode). */
  accessPoint: AccessPoint | null = null;

  constructor(private readonly opts: ClientOptions) {
    this.c = opts.crypto ?? globalThis.crypto;
    this.tickets = opts.resume === false ? null : new TicketHolder(opts.now ?? Date.now);
    // Keys given as strings are checked now: a file that is not PEM fails here, with what was expected.
    const checkKey = (what: string, key: Uint8Array | string): void => {
      try {
        spkiOf(key);
      } catch (err) {
        throw err instanceof ClientError ? new ClientError(err.code, `${what}: ${err.message.slice(err.code.length + 2)}`) : err;
      }
    };
    if (opts.bootstrap) {
      if (opts.bootstrap.urls.length === 0) throw new ClientError('LK_SDK_BOOTSTRAP_FAILED', 'bootstrap.urls is empty');
      checkKey('bootstrap.publicKey', opts.bootstrap.publicKey);
    } else if (opts.url && opts.serverKey) {
      checkKey('serverKey.spki', opts.serverKey.spki);
      this.target = { url: opts.url, serverKey: opts.serverKey };
    } else {
      throw new ClientError('LK_SDK_CONNECTION_FAILED', 'give url and serverKey, or bootstrap');
    }
  }

  /** Next positive requestId (Avro int; wraps before 2^31). */
  private requestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /** A REDIRECT moved (or tried to move) this client to another access point. */
  onRedirect(fn: (r: { accessPointId: number; result: ConnectResult }) => void): () => void {
    this.redirectListeners.add(fn);
    return () => this.redirectListeners.delete(fn);
  }

  /** The checked access point list, resolving it when there is none or it expired. */
  async accessPoints(force = false): Promise<ResolvedAccessPoints> {
    const now = (this.opts.now ?? Date.now)();
    if (force || !this.accessList || this.accessList.expiresAt <= now) {
      this.accessList = await resolveAccessPoints(this.opts.bootstrap!, this.opts.appToken, this.opts.now ?? Date.now, this.c);
    }
    return this.accessList;
  }

  /** Bootstrap mode: try access points in order until one accepts; resolve again once if all fail. */
  private async connectViaBootstrap(profile: Uint8Array | null): Promise<ConnectResult> {
    let last: ConnectResult | null = null;
    for (let round = 0; round < 2; round++) {
      let list: ResolvedAccessPoints;
      try {
        list = await this.accessPoints(round > 0);
      } catch (err) {
        const e = err instanceof BootstrapError ? err : new BootstrapError('LK_SDK_BOOTSTRAP_FAILED', String(err));
        return last ?? { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: e.message, retryable: !e.terminal, bootstrapCode: e.code };
      }
      const ordered = orderAccessPoints(list.accessPoints);
      const preferred = ordered.findIndex((p) => p.id === this.preferredAccessPoint);
      if (preferred > 0) ordered.unshift(...ordered.splice(preferred, 1));
      this.preferredAccessPoint = null;
      for (const ap of ordered) {
        this.target = { url: ap.url, serverKey: { id: ap.serverKeyId, spki: ap.serverPublicKey } };
        const res = await this.connectOnce(profile);
        if (res.ok) {
          this.accessPoint = ap;
          return res;
        }
        last = res;
        if (this.closedByUser) return res;
        // Try the next access point unless every node would give the same answer (the endpoint's
        // credentials, application or key are refused). A node that cannot be reached, is
        // overloaded, does not know the key the list names, fails its key confirmation or breaks
        // the protocol is this node's problem.
        const failover = res.kind === 'failed'
          ? res.code !== 'LK_SDK_CLOSED'
          : res.code === 'REFUSE_SERVER_UNAVAILABLE' || res.errorCode === 'LK_HS_UNKNOWN_SERVER_KEY' || res.errorCode === 'LK_HS_REPLAYED_NONCE';
        if (!failover) return res;
      }
    }
    return last!;
  }

  /** A node told this endpoint to move: leave this session and connect to that access point. */
  private followRedirect(accessPointId: number): void {
    const ws = this.ws;
    if (!this.opts.bootstrap || this.redirecting || this.closedByUser || !ws || ws.readyState !== 1) return;
    this.redirecting = true;
    this.preferredAccessPoint = accessPointId;
    // An access point missing from the list (or an expired list) means resolving again.
    if (!this.accessList?.accessPoints.some((p) => p.id === accessPointId)) this.accessList = null;
    // Stay on this session (events keep arriving) for a short random delay, so that a drained
    // node's endpoints do not all land on the next node in the same millisecond; then leave and
    // connect at once: the gap without a session is one handshake.
    const jitterMs = Math.random() * (this.opts.redirectJitterMs ?? 500);
    setTimeout(() => {
      if (this.ws !== ws) return; // closed meanwhile (by the server, or close()): onclose handled it
      try {
        if (ws.readyState === 1) ws.send(concat(new Uint8Array([0x0e]), wire.disconnect.toBuffer({ reason: 0, errorCode: null })));
        ws.close(1000);
      } catch {
        // already closing: onclose follows
      }
    }, jitterMs);
  }

  get connected(): boolean {
    return this.session !== null && this.ws !== null && this.ws.readyState === 1;
  }

  get keyHash(): string {
    return this.opts.keys.keyHash;
  }

  /** Server-initiated SyncResponses (attach/detach notifications, events in later versions). */
  onPush(fn: (r: SyncResponse) => void): () => void {
    this.pushListeners.add(fn);
    return () => this.pushListeners.delete(fn);
  }

  onDisconnect(fn: (d: DisconnectInfo) => void): () => void {
    this.disconnectListeners.add(fn);
    return () => this.disconnectListeners.delete(fn);
  }

  /** Result of every automatic reconnect attempt. */
  onReconnect(fn: (r: ConnectResult) => void): () => void {
    this.reconnectListeners.add(fn);
    return () => this.reconnectListeners.delete(fn);
  }

  private endpointUrl(): string {
    const u = new URL(this.target!.url);
    if (u.pathname === '/' || u.pathname === '') u.pathname = ENDPOINT_PATH;
    return u.toString();
  }

  /**
   * Open a session. With `profile`, the first SyncRequest (profile registration) rides in CONNECT
   * and its SyncResponse comes back in CONNACK (`sync`).
   */
  async connect(options: { profile?: Uint8Array } = {}): Promise<ConnectResult> {
    this.closedByUser = false;
    if (options.profile) this.lastProfile = options.profile;
    const once = (): Promise<ConnectResult> => (this.opts.bootstrap ? this.connectViaBootstrap(options.profile ?? null) : this.connectOnce(options.profile ?? null));
    const res = await once();
    if (!res.ok && res.kind === 'refused' && res.code === 'REFUSE_NO_AUTH' && this.opts.sendPublicKey !== 'always' && this.keyAccepted) {
      this.keyAccepted = false;
      return once();
    }
    return res;
  }

  /**
   * One session on this.target: RESUME while a usable ticket is held, and a full CONNECT on a new
   * socket at once when the server refuses the ticket (4.6); otherwise CONNECT.
   */
  private async connectOnce(profile: Uint8Array | null): Promise<ConnectResult> {
    if (this.ws) return { ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'already connected', retryable: false };
    const held = this.tickets?.usable();
    if (held) {
      const o = this.opts;
      const hello = await prepareResume({ appToken: o.appToken, keyHashRaw: o.keys.keyHashRaw, ticket: held.ticket, resumptionSecret: held.secret, timestamp: (o.now ?? Date.now)(), nonce: randomBytes(this.c, 16), keepAliveSec: o.keepAliveSec ?? 0 }, this.c);
      const res = await this.handshake(profile, hello);
      const fallBack = !res.ok && res.kind === 'refused' && fallsBackToConnect(res.errorCode);
      // A server that cannot confirm the resumed keys never gets this ticket again.
      if (fallBack || (!res.ok && res.code === 'LK_SDK_CONFIRMATION_FAILED')) this.tickets!.forget();
      if (!fallBack || this.closedByUser) return res;
    }
    const hello = await this.connectHello();
    return 'keys' in hello ? this.handshake(profile, hello) : hello;
  }

  private async connectHello(): Promise<Hello | ConnectResult> {
    const o = this.opts;
    try {
      return await prepareConnect({ appToken: o.appToken, serverKey: this.target!.serverKey, keys: o.keys, sendPublicKey: o.sendPublicKey === 'always' || !this.keyAccepted, timestamp: (o.now ?? Date.now)(), keepAliveSec: o.keepAliveSec ?? 0 }, this.c);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      return { ok: false, kind: 'failed', code: 'LK_SDK_BAD_KEY', detail: err.message, retryable: false };
    }
  }

  /** Send `hello` (with the first SyncRequest sealed into it) on a new socket and wait for CONNACK. */
  private async handshake(profile: Uint8Array | null, hello: Hello): Promise<ConnectResult> {
    const o = this.opts;
    const keys = hello.keys;
    this.txCounter = 0;
    this.rxCounter = 0;
    let sync: Uint8Array | null = null;
    let syncRequestId = -1;
    if (profile || this.listened) {
      syncRequestId = this.requestId();
      const req = emptyRequest(syncRequestId);
      if (profile) req.profileSyncRequest = { profileBody: profile, endpointAccessToken: null };
      // The listened event classes go with the CONNECT, so events flow from the first moment.
      if (this.listened) req.eventSyncRequest = { eventListenersRequests: null, events: null, listenedEventClassFQNs: [...this.listened] };
      sync = await keys.tx.seal(this.txCounter++, wire.syncRequest.toBuffer(req));
    }
    const frame = hello.frame(sync);

    let Ctor: WebSocketCtor;
    try {
      Ctor = o.WebSocket ?? (await defaultWebSocket());
    } catch (err) {
      return { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: false };
    }
    if (this.closedByUser) return { ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while connecting', retryable: false };
    let ws: WebSocket;
    try {
      ws = new Ctor(this.endpointUrl(), SUBPROTOCOL);
    } catch (err) {
      return { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true };
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;

    return new Promise<ConnectResult>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => finish({ ok: false, kind: 'failed', code: 'LK_SDK_TIMEOUT', detail: 'no CONNACK', retryable: true }, true), o.timeoutMs ?? 10_000);
      const finish = (r: ConnectResult, closeSocket: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!r.ok) {
          ws.onmessage = null;
          ws.onclose = null;
          if (closeSocket) {
            try {
              ws.close(1000);
            } catch {
              // already closed
            }
          }
          this.ws = null;
        }
        resolve(r);
      };
      ws.onopen = () => ws.send(frame);
      ws.onerror = () => undefined;
      ws.onclose = (ev) => {
        finish({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: `closed ${ev.code} ${ev.reason}`, retryable: true }, false);
      };
      ws.onmessage = (ev) => {
        const data = new Uint8Array(ev.data as ArrayBuffer);
        if (data[0] === 0x02) {
          // Frames that follow CONNACK while its confirmation is checked wait for attach().
          const early: Uint8Array[] = [];
          ws.onmessage = (e2) => early.push(new Uint8Array(e2.data as ArrayBuffer));
          void this.onConnack(data, hello, syncRequestId).then((r) => {
            if (settled) {
              // Timed out or closed while the confirmation was checked: drop what onConnack set up.
              if (this.session === keys) this.session = null;
              return;
            }
            if (r.ok && this.closedByUser) {
              this.session = null;
              return finish({ ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while connecting', retryable: false }, true);
            }
            finish(r, !r.ok);
            if (r.ok) this.attach(ws, early);
          });
        } else if (data[0] === 0x0e) {
          const d = decodeDisconnect(data);
          finish({ ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: `DISCONNECT ${d?.errorCode ?? ''}`, retryable: false }, true);
        } else {
          finish({ ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: `frame 0x${data[0]?.toString(16)} before CONNACK`, retryable: false }, true);
        }
      };
    });
  }

  private async onConnack(data: Uint8Array, hello: Hello, syncRequestId: number): Promise<ConnectResult> {
    const keys = hello.keys;
    let ack: { returnCode: number; errorCode: string | null; confirmation: Uint8Array | null; sessionId: string | null; keepAliveSec: number; sync: Uint8Array | null };
    try {
      ack = wire.connack.fromBuffer(data.subarray(1)) as typeof ack;
    } catch {
      return { ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: 'bad CONNACK', retryable: false };
    }
    const name = CONNACK_CODES[ack.returnCode as keyof typeof CONNACK_CODES];
    if (!name) return { ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: `return code ${ack.returnCode}`, retryable: false };
    if (name !== 'ACCEPTED') {
      return { ok: false, kind: 'refused', code: name, errorCode: ack.errorCode, retryable: !TERMINAL_REFUSALS.has(name) && ack.errorCode !== 'LK_HS_STALE_TIMESTAMP' };
    }
    if (!ack.confirmation || !(await keys.checkConfirmation(ack.confirmation))) {
      return { ok: false, kind: 'failed', code: 'LK_SDK_CONFIRMATION_FAILED', detail: 'key confirmation mismatch', retryable: false };
    }
    this.session = keys;
    if (hello.sentKey) this.keyAccepted = true;
    this.resumed = hello.resumed;
    this.sessionId = ack.sessionId;
    this.keepAliveSec = ack.keepAliveSec;
    this.txCounter = syncRequestId >= 0 ? 1 : 0;
    this.eventRxNext = 0;
    // The server checks event seqNums per session: start again (an Avro int never runs out).
    this.eventTxSeq = 0;
    let sync: SyncResponse | null = null;
    if (ack.sync) {
      const plain = await keys.rx.open(this.rxCounter++, ack.sync);
      if (!plain) return { ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: 'CONNACK sync does not authenticate', retryable: false };
      sync = wire.syncResponse.fromBuffer(plain) as SyncResponse;
    }
    return { ok: true, sessionId: ack.sessionId ?? '', keepAliveSec: ack.keepAliveSec, sync, resumed: hello.resumed };
  }

  private attach(ws: WebSocket, early: Uint8Array[]): void {
    const connectedAt = Date.now();
    const receive = (data: Uint8Array): void => {
      // Decrypt in arrival order: counters must match.
      // Frames of a socket this client has left (a redirect, a reconnect) are dropped, never
      // decrypted against the next session.
      this.rxChain = this.rxChain.then(() => (this.ws === ws ? this.onFrame(data) : undefined)).catch(() => undefined);
    };
    for (const data of early) receive(data);
    ws.onmessage = (ev) => receive(new Uint8Array(ev.data as ArrayBuffer));
    // A ticket for the next session (4.6): asked once, right after CONNACK.
    if (this.tickets && this.session && ws.readyState === 1) {
      this.tickets.sessionAccepted(this.session.resumptionSecret);
      ws.send(TICKETREQ_FRAME);
    }
    ws.onclose = (ev) => {
      // Backoff starts over only after a session that lasted: a server that accepts and then drops
      // the session at once must not be hammered every few hundred milliseconds.
      if (Date.now() - connectedAt >= STABLE_SESSION_MS) this.attempt = 0;
      const lastDisconnect = this.lastDisconnect;
      this.teardown();
      const errorCode = lastDisconnect?.errorCode ?? (ev.reason || null);
      const terminal = (ev.code >= 4500 && ev.code <= 4999) || lastDisconnect?.reason === 3;
      const redirect = this.redirecting && !this.closedByUser;
      const willReconnect = redirect || (!this.closedByUser && !!this.opts.reconnect && !terminal);
      const info: DisconnectInfo = { reason: lastDisconnect ? (DISCONNECT_REASONS[lastDisconnect.reason] ?? null) : null, errorCode: redirect ? 'LK_SDK_REDIRECTED' : errorCode, closeCode: ev.code, willReconnect };
      for (const fn of this.disconnectListeners) fn(info);
      if (redirect) {
        // To the named access point (then the others), at once: followRedirect already waited.
        const accessPointId = this.preferredAccessPoint ?? -1;
        void Promise.resolve()
          .then((): Promise<ConnectResult> =>
            this.closedByUser
              ? Promise.resolve({ ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while redirecting', retryable: false })
              : this.connect(this.lastProfile ? { profile: this.lastProfile } : {}),
          )
          .catch((err: unknown): ConnectResult => ({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true }))
          .then((result) => {
            this.redirecting = false;
            for (const fn of this.redirectListeners) fn({ accessPointId, result });
            if (!result.ok && result.retryable && this.opts.reconnect && !this.closedByUser) this.scheduleReconnect();
          });
      } else if (willReconnect) this.scheduleReconnect();
    };
    const ka = this.keepAliveSec > 0 ? this.keepAliveSec : 60;
    this.keepAliveTimer = setInterval(() => this.sendPing(), ka * 1000);
    (this.keepAliveTimer as { unref?: () => void }).unref?.();
  }

  private lastDisconnect: { reason: number; errorCode: string | null } | null = null;

  private async onFrame(data: Uint8Array): Promise<void> {
    switch (data[0]) {
      case 0x0d: {
        const waiters = this.pingWaiters;
        this.pingWaiters = [];
        for (const w of waiters) w(0);
        return;
      }
      case 0x0e:
        this.lastDisconnect = decodeDisconnect(data);
        return;
      case 0x0f: {
        let frame: { counter: number; ciphertext: Uint8Array };
        try {
          frame = wire.sync.fromBuffer(data.subarray(1)) as typeof frame;
        } catch {
          return this.protocolError('bad SYNC frame');
        }
        if (frame.counter !== this.rxCounter || !this.session) return this.protocolError('SYNC counter out of order');
        const plain = await this.session.rx.open(this.rxCounter, frame.ciphertext);
        if (!plain) return this.protocolError('SYNC does not authenticate');
        this.rxCounter++;
        const res = wire.syncResponse.fromBuffer(plain) as SyncResponse;
        const p = this.pending.get(res.requestId);
        if (p) {
          this.pending.delete(res.requestId);
          clearTimeout(p.timer);
          p.resolve(res);
        } else {
          if (res.eventSyncResponse?.events) this.dispatchEvents(res);
          if (res.status === 'REDIRECT' && res.redirectSyncResponse) this.followRedirect(res.redirectSyncResponse.accessPointId);
          for (const fn of this.pushListeners) fn(res);
        }
        return;
      }
      case FRAME.TICKET:
        if (!this.tickets?.onTicket(data)) return this.protocolError('bad or unexpected TICKET frame');
        return;
      default:
        return this.protocolError(`unexpected frame 0x${data[0]?.toString(16)}`);
    }
  }

  private protocolError(detail: string): void {
    this.lastDisconnect = { reason: 1, errorCode: 'LK_SDK_PROTOCOL_ERROR' };
    // Close reasons are limited to 123 bytes.
    this.ws?.close(4000, `LK_SDK_PROTOCOL_ERROR ${detail}`.slice(0, 120));
  }

  private teardown(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
    this.ws = null;
    this.session = null;
    this.tickets?.sessionEnded();
    this.lastDisconnect = null;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClientError('LK_SDK_CLOSED', 'session ended'));
    }
    this.pending.clear();
  }

  private scheduleReconnect(): void {
    const r: ReconnectOptions = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
    const min = r.minDelayMs ?? 500;
    const max = r.maxDelayMs ?? 30_000;
    if (r.maxAttempts !== undefined && this.attempt >= r.maxAttempts) return;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt, 30));
    const delay = Math.random() * ceiling;
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closedByUser) return;
      this.connect(this.lastProfile ? { profile: this.lastProfile } : {})
        .catch((err: unknown): ConnectResult => ({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true }))
        .then((res) => {
          for (const fn of this.reconnectListeners) fn(res);
          if (!res.ok && res.retryable && !this.closedByUser) this.scheduleReconnect();
        });
    }, delay);
  }

  /**
   * Send a SyncRequest (requestId is assigned) and wait for its SyncResponse. Concurrent calls are
   * sealed and sent strictly in counter order (WebCrypto may finish encryptions out of order).
   */
  async sync(fill: (req: SyncRequest) => void): Promise<SyncResponse> {
    const session = this.session;
    const ws = this.ws;
    if (!this.connected || !session || !ws) throw new ClientError('LK_SDK_CLOSED', 'not connected');
    const req = emptyRequest(this.requestId());
    fill(req);
    const plaintext = wire.syncRequest.toBuffer(req);
    const response = new Promise<SyncResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req.requestId);
        reject(new ClientError('LK_SDK_TIMEOUT', `no SyncResponse for request ${req.requestId}`));
      }, this.opts.timeoutMs ?? 10_000);
      this.pending.set(req.requestId, { resolve, reject, timer });
    });
    // Handled from the start: if the session ends before the send below settles, the rejection
    // must not surface as an unhandled one in the application (it is rethrown to the caller).
    response.catch(() => undefined);
    const sent = this.sendSealed(session, ws, plaintext);
    try {
      await sent;
    } catch (err) {
      const p = this.pending.get(req.requestId);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(req.requestId);
      }
      void response.catch(() => undefined);
      throw err;
    }
    return response;
  }

  /** Seal and send one SyncRequest, strictly in counter order (WebCrypto may finish out of order). */
  private sendSealed(session: ClientSessionKeys, ws: WebSocket, plaintext: Uint8Array): Promise<void> {
    const sent = this.txChain.then(async () => {
      if (this.session !== session || this.ws !== ws) throw new ClientError('LK_SDK_CLOSED', 'session ended');
      const counter = this.txCounter++;
      const ciphertext = await session.tx.seal(counter, plaintext);
      if (this.session !== session || ws.readyState !== 1) throw new ClientError('LK_SDK_CLOSED', 'session ended');
      ws.send(concat(new Uint8Array([0x0f]), wire.sync.toBuffer({ counter, ciphertext })));
    });
    this.txChain = sent.catch(() => undefined);
    return sent;
  }

  // ---- events (Kaa client API: event listeners, send, find listeners) ----

  /**
   * Declare the event classes this endpoint listens to (replacing any earlier declaration; [] for
   * none). Kept and declared again with every new session's CONNECT. Only events of these classes
   * reach onEvent, whether sent to every listener or to this endpoint alone.
   */
  async listenEvents(eventClassFQNs: string[]): Promise<void> {
    const classes = [...new Set(eventClassFQNs)];
    // Checked here first: a declaration the server refuses must not be kept and resent with every CONNECT.
    if (classes.length > 256 || !classes.every((c) => typeof c === 'string' && c.length > 0 && c.length <= 255)) {
      throw new ClientError('LK_EVENT_CLASSES_INVALID', 'at most 256 event class names of 1..255 characters');
    }
    if (!this.connected) {
      this.listened = classes;
      return;
    }
    const res = await this.sync((req) => {
      req.eventSyncRequest = { eventListenersRequests: null, events: null, listenedEventClassFQNs: [...classes] };
    });
    if (res.status === 'FAILURE') throw new ClientError(res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', 'event classes not accepted');
    this.listened = classes;
  }

  /** Events from other endpoints of this endpoint's owner, in delivery order, duplicates dropped. */
  onEvent(fn: (e: ReceivedEvent) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /**
   * Send an event to the endpoints of this endpoint's owner: to `target` (a key hash) or, without
   * one, to every endpoint listening to the class. Resolves when the frame is written; there is no
   * delivery receipt (events are not queued for offline endpoints, and an endpoint without an owner
   * reaches nobody).
   */
  async sendEvent(eventClassFQN: string, data: Uint8Array | null = null, target: string | null = null): Promise<void> {
    const session = this.session;
    const ws = this.ws;
    if (!this.connected || !session || !ws) throw new ClientError('LK_SDK_CLOSED', 'not connected');
    // Event-only requests get no answer: their requestId is not used (0).
    const req = emptyRequest(0);
    req.eventSyncRequest = {
      eventListenersRequests: null,
      events: [{ seqNum: this.eventTxSeq++, eventClassFQN, eventData: data, source: null, target }],
      listenedEventClassFQNs: null,
    };
    await this.sendSealed(session, ws, wire.syncRequest.toBuffer(req));
  }

  /** Key hashes of the owner's other endpoints that listen to all of `eventClassFQNs`. */
  async findEventListeners(eventClassFQNs: string[]): Promise<string[]> {
    const res = await this.sync((req) => {
      req.eventSyncRequest = { eventListenersRequests: [{ requestId: 1, eventClassFQNs }], events: null, listenedEventClassFQNs: null };
    });
    const r = res.eventSyncResponse?.eventListenersResponses?.[0];
    if (!r || r.result !== 'SUCCESS') throw new ClientError(res.errorCode ?? 'LK_NO_OWNER', 'listeners query failed: is this endpoint attached to an owner?');
    return r.listeners ?? [];
  }

  private dispatchEvents(res: SyncResponse): void {
    for (const ev of res.eventSyncResponse?.events ?? []) {
      // The server's counter wraps from 2^31 - 1 to 0; a seqNum far below the expected one is a wrap.
      const wrapped = ev.seqNum < this.eventRxNext && this.eventRxNext - ev.seqNum > 2 ** 30;
      if (ev.seqNum < this.eventRxNext && !wrapped) continue; // a duplicate
      const missedBefore = wrapped ? ev.seqNum + 2 ** 31 - this.eventRxNext : ev.seqNum - this.eventRxNext;
      this.eventRxNext = ev.seqNum + 1;
      const e: ReceivedEvent = { eventClassFQN: ev.eventClassFQN, data: ev.eventData, source: ev.source ?? '', target: ev.target, seqNum: ev.seqNum, missedBefore };
      for (const fn of this.eventListeners) fn(e);
    }
  }

  // ---- ownership (Kaa client API: attachUser, attachEndpoint, detachEndpoint, access token) ----

  /**
   * Attach this endpoint to owner `externalId`, whose `accessToken` the application's verifier checks
   * (the default verifier, or the one named by `verifierToken`). Resolves with the result; a failure
   * carries a UserAttachErrorCode.
   */
  async attachUser(externalId: string, accessToken: string, verifierToken?: string): Promise<{ ok: true } | { ok: false; code: string; reason: string | null }> {
    const res = await this.sync((req) => {
      req.userSyncRequest = { userAttachRequest: { userExternalId: externalId, userAccessToken: accessToken, userVerifierId: verifierToken ?? null }, endpointAttachRequests: null, endpointDetachRequests: null };
    });
    const a = res.userSyncResponse?.userAttachResponse;
    if (a?.result === 'SUCCESS') return { ok: true };
    // No attach answer at all (the request failed as a whole): the sync's own code, never a made-up verifier result.
    return { ok: false, code: a?.errorCode ?? res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', reason: a?.errorReason ?? (a ? null : `SyncResponse ${res.status} without a userAttachResponse`) };
  }

  /**
   * Publish (or rotate) this endpoint's access token, so an attached endpoint can attach it to its
   * owner. Sent with the profile sync, so the endpoint must have registered a profile first.
   */
  async setEndpointAccessToken(token: string): Promise<void> {
    if (!this.lastProfile) throw new ClientError('LK_PROFILE_REQUIRED', 'register a profile before publishing an access token');
    const profile = this.lastProfile;
    const res = await this.sync((req) => {
      req.profileSyncRequest = { profileBody: profile, endpointAccessToken: token };
    });
    if (res.status !== 'SUCCESS') throw new ClientError(res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', `access token not accepted (${res.status})`);
  }

  /** Attach the endpoint that published `endpointAccessToken` to this endpoint's owner; its key hash, or null if refused. */
  async attachEndpoint(endpointAccessToken: string): Promise<string | null> {
    const res = await this.sync((req) => {
      req.userSyncRequest = { userAttachRequest: null, endpointAttachRequests: [{ requestId: 1, endpointAccessToken }], endpointDetachRequests: null };
    });
    const r = res.userSyncResponse?.endpointAttachResponses?.[0];
    return r?.result === 'SUCCESS' ? r.endpointKeyHash : null;
  }

  /** Detach an endpoint (this one, or another of the same owner) by key hash. */
  async detachEndpoint(keyHash: string): Promise<boolean> {
    const res = await this.sync((req) => {
      req.userSyncRequest = { userAttachRequest: null, endpointAttachRequests: null, endpointDetachRequests: [{ requestId: 1, endpointKeyHash: keyHash }] };
    });
    return res.userSyncResponse?.endpointDetachResponses?.[0]?.result === 'SUCCESS';
  }

  /** Another endpoint attached this one to its owner. */
  onAttached(fn: (n: { ownerExternalId: string; byEndpointKeyHash: string }) => void): () => void {
    return this.onPush((r) => {
      const n = r.userSyncResponse?.userAttachNotification;
      if (n) fn({ ownerExternalId: n.userExternalId, byEndpointKeyHash: n.endpointKeyHash });
    });
  }

  /** Another endpoint of the owner detached this one. */
  onDetached(fn: (n: { byEndpointKeyHash: string }) => void): () => void {
    return this.onPush((r) => {
      const n = r.userSyncResponse?.userDetachNotification;
      if (n) fn({ byEndpointKeyHash: n.endpointKeyHash });
    });
  }

  /** Register or update the endpoint profile (profile sync). */
  register(profile: Uint8Array): Promise<SyncResponse> {
    this.lastProfile = profile;
    return this.sync((req) => {
      req.profileSyncRequest = { profileBody: profile, endpointAccessToken: null };
    });
  }

  private sendPing(): void {
    if (this.connected) this.ws!.send(new Uint8Array([0x0c]));
  }

  /** PINGREQ -> PINGRESP round trip in ms. */
  ping(): Promise<number> {
    if (!this.connected) return Promise.reject(new ClientError('LK_SDK_CLOSED', 'not connected'));
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve(Date.now() - t0);
      };
      const timer = setTimeout(() => {
        this.pingWaiters = this.pingWaiters.filter((w) => w !== waiter);
        reject(new ClientError('LK_SDK_TIMEOUT', 'no PINGRESP'));
      }, this.opts.timeoutMs ?? 10_000);
      this.pingWaiters.push(waiter);
      this.sendPing();
    });
  }

  /** Send DISCONNECT and close; stops reconnecting. */
  async close(): Promise<void> {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    if (!ws) return;
    await new Promise<void>((resolve) => {
      // Bounded: a peer that never completes the close handshake cannot hang close().
      const timer = setTimeout(resolve, 2000);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const prev = ws.onclose;
      ws.onclose = (ev) => {
        if (typeof prev === 'function') prev.call(ws, ev);
        done();
      };
      try {
        if (ws.readyState === 1) ws.send(concat(new Uint8Array([0x0e]), wire.disconnect.toBuffer({ reason: 0, errorCode: null })));
        ws.close(1000);
      } catch {
        done();
      }
    });
  }
}

function decodeDisconnect(data: Uint8Array): { reason: number; errorCode: string | null } | null {
  try {
    return wire.disconnect.fromBuffer(data.subarray(1)) as { reason: number; errorCode: string | null };
  } catch {
    return null;
  }
}

