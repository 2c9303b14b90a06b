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
 * Reconnect (when `reconnect` is on; reconnect.ts): after an unexpected close, and after refusals
 * and close codes in the "reconnect" range (4000-4499, 1001, 1006, REFUSE_SERVER_UNAVAILABLE), the
 * client waits a random delay in [0, min(maxDelayMs, minDelayMs * 2^attempt)] ("full jitter", so a
 * fleet that lost its server does not come back in lock-step) and connects again. Terminal refusals
 * (revoked, bad credentials, ...) and close codes 4500-4999 stop it.
 *
 * Resumption (`resume`, on by default; docs/protocol.md 4.6; resumption.ts, hello.ts): every
 * accepted session asks for a ticket, and the next connect sends RESUME instead of CONNECT (no RSA
 * on either side), falling back to a full CONNECT at once when the ticket is refused.
 *
 * This class is the facade: it holds the session's lifecycle (which socket and session are current,
 * what a close means) and composes the parts that own their state: routing.ts (gateway, bootstrap
 * access points, redirects), handshake.ts (opening one session), session-link.ts (one open
 * session's frames and counters), requests.ts (SyncRequest/SyncResponse correlation), events.ts,
 * ownership.ts, reconnect.ts, ping.ts. types.ts holds the option and result types.
 */
import type { AccessPoint, SyncRequest, SyncResponse } from '../protocol/wire-schemas.js';
import type { ResolvedAccessPoints } from './bootstrap.js';
import type { WebCrypto } from './crypto.js';
import { ClientError } from './errors.js';
import { Events, type ReceivedEvent } from './events.js';
import { sayGoodbye } from './frames.js';
import { SessionOpener, type ConfirmedSession } from './handshake.js';
import { Listeners } from './listeners.js';
import * as ownership from './ownership.js';
import { Pings } from './ping.js';
import { Reconnector } from './reconnect.js';
import { emptyRequest, Requests, type SyncFn } from './requests.js';
import { TicketHolder, TICKETREQ_FRAME } from './resumption.js';
import { Router } from './routing.js';
import { SessionLink } from './session-link.js';
import { DISCONNECT_REASONS, type ClientOptions, type ConnectResult, type DisconnectInfo, type Target } from './types.js';

export { ClientError, type ClientErrorCode } from './errors.js';
export type { WebSocketCtor } from './websocket.js';
export { CONNACK_CODES, type ClientOptions, type ConnectResult, type DisconnectInfo, type DisconnectReasonName, type ReconnectOptions, type RefusalCode } from './types.js';
export { emptyRequest } from './requests.js';
export type { ReceivedEvent } from './events.js';

export class EndpointClient {
  sessionId: string | null = null;
  keepAliveSec = 0;
  /** The current (or last) session was resumed from a ticket. */
  resumed = false;
  /** The access point of the current session (bootstrap mode). */
  accessPoint: AccessPoint | null = null;

  private readonly c: WebCrypto;
  /** The newest resumption ticket; null with `resume: false`. */
  private readonly tickets: TicketHolder | null;
  private readonly router: Router;
  private readonly opener: SessionOpener;
  private readonly requests: Requests;
  private readonly events: Events;
  private readonly reconnector: Reconnector;
  private readonly pings = new Pings();
  private readonly disconnectListeners = new Listeners<DisconnectInfo>();
  private readonly pushListeners = new Listeners<SyncResponse>();
  /** The socket of the session being opened or open; null between sessions. */
  private ws: WebSocket | null = null;
  /** The session on `ws`, from its confirmed CONNACK to its close; null before and between sessions. */
  private link: SessionLink | null = null;
  private closedByUser = false;
  private lastProfile: Uint8Array | null = null;
  private readonly syncFn: SyncFn = (fill) => this.sync(fill);

  constructor(private readonly opts: ClientOptions) {
    this.c = opts.crypto ?? globalThis.crypto;
    this.tickets = opts.resume === false ? null : new TicketHolder(opts.now ?? Date.now);
    this.router = new Router(opts, this.c, () => this.closedByUser);
    this.requests = new Requests(opts.timeoutMs ?? 10_000);
    this.events = new Events({ live: () => this.live(), sync: this.syncFn });
    this.reconnector = new Reconnector(opts, { stopped: () => this.closedByUser, connect: () => this.connect(this.lastProfileOption()) });
    this.opener = new SessionOpener(opts, this.c, this.tickets, {
      closed: () => this.closedByUser,
      firstRequest: (profile) => this.firstRequest(profile),
      socket: (ws) => {
        this.ws = ws;
        if (!ws) this.dropLink();
      },
      confirmed: (s) => this.confirmed(s),
      opened: (ws, early) => this.attach(ws, early),
      abandoned: (ws) => {
        if (this.link?.ws === ws) this.dropLink();
      },
    });
  }

  get connected(): boolean {
    return this.live() !== null;
  }

  get keyHash(): string {
    return this.opts.keys.keyHash;
  }

  /** A REDIRECT moved (or tried to move) this client to another access point. */
  onRedirect(fn: (r: { accessPointId: number; result: ConnectResult }) => void): () => void {
    return this.router.redirectListeners.add(fn);
  }

  /** The checked access point list, resolving it when there is none or it expired. */
  accessPoints(force = false): Promise<ResolvedAccessPoints> {
    return this.router.accessPoints(force);
  }

  /** Server-initiated SyncResponses (attach/detach notifications, events in later versions). */
  onPush(fn: (r: SyncResponse) => void): () => void {
    return this.pushListeners.add(fn);
  }

  onDisconnect(fn: (d: DisconnectInfo) => void): () => void {
    return this.disconnectListeners.add(fn);
  }

  /** Result of every automatic reconnect attempt. */
  onReconnect(fn: (r: ConnectResult) => void): () => void {
    return this.reconnector.listeners.add(fn);
  }

  /**
   * Open a session. With `profile`, the first SyncRequest (profile registration) rides in CONNECT
   * and its SyncResponse comes back in CONNACK (`sync`).
   */
  async connect(options: { profile?: Uint8Array } = {}): Promise<ConnectResult> {
    this.closedByUser = false;
    if (options.profile) this.lastProfile = options.profile;
    const profile = options.profile ?? null;
    const once = (): Promise<ConnectResult> =>
      this.router.connect(
        (target) => this.connectOnce(target, profile),
        (ap) => {
          this.accessPoint = ap;
        },
      );
    const res = await once();
    if (!res.ok && res.kind === 'refused' && res.code === 'REFUSE_NO_AUTH' && this.opts.sendPublicKey !== 'always' && this.opener.resendKey()) return once();
    return res;
  }

  /**
   * Send a SyncRequest (requestId is assigned) and wait for its SyncResponse. Concurrent calls are
   * sealed and sent strictly in counter order (WebCrypto may finish encryptions out of order).
   */
  async sync(fill: (req: SyncRequest) => void): Promise<SyncResponse> {
    const link = this.live();
    if (!link) throw new ClientError('LK_SDK_CLOSED', 'not connected');
    return this.requests.sync(link, fill);
  }

  // ---- events (Kaa client API: event listeners, send, find listeners; events.ts) ----

  /**
   * Declare the event classes this endpoint listens to (replacing any earlier declaration; [] for
   * none). Kept and declared again with every new session's CONNECT. Only events of these classes
   * reach onEvent, whether sent to every listener or to this endpoint alone.
   */
  listenEvents(eventClassFQNs: string[]): Promise<void> {
    return this.events.listen(eventClassFQNs);
  }

  /** Events from other endpoints of this endpoint's owner, in delivery order, duplicates dropped. */
  onEvent(fn: (e: ReceivedEvent) => void): () => void {
    return this.events.listeners.add(fn);
  }

  /**
   * Send an event to the endpoints of this endpoint's owner: to `target` (a key hash) or, without
   * one, to every endpoint listening to the class. Resolves when the frame is written; there is no
   * delivery receipt (events are not queued for offline endpoints, and an endpoint without an owner
   * reaches nobody).
   */
  sendEvent(eventClassFQN: string, data: Uint8Array | null = null, target: string | null = null): Promise<void> {
    return this.events.send(eventClassFQN, data, target);
  }

  /** Key hashes of the owner's other endpoints that listen to all of `eventClassFQNs`. */
  findEventListeners(eventClassFQNs: string[]): Promise<string[]> {
    return this.events.findListeners(eventClassFQNs);
  }

  // ---- ownership (Kaa client API: attachUser, attachEndpoint, detachEndpoint, access token; ownership.ts) ----

  /**
   * Attach this endpoint to owner `externalId`, whose `accessToken` the application's verifier checks
   * (the default verifier, or the one named by `verifierToken`). Resolves with the result; a failure
   * carries a UserAttachErrorCode.
   */
  attachUser(externalId: string, accessToken: string, verifierToken?: string): Promise<{ ok: true } | { ok: false; code: string; reason: string | null }> {
    return ownership.attachUser(this.syncFn, externalId, accessToken, verifierToken);
  }

  /**
   * Publish (or rotate) this endpoint's access token, so an attached endpoint can attach it to its
   * owner. Sent with the profile sync, so the endpoint must have registered a profile first.
   */
  setEndpointAccessToken(token: string): Promise<void> {
    return ownership.setEndpointAccessToken(this.syncFn, this.lastProfile, token);
  }

  /** Attach the endpoint that published `endpointAccessToken` to this endpoint's owner; its key hash, or null if refused. */
  attachEndpoint(endpointAccessToken: string): Promise<string | null> {
    return ownership.attachEndpoint(this.syncFn, endpointAccessToken);
  }

  /** Detach an endpoint (this one, or another of the same owner) by key hash. */
  detachEndpoint(keyHash: string): Promise<boolean> {
    return ownership.detachEndpoint(this.syncFn, keyHash);
  }

  /** Another endpoint attached this one to its owner. */
  onAttached(fn: (n: { ownerExternalId: string; byEndpointKeyHash: string }) => void): () => void {
    return this.onPush(ownership.onAttachedPush(fn));
  }

  /** Another endpoint of the owner detached this one. */
  onDetached(fn: (n: { byEndpointKeyHash: string }) => void): () => void {
    return this.onPush(ownership.onDetachedPush(fn));
  }

  /** Register or update the endpoint profile (profile sync). */
  register(profile: Uint8Array): Promise<SyncResponse> {
    this.lastProfile = profile;
    return this.sync((req) => {
      req.profileSyncRequest = { profileBody: profile, endpointAccessToken: null };
    });
  }

  /** PINGREQ -> PINGRESP round trip in ms. */
  ping(): Promise<number> {
    const link = this.live();
    if (!link) return Promise.reject(new ClientError('LK_SDK_CLOSED', 'not connected'));
    return this.pings.roundTrip(() => link.sendPing(), this.opts.timeoutMs ?? 10_000);
  }

  /** Send DISCONNECT and close; stops reconnecting. */
  async close(): Promise<void> {
    this.closedByUser = true;
    this.reconnector.cancel();
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
        sayGoodbye(ws);
      } catch {
        done();
      }
    });
  }

  // ---- the session's lifecycle ----

  /** The open session, or null when not connected. */
  private live(): SessionLink | null {
    return this.link?.open ? this.link : null;
  }

  private lastProfileOption(): { profile?: Uint8Array } {
    return this.lastProfile ? { profile: this.lastProfile } : {};
  }

  /** One session on `target`, unless a socket is already open or opening. */
  private connectOnce(target: Target, profile: Uint8Array | null): Promise<ConnectResult> {
    if (this.ws) return Promise.resolve({ ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'already connected', retryable: false });
    return this.opener.open(target, profile);
  }

  /** The SyncRequest a new session's CONNECT or RESUME carries: the profile and the declared event classes. */
  private firstRequest(profile: Uint8Array | null): SyncRequest | null {
    if (!profile && !this.events.declared) return null;
    const req = emptyRequest(this.requests.next());
    if (profile) req.profileSyncRequest = { profileBody: profile, endpointAccessToken: null };
    // The listened event classes go with the CONNECT, so events flow from the first moment.
    this.events.declareIn(req);
    return req;
  }

  /**
   * CONNACK accepted and confirmed on `ws`: the session's facts, and its link, usable for requests
   * at once (its frames are read from attach() on).
   */
  private confirmed({ ws, keys, hello, ack, txCounter, rxCounter }: ConfirmedSession): void {
    this.resumed = hello.resumed;
    this.sessionId = ack.sessionId;
    this.keepAliveSec = ack.keepAliveSec;
    this.events.sessionStarted();
    // Only for the current socket: a handshake that timed out meanwhile has none.
    if (this.ws !== ws) return;
    this.link = new SessionLink(ws, keys, txCounter, rxCounter, {
      syncResponse: (res, l) => this.onSyncResponse(res, l),
      pong: () => this.pings.pong(),
      ticket: (frame) => this.tickets?.onTicket(frame) ?? false,
    });
  }

  /** A confirmed session that does not open after all (its handshake failed, or close() was called). */
  private dropLink(): void {
    this.link?.end();
    this.link = null;
  }

  /** The handshake succeeded: the session's frames go to its SessionLink until its socket closes. */
  private attach(ws: WebSocket, early: Uint8Array[]): void {
    const link = this.link;
    if (!link || link.ws !== ws) return;
    const connectedAt = Date.now();
    for (const data of early) link.receive(data);
    ws.onmessage = (ev) => link.receive(new Uint8Array(ev.data as ArrayBuffer));
    // A ticket for the next session (4.6): asked once, right after CONNACK.
    if (this.tickets && ws.readyState === 1) {
      this.tickets.sessionAccepted(link.keys.resumptionSecret);
      ws.send(TICKETREQ_FRAME);
    }
    ws.onclose = (ev) => this.onSessionClosed(link, connectedAt, ev);
    link.keepAlive(this.keepAliveSec > 0 ? this.keepAliveSec : 60);
  }

  private onSyncResponse(res: SyncResponse, link: SessionLink): void {
    if (this.requests.settle(res)) return;
    if (res.eventSyncResponse?.events) this.events.dispatch(res);
    if (res.status === 'REDIRECT' && res.redirectSyncResponse) this.router.redirect(res.redirectSyncResponse.accessPointId, link.ws, () => this.ws);
    this.pushListeners.emit(res);
  }

  /** The open session's socket closed: tell the listeners, then follow a redirect or reconnect. */
  private onSessionClosed(link: SessionLink, connectedAt: number, ev: CloseEvent): void {
    this.reconnector.sessionEnded(connectedAt);
    const lastDisconnect = link.lastDisconnect;
    link.end();
    this.ws = null;
    this.link = null;
    this.tickets?.sessionEnded();
    this.requests.rejectAll();
    const errorCode = lastDisconnect?.errorCode ?? (ev.reason || null);
    const terminal = (ev.code >= 4500 && ev.code <= 4999) || lastDisconnect?.reason === 3;
    const redirect = this.router.redirecting && !this.closedByUser;
    // close() during a redirect's jitter delay: the redirect is over (a later connect() must follow the next one).
    if (!redirect) this.router.redirecting = false;
    const willReconnect = redirect || (!this.closedByUser && !!this.opts.reconnect && !terminal);
    const info: DisconnectInfo = { reason: lastDisconnect ? (DISCONNECT_REASONS[lastDisconnect.reason] ?? null) : null, errorCode: redirect ? 'LK_SDK_REDIRECTED' : errorCode, closeCode: ev.code, willReconnect };
    this.disconnectListeners.emit(info);
    if (redirect) {
      // To the named access point (then the others), at once: Router.redirect already waited.
      this.router.followRedirect(
        () => this.connect(this.lastProfileOption()),
        (result) => {
          if (!result.ok && result.retryable && this.opts.reconnect && !this.closedByUser) this.reconnector.schedule(result.kind === 'failed' ? result.retryAfterMs : undefined);
        },
      );
    } else if (willReconnect) this.reconnector.schedule();
  }
}
