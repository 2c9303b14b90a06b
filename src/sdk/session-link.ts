/**
 * One accepted session on its socket, from CONNACK to the socket's close: the frame counters,
 * SYNC frames sealed and sent in counter order and opened in arrival order (WebCrypto may finish
 * out of order; docs/protocol.md 4.4), the keepalive PINGREQs, and the DISCONNECT the server sent.
 * The next session gets a new link, so nothing of this one (counters, queued frames) reaches it:
 * frames still queued when the socket closes are dropped, never opened against the next session.
 */
import wire from './wire.js';
import { FRAME } from './constants.js';
import type { SyncFrame, SyncResponse } from '../protocol/wire-schemas.js';
import type { ClientSessionKeys } from './crypto.js';
import { ClientError } from './errors.js';
import { decodeDisconnect, PINGREQ_FRAME, syncFrame, type DisconnectBody } from './frames.js';

/** What the client does with the frames of a session (the link has checked and opened them). */
export interface LinkHandlers {
  /** A SyncResponse, in order: the answer to a request, or one the server pushed. */
  syncResponse(res: SyncResponse, link: SessionLink): void;
  /** PINGRESP. */
  pong(): void;
  /** A TICKET frame (type byte included); false when it does not decode, a protocol error. */
  ticket(frame: Uint8Array): boolean;
}

export class SessionLink {
  /** The server's DISCONNECT, or the protocol error this client closed for; read when the socket closes. */
  lastDisconnect: DisconnectBody | null = null;
  private ended = false;
  private txChain: Promise<void> = Promise.resolve();
  private rxChain: Promise<void> = Promise.resolve();
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;

  /** `txCounter`, `rxCounter`: the next counters, past the SyncRequest and SyncResponse CONNECT and CONNACK carried. */
  constructor(
    readonly ws: WebSocket,
    readonly keys: ClientSessionKeys,
    private txCounter: number,
    private rxCounter: number,
    private readonly on: LinkHandlers,
  ) {}

  /** The session has not ended and its socket is open. */
  get open(): boolean {
    return !this.ended && this.ws.readyState === 1;
  }

  /** Seal and send one SyncRequest, strictly in counter order. */
  send(plaintext: Uint8Array): Promise<void> {
    const sent = this.txChain.then(async () => {
      if (this.ended) throw new ClientError('LK_SDK_CLOSED', 'session ended');
      const counter = this.txCounter++;
      const ciphertext = await this.keys.tx.seal(counter, plaintext);
      if (this.ended || this.ws.readyState !== 1) throw new ClientError('LK_SDK_CLOSED', 'session ended');
      this.ws.send(syncFrame(counter, ciphertext));
    });
    this.txChain = sent.catch(() => undefined);
    return sent;
  }

  /** A frame from the socket: handled after every earlier one (counters must match). */
  receive(data: Uint8Array): void {
    this.rxChain = this.rxChain.then(() => (this.ended ? undefined : this.onFrame(data))).catch(() => undefined);
  }

  sendPing(): void {
    if (this.open) this.ws.send(PINGREQ_FRAME);
  }

  /** PINGREQ every `sec` seconds until the session ends (the timer does not keep Node running). */
  keepAlive(sec: number): void {
    this.keepAliveTimer = setInterval(() => this.sendPing(), sec * 1000);
    (this.keepAliveTimer as { unref?: () => void }).unref?.();
  }

  /** The socket closed: stop the keepalive; frames still queued are dropped. */
  end(): void {
    this.ended = true;
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  private async onFrame(data: Uint8Array): Promise<void> {
    switch (data[0]) {
      case FRAME.PINGRESP:
        this.on.pong();
        return;
      case FRAME.DISCONNECT:
        this.lastDisconnect = decodeDisconnect(data);
        return;
      case FRAME.SYNC: {
        let frame: SyncFrame;
        try {
          frame = wire.sync.fromBuffer(data.subarray(1));
        } catch {
          return this.protocolError('bad SYNC frame');
        }
        if (frame.counter !== this.rxCounter) return this.protocolError('SYNC counter out of order');
        const plain = await this.keys.rx.open(this.rxCounter, frame.ciphertext);
        if (!plain) return this.protocolError('SYNC does not authenticate');
        this.rxCounter++;
        this.on.syncResponse(wire.syncResponse.fromBuffer(plain), this);
        return;
      }
      case FRAME.TICKET:
        if (!this.on.ticket(data)) return this.protocolError('bad or unexpected TICKET frame');
        return;
      default:
        return this.protocolError(`unexpected frame 0x${data[0]?.toString(16)}`);
    }
  }

  private protocolError(detail: string): void {
    this.lastDisconnect = { reason: 1, errorCode: 'LK_SDK_PROTOCOL_ERROR' };
    // Close reasons are limited to 123 bytes.
    this.ws.close(4000, `LK_SDK_PROTOCOL_ERROR ${detail}`.slice(0, 120));
  }
}
