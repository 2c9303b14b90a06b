/**
 * Per-connection state machine (no uWS imports: the transport is an interface, so this is unit
 * tested with a fake transport and driven by src/transport/gateway.ts in production).
 *
 *   AWAIT_CONNECT --CONNECT--> HANDSHAKING --accepted--> ESTABLISHED --DISCONNECT/close--> CLOSED
 *        |                         |  refused: CONNACK(refusal) + close          |
 *        +-- anything else / timeout: DISCONNECT BAD_REQUEST + close ------------+-- bad frame: DISCONNECT + close
 *
 * Counters: the endpoint's sealed payloads carry counters 0, 1, 2, ... (the SyncRequest embedded in
 * CONNECT, if any, is counter 0); the server's likewise (the SyncResponse embedded in CONNACK, if
 * any, is counter 0). A SYNC frame whose counter is not exactly the next one, or that does not
 * authenticate, ends the session: replays and reordering are impossible to hide.
 */
import crypto from 'node:crypto';
import type { FrameCipher } from '../crypto/aead.js';
import { createFrameCipher } from '../crypto/frame-cipher.js';
import { KeySlots } from '../crypto/key-slots.js';
import { CryptoTicket } from '../crypto/pool.js';
import { SecretSlots } from '../crypto/secret-slots.js';
import { ConnackCode, DisconnectReason, ERRORS, sessionErrorCode, type ErrorCode } from '../errors.js';
import { isEventOnly, type EventMember, type EventPeer } from '../events/relay.js';
import type { OutboxDelivery } from '../ownership/notifications.js';
import {
  decodeFrame,
  decodeSyncRequest,
  encodeConnack,
  encodeDisconnect,
  encodeEventPushTransient,
  encodePingResp,
  encodeSync,
  encodeSyncResponseTransient,
  encodeTicket,
} from '../protocol/frames.js';
import { emptySyncResponse, type Connect, type Resume, type SyncRequest, type SyncResponse, type WireEvent } from '../protocol/schemas.js';
import type { Application, EndpointRecord } from '../store/store.js';
import type { HandshakeAccepted } from './handshake.js';
import { takeFrame } from './frame-rate.js';
import { answerEmbeddedSync, answerSync } from './sync.js';
import { MIN_KEEPALIVE_SEC, type SessionHost, type SessionState, type Transport } from './types.js';

export { MIN_KEEPALIVE_SEC } from './types.js';
export type { SessionHost, SessionLimits, SessionRegistryHooks, SessionState, Transport } from './types.js';

/** Frame keys of established sessions that have no ciphers yet (crypto/key-slots.ts: 64 B each). */
const frameKeys = new KeySlots();
/** Each established session's resumption secret (32 bytes), for the tickets it gives (TICKETREQ). */
const resumeSecrets = new SecretSlots(32);

/** The first link of every session's SyncRequest chain (a settled promise is immutable: shared). */
const SETTLED: Promise<void> = Promise.resolve();

/** A session's place in the crypto pool, and when its handshake started (latchkey_handshake_seconds). */
class HandshakeTicket extends CryptoTicket {
  readonly startedAt = performance.now();
}

/** The first frame of a session: a full handshake or a resumption. */
type Hello = { connect: Connect } | { resume: Resume };


/**
 * Memory: an idle established session is this object, its transport and the registry's entries
 * (docs/performance.md "Per-session memory budget"), so fields that only a handshake or a busy
 * session needs are kept out of it: the crypto ticket and the handshake's start time live in a
 * HandshakeTicket dropped at CONNACK; frame keys are a 64-byte slot (frameKeys) until the ciphers
 * exist; the public key is a one-byte string until the endpoint record (which holds it) is known;
 * one time field (lastSeen) serves as the socket's open time, the CONNECT's arrival and the rate
 * buckets' last refill.
 */
export class Session implements EventPeer {
  readonly id = crypto.randomUUID();
  state: SessionState = 'AWAIT_CONNECT';
  /**
   * Last time a frame arrived (ms); the registry's sweeper enforces keepalive and handshake
   * timeouts with it. Before CONNECT it is when the socket opened, while HANDSHAKING when the
   * CONNECT arrived (any other frame in these states ends the session), from CONNACK on the last frame.
   */
  lastSeen = Date.now();
  keepAliveMs = 0;
  /** Set when the CONNACK ACCEPTED is sent. */
  establishedAt: number | null = null;
  app: Application | null = null;
  keyHash: string | null = null;
  /** The endpoint's public key (SPKI DER as latin1: public, and a heap string holds no ArrayBuffer), until `endpoint` is known. */
  private publicKey: string | null = null;
  private endpoint: EndpointRecord | null = null;
  private rx: FrameCipher | null = null;
  private tx: FrameCipher | null = null;
  /** Slot of the session keys in frameKeys until the ciphers are first needed (many sessions only ping for a long time); -1: none. */
  private keySlot = -1;
  /** Slot of the resumption secret in resumeSecrets while established; -1: none. */
  private resumeSlot = -1;
  /** This session was resumed from a ticket (no RSA). */
  resumed = false;
  private rxCounter = 0;
  private txCounter = 0;
  private pendingSyncs = 0;
  private chain: Promise<void> = SETTLED;
  /** Event state, once the endpoint declares listened classes or sends an event (events/relay.ts). */
  events: EventMember | null = null;
  /** Per-session rate buckets (frame-rate.ts): tokens left, refilled from lastSeen; -1 until the first frame. */
  msgTokens = -1;
  byteTokens = -1;

  constructor(
    private readonly host: SessionHost,
    private readonly transport: Transport,
  ) {}

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get endpointKey(): string | null {
    return this.app && this.keyHash ? `${this.app.id}/${this.keyHash}` : null;
  }

  /**
   * One WebSocket message. `data` must be a copy the session may keep, except for a SYNC frame while
   * ESTABLISHED, which may be a borrowed view (gateway.ts): it is decrypted synchronously and only
   * the plaintext (fresh memory from FrameCipher.open) is kept.
   */
  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'CLOSED') return;
    const now = Date.now();
    const previous = this.lastSeen;
    this.lastSeen = now;
    if (!takeFrame(this, this.host.limits, now, previous, data.length)) return this.fail('LK_SESSION_RATE_LIMITED');
    if (!isBinary) return this.fail('LK_FRAME_TEXT');
    if (data.length > this.host.limits.maxFrameBytes) return this.fail('LK_FRAME_TOO_LARGE');
    const decoded = decodeFrame(data);
    if (!decoded.ok) return this.fail(decoded.code);
    const frame = decoded.value;
    switch (this.state) {
      case 'AWAIT_CONNECT': {
        let hello: Hello;
        if (frame.type === 'CONNECT') hello = { connect: frame.connect };
        else if (frame.type === 'RESUME') hello = { resume: frame.resume };
        else return this.fail('LK_FRAME_UNEXPECTED', `${frame.type} before CONNECT`);
        this.state = 'HANDSHAKING';
        if (this.host.handshakeGate) this.host.handshakeGate.run(() => this.startHandshake(hello));
        else this.startHandshake(hello);
        return;
      }
      case 'HANDSHAKING':
        return this.fail('LK_FRAME_UNEXPECTED', `${frame.type} before CONNACK`);
      case 'ESTABLISHED':
        switch (frame.type) {
          case 'SYNC':
            return this.onSync(frame.sync.counter, frame.sync.ciphertext);
          case 'PINGREQ':
            this.transport.send(encodePingResp());
            return;
          case 'TICKETREQ':
            return this.sendTicket();
          case 'DISCONNECT':
            this.host.stats.ended('ENDPOINT_DISCONNECT');
            this.closeQuietly(1000, 'disconnect');
            return;
          default:
            return this.fail('LK_FRAME_UNEXPECTED', `${frame.type} in session`);
        }
    }
  }

  /** The transport is gone (peer closed, network error, or after our close). */
  onTransportClosed(): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.released();
  }

  private released(): void {
    // Not dropped here: a refusal observes the handshake's duration after its close.
    this.ticket?.cancel();
    this.decryptUnused('closed');
    if (this.keySlot >= 0) {
      frameKeys.free(this.keySlot);
      this.keySlot = -1;
    }
    if (this.resumeSlot >= 0) {
      resumeSecrets.free(this.resumeSlot);
      this.resumeSlot = -1;
    }
    this.host.events?.leave(this);
    this.host.registry.closed(this);
  }

  /** The handshake ended (accepted or refused): observe its duration, drop its ticket. */
  private observeHandshake(result: string): void {
    const t = this.ticket;
    if (!t) return;
    this.ticket = null;
    this.host.stats.handshakeSeconds.observe({ result }, (performance.now() - t.startedAt) / 1000);
  }

  /** A handshake whose RSA decrypt ran ends without being accepted: count the decrypt as spent for nothing (once). */
  private decryptUnused(reason: string, t: HandshakeTicket | null = this.ticket): void {
    if (!t?.decrypted) return;
    t.decrypted = false;
    this.host.stats.count(this.host.stats.rsaDecryptsUnused, reason);
  }

  /** From CONNECT to CONNACK: this session's place in the crypto pool (cancelled when it closes) and the start time. */
  private ticket: HandshakeTicket | null = null;

  /** The key hash of an established session, or the one a handshaking session's CONNECT claims (ban matching). */
  get claimedKeyHash(): string | null {
    return this.keyHash ?? this.ticket?.keyHash ?? null;
  }

  /** TICKETREQ: a ticket for the next session (an empty one with lifetime 0 when resumption is off). */
  private sendTicket(): void {
    const t = this.host.tickets;
    if (!t || this.resumeSlot < 0) {
      this.transport.send(encodeTicket({ ticket: Buffer.alloc(0), lifetimeSec: 0 }));
      return;
    }
    const ticket = t.seal({ appId: this.app!.id, keyHash: Buffer.from(this.keyHash!, 'base64url'), resumption: resumeSecrets.view(this.resumeSlot) });
    this.host.stats.ticketsIssued++;
    this.transport.send(encodeTicket({ ticket, lifetimeSec: Math.floor(t.lifetimeMs / 1000) }));
  }

  private startHandshake(hello: Hello): void {
    // The socket may have gone while the CONNECT waited for its turn (handshake-gate.ts).
    if (this.state !== 'HANDSHAKING') return;
    this.handshake(hello).catch((err: unknown) => {
      // A bug after the handshaker answered must end this session, not the process.
      this.host.log.error({ err, session: this.id }, 'handshake failed after the crypto pool');
      this.fail('LK_INTERNAL');
    });
  }

  private async handshake(hello: Hello): Promise<void> {
    let accepted: HandshakeAccepted;
    const ticket = (this.ticket = new HandshakeTicket());
    const sync = 'connect' in hello ? hello.connect.sync : hello.resume.sync;
    try {
      accepted = 'connect' in hello
        ? await this.host.handshaker.run(hello.connect, this.transport.remoteAddress, ticket)
        : await this.host.handshaker.resume(hello.resume, this.transport.remoteAddress, ticket);
    } catch (err) {
      const code = sessionErrorCode(err);
      if (code === 'LK_INTERNAL' || code === 'LK_SERVER_UNAVAILABLE') this.host.log.error({ err, session: this.id, code }, 'handshake failed');
      if (this.state !== 'HANDSHAKING') return this.decryptUnused('closed', ticket);
      if (ERRORS[code].connack !== undefined) return this.refuse(code);
      return this.fail(code);
    }
    // The socket may have gone while the workers ran; the credentials binding stays (it is durable
    // and idempotent for this endpoint).
    if (this.state !== 'HANDSHAKING') return this.decryptUnused('closed', ticket);
    // Revoked while this handshake ran on the status it read before: refuse (control/revocation.ts).
    if (this.host.registry.recentlyRevoked(accepted.app.id, accepted.keyHash)) return this.refuse('LK_CRED_REVOKED');
    this.app = accepted.app;
    this.keyHash = accepted.keyHash;
    this.endpoint = accepted.endpoint;
    // Copies, not views: accepted.publicKey may be a view of the CONNECT frame (and of the 8 KiB
    // Buffer pool slab under it), the keys views of the pool's 96-byte answer.
    this.publicKey = this.endpoint ? null : accepted.publicKey.toString('latin1');
    this.keySlot = frameKeys.put(accepted.c2s, accepted.s2c);
    accepted.c2s.fill(0);
    accepted.s2c.fill(0);
    if (this.host.tickets) this.resumeSlot = resumeSecrets.put(accepted.resumption);
    accepted.resumption.fill(0);
    this.resumed = accepted.resumed;
    const asked = accepted.keepAliveSec;
    const limits = this.host.limits;
    const keepAlive = asked <= 0 ? limits.keepAliveDefaultSec : Math.min(Math.max(asked, MIN_KEEPALIVE_SEC), limits.keepAliveMaxSec);
    this.keepAliveMs = keepAlive * 1000;

    let embedded: Buffer | null = null;
    if (sync) {
      const req = this.openSyncRequest(0, sync);
      if (!req) return;
      this.rxCounter = 1;
      try {
        const res = await answerEmbeddedSync(this.host, this, req);
        if (this.state !== 'HANDSHAKING') return;
        embedded = res ? this.seal(res) : null;
      } catch (err) {
        // A backend failure while registering: refuse so the endpoint retries (CONNACK 4).
        const code = sessionErrorCode(err);
        this.host.log.warn({ err, session: this.id, code }, 'embedded sync failed');
        return this.fail(code);
      }
      if (this.state !== 'HANDSHAKING') return;
    }
    if (this.host.registry.recentlyRevoked(accepted.app.id, accepted.keyHash)) return this.refuse('LK_CRED_REVOKED');
    this.state = 'ESTABLISHED';
    this.establishedAt = Date.now();
    // Keepalive counts from CONNACK, not from the CONNECT that may have waited for a crypto worker.
    this.lastSeen = this.establishedAt;
    this.host.stats.handshakesAccepted++;
    if (accepted.resumed) this.host.stats.handshakesResumed++;
    this.host.stats.sessionsOpen++;
    this.host.admission?.handshakeAccepted(this.transport.remoteAddress);
    this.observeHandshake(accepted.resumed ? 'resumed' : 'accepted');
    this.host.registry.established(this);
    // Owner changes are routed to established sessions only: one made while this session
    // handshook (after the embedded sync read the owner) would be missed; read the owner again.
    this.host.events?.revalidate(this);
    this.transport.send(
      encodeConnack({
        returnCode: ConnackCode.ACCEPTED,
        errorCode: null,
        confirmation: Buffer.from(accepted.confirmation),
        sessionId: this.id,
        keepAliveSec: keepAlive,
        sync: embedded,
      }),
    );
    // Notifications queued while the endpoint was offline follow the CONNACK.
    this.deliverPending(true);
  }

  private ciphers(): { rx: FrameCipher; tx: FrameCipher } {
    if (!this.rx || !this.tx) {
      // Both ciphers copy their key (a KeyObject each), so the slot is freed (zeroed) at once.
      this.rx = createFrameCipher(frameKeys.c2s(this.keySlot));
      this.tx = createFrameCipher(frameKeys.s2c(this.keySlot));
      frameKeys.free(this.keySlot);
      this.keySlot = -1;
    }
    return { rx: this.rx, tx: this.tx };
  }

  private openSyncRequest(counter: number, ciphertext: Buffer): SyncRequest | null {
    const plain = this.ciphers().rx.open(counter, ciphertext);
    if (!plain) {
      this.fail('LK_FRAME_DECRYPT_FAILED');
      return null;
    }
    const decoded = decodeSyncRequest(plain);
    if (!decoded.ok) {
      this.fail(decoded.code);
      return null;
    }
    return decoded.value;
  }

  private onSync(counter: number, ciphertext: Buffer): void {
    if (counter !== this.rxCounter) return this.fail('LK_FRAME_BAD_COUNTER', `expected ${this.rxCounter}, got ${counter}`);
    const req = this.openSyncRequest(counter, ciphertext);
    if (!req) return;
    this.rxCounter++;
    // The hot path: events only, nothing queued before them, the sender's owner known: relayed
    // synchronously, no SyncResponse (docs/protocol.md).
    if (this.pendingSyncs === 0 && this.host.events && isEventOnly(req) && this.host.events.tryFast(this, req.eventSyncRequest!.events!)) {
      this.host.stats.syncRequests++;
      return;
    }
    if (++this.pendingSyncs > this.host.limits.maxPendingSyncs) return this.fail('LK_SERVER_BUSY', 'too many SyncRequests in flight');
    // Answer in request order: each SyncRequest waits for the previous one.
    this.chain = this.chain.then(async () => {
      let res: SyncResponse | null;
      try {
        res = await answerSync(this.host, this, req);
      } finally {
        this.pendingSyncs--;
      }
      if (res && this.state === 'ESTABLISHED') this.push(res);
    }).catch((err: unknown) => {
      // A bug while answering must end this session, not escape as an unhandled rejection (which
      // ends the process: src/fatal.ts).
      this.host.log.error({ err, session: this.id }, 'SyncRequest handling failed');
      this.fail('LK_INTERNAL');
    });
  }

  /** SyncSubject (sync.ts): the endpoint record, once read. */
  get endpointRecord(): EndpointRecord | null {
    return this.endpoint;
  }

  /** SyncSubject: the endpoint's public key, the record's or the one the handshake brought. */
  publicKeyBytes(): Buffer {
    return this.endpoint?.publicKey ?? Buffer.from(this.publicKey ?? '', 'latin1');
  }

  /** SyncSubject: the endpoint record is known (or gone: null); the record holds the key from now on. */
  learnEndpoint(endpoint: EndpointRecord | null, keepKnown = false): void {
    if (!(keepKnown && this.endpoint)) this.endpoint = endpoint;
    if (this.endpoint) this.publicKey = null;
  }

  /** The endpoint's queued notifications, pushed in order once it is established (ownership/notifications.ts). */
  private pendingDelivery: OutboxDelivery | null = null;

  /** Push the endpoint's queued notifications (the outbox's store queue) in order and acknowledge what was sent. */
  deliverPending(atConnect = false): void {
    const ownership = this.host.ownership;
    if (!ownership || this.state !== 'ESTABLISHED') return;
    this.pendingDelivery ??= ownership.outbox.delivery(this);
    this.pendingDelivery.run(atConnect);
  }

  private seal(res: SyncResponse): Buffer {
    // The transient encoding is consumed by seal() at once.
    return this.ciphers().tx.seal(this.txCounter++, encodeSyncResponseTransient(res));
  }

  /**
   * Tell the endpoint to move to another access point (Kaa's REDIRECT): a push with status REDIRECT
   * and the access point id from its bootstrap list. The session stays open until the endpoint
   * leaves (or the node ends it), so nothing in flight is cut off.
   */
  redirect(accessPointId: number): boolean {
    const res = emptySyncResponse(-1, 'REDIRECT');
    res.redirectSyncResponse = { accessPointId };
    return this.push(res);
  }

  /** EventPeer: push one relayed event unless the socket already buffers more than `maxBufferedBytes`. */
  deliverEvent(ev: WireEvent, maxBufferedBytes: number): 'sent' | 'slow' | 'gone' {
    if (this.state !== 'ESTABLISHED') return 'gone';
    if (this.transport.bufferedAmount() > maxBufferedBytes) return 'slow';
    return this.pushPlain(encodeEventPushTransient(ev), true) ? 'sent' : 'gone';
  }

  /** EventPeer: the session can still take part (not closed). */
  get isOpen(): boolean {
    return this.state !== 'CLOSED';
  }

  /** Send a SyncResponse (an answer or a server push) as a SYNC frame. */
  push(res: SyncResponse, deferred = false): boolean {
    if (this.state !== 'ESTABLISHED') return false;
    return this.pushPlain(encodeSyncResponseTransient(res), deferred);
  }

  /** Seal an encoded SyncResponse (consumed at once) and send it as the next SYNC frame. */
  private pushPlain(plain: Buffer, deferred: boolean): boolean {
    if (this.state !== 'ESTABLISHED') return false;
    const counter = this.txCounter++;
    const frame = encodeSync({ counter, ciphertext: this.ciphers().tx.seal(counter, plain) });
    return deferred ? this.transport.sendDeferred(frame) : this.transport.send(frame);
  }

  /** Refuse the handshake: CONNACK with the code's return code, then close. */
  private refuse(code: ErrorCode): void {
    const spec = ERRORS[code];
    this.host.stats.refused(code);
    this.decryptUnused(code);
    this.observeHandshake('refused');
    this.transport.send(
      encodeConnack({
        returnCode: ConnackCode[spec.connack!],
        errorCode: code,
        confirmation: null,
        sessionId: null,
        keepAliveSec: 0,
        sync: null,
      }),
    );
    this.closeQuietly(spec.close ?? 4500, code);
    // After the close: a ban this refusal sets ends the address's other sessions, not this one twice.
    this.host.admission?.handshakeRefused(this.transport.remoteAddress, code);
  }

  /**
   * End the session with DISCONNECT (reason from the catalogue) and close. Handshake refusal codes
   * arriving before CONNACK go through refuse() instead.
   */
  fail(code: ErrorCode, detail?: string): void {
    if (this.state === 'CLOSED') return;
    const spec = ERRORS[code];
    if (this.state === 'HANDSHAKING' && spec.connack !== undefined) return this.refuse(code);
    const beforeSession = this.state !== 'ESTABLISHED';
    if (detail) this.host.log.debug({ session: this.id, code, detail }, 'session ended');
    this.host.stats.ended(code);
    if (beforeSession) this.decryptUnused(code);
    this.transport.send(encodeDisconnect({ reason: DisconnectReason[spec.disconnect ?? 'BAD_REQUEST'], errorCode: code }));
    this.closeQuietly(spec.close ?? ERRORS.LK_INTERNAL.close!, code);
    // Junk before a session exists (bad frames, no CONNECT in time) counts against the address.
    if (beforeSession) this.host.admission?.handshakeRefused(this.transport.remoteAddress, code);
  }

  private closeQuietly(closeCode: number, reason: string): void {
    const was = this.state;
    this.state = 'CLOSED';
    this.transport.close(closeCode, reason);
    if (was !== 'CLOSED') this.released();
  }

  /** For the registry: end for keepalive/handshake timeouts, takeover, shutdown, revocation. */
  end(code: ErrorCode): void {
    this.fail(code);
  }

}
