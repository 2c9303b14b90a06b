/**
 * Opening one session on one access point: RESUME while a usable ticket is held, else (or at once
 * when the server refuses the ticket, docs/protocol.md 4.6) a full CONNECT, on a new socket; the
 * first SyncRequest sealed into it; CONNACK read, its return code named and its key confirmation
 * checked (4.3). hello.ts builds the frames; the client takes the socket over once it is open.
 */
import wire from './wire.js';
import { FRAME, ENDPOINT_PATH, SUBPROTOCOL } from './constants.js';
import type { Connack, SyncRequest, SyncResponse } from '../protocol/wire-schemas.js';
import type { ClientSessionKeys, WebCrypto } from './crypto.js';
import { ClientError } from './errors.js';
import { decodeDisconnect } from './frames.js';
import { prepareConnect, prepareResume, type Hello } from './hello.js';
import { fallsBackToConnect, type TicketHolder } from './resumption.js';
import { pacedRetryAfterMs } from './reconnect.js';
import { CONNACK_CODES, type ClientOptions, type ConnectResult, type RefusalCode, type Target } from './types.js';
import { defaultWebSocket, type WebSocketCtor } from './websocket.js';

const TERMINAL_REFUSALS: ReadonlySet<RefusalCode> = new Set(['REFUSE_BAD_PROTOCOL', 'REFUSE_ID_REJECT', 'REFUSE_BAD_CREDENTIALS', 'REFUSE_VERIFICATION_FAILED']);

/** A session whose CONNACK was accepted and confirmed. */
export interface ConfirmedSession {
  ws: WebSocket;
  keys: ClientSessionKeys;
  hello: Hello;
  ack: Connack;
  /** The next counters each way (past the SyncRequest in the hello and the SyncResponse in CONNACK). */
  txCounter: number;
  rxCounter: number;
}

/** What the opener needs from the client, and tells it. */
export interface OpenerHooks {
  /** close() was called: stop. */
  closed(): boolean;
  /** The first SyncRequest of a new session (with its requestId), or null for none. */
  firstRequest(profile: Uint8Array | null): SyncRequest | null;
  /** The client's socket: the one a handshake opened, or null once that handshake failed (drop its session too). */
  socket(ws: WebSocket | null): void;
  /**
   * CONNACK accepted and its confirmation checked. The session is usable from here (requests may
   * be sent) while the SyncResponse CONNACK carried is opened; the server's frames wait until
   * opened(). Its facts are the client's even when the session does not open after all.
   */
  confirmed(session: ConfirmedSession): void;
  /** The session is open: `early` holds the frames that arrived after CONNACK, in order. Called before open() resolves. */
  opened(ws: WebSocket, early: Uint8Array[]): void;
  /** The handshake on `ws` had already failed (a timeout, a close) when its confirmation was checked. */
  abandoned(ws: WebSocket): void;
}

/** The endpoint URL of a gateway base URL: /ep/v1 unless the URL has a path. */
function endpointUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = ENDPOINT_PATH;
  return u.toString();
}

export class SessionOpener {
  /** A CONNECT with the public key was accepted: with sendPublicKey 'auto', the next ones omit it. */
  private keyAccepted = false;

  constructor(
    private readonly opts: ClientOptions,
    private readonly c: WebCrypto,
    private readonly tickets: TicketHolder | null,
    private readonly hooks: OpenerHooks,
  ) {}

  /**
   * One session on `target`: RESUME while a usable ticket is held, and a full CONNECT on a new
   * socket at once when the server refuses the ticket (4.6); otherwise CONNECT.
   */
  async open(target: Target, profile: Uint8Array | null): Promise<ConnectResult> {
    const held = this.tickets?.usable();
    if (held) {
      const o = this.opts;
      const hello = await prepareResume({ appToken: o.appToken, keyHashRaw: o.keys.keyHashRaw, ticket: held.ticket, resumptionSecret: held.secret, timestamp: (o.now ?? Date.now)(), nonce: this.c.getRandomValues(new Uint8Array(16)), keepAliveSec: o.keepAliveSec ?? 0 }, this.c);
      const res = await this.handshake(target, profile, hello);
      const fallBack = !res.ok && res.kind === 'refused' && fallsBackToConnect(res.errorCode);
      // A server that cannot confirm the resumed keys never gets this ticket again.
      if (fallBack || (!res.ok && res.code === 'LK_SDK_CONFIRMATION_FAILED')) this.tickets!.forget();
      if (!fallBack || this.hooks.closed()) return res;
    }
    const hello = await this.connectHello(target);
    return 'keys' in hello ? this.handshake(target, profile, hello) : hello;
  }

  /**
   * After REFUSE_NO_AUTH (the server does not know the key): true when the CONNECT omitted a key
   * the server once accepted, so the next one sends it again; false when there is nothing to retry.
   */
  resendKey(): boolean {
    if (!this.keyAccepted) return false;
    this.keyAccepted = false;
    return true;
  }

  private async connectHello(target: Target): Promise<Hello | ConnectResult> {
    const o = this.opts;
    try {
      return await prepareConnect({ appToken: o.appToken, serverKey: target.serverKey, keys: o.keys, sendPublicKey: o.sendPublicKey === 'always' || !this.keyAccepted, timestamp: (o.now ?? Date.now)(), keepAliveSec: o.keepAliveSec ?? 0 }, this.c);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      return { ok: false, kind: 'failed', code: 'LK_SDK_BAD_KEY', detail: err.message, retryable: false };
    }
  }

  /** Send `hello` (with the first SyncRequest sealed into it) on a new socket and wait for CONNACK. */
  private async handshake(target: Target, profile: Uint8Array | null, hello: Hello): Promise<ConnectResult> {
    const o = this.opts;
    const keys = hello.keys;
    const first = this.hooks.firstRequest(profile);
    const sync = first ? await keys.tx.seal(0, wire.syncRequest.toBuffer(first)) : null;
    const frame = hello.frame(sync);

    let Ctor: WebSocketCtor;
    try {
      Ctor = o.WebSocket ?? (await defaultWebSocket());
    } catch (err) {
      return { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: false };
    }
    if (this.hooks.closed()) return { ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while connecting', retryable: false };
    let ws: WebSocket;
    try {
      ws = new Ctor(endpointUrl(target.url), SUBPROTOCOL);
    } catch (err) {
      return { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true };
    }
    ws.binaryType = 'arraybuffer';
    this.hooks.socket(ws);

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
          this.hooks.socket(null);
        }
        resolve(r);
      };
      ws.onopen = () => ws.send(frame);
      ws.onerror = () => undefined;
      ws.onclose = (ev) => {
        const retryAfterMs = pacedRetryAfterMs(ev.code, ev.reason);
        finish({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: `closed ${ev.code} ${ev.reason}`, retryable: true, ...(retryAfterMs !== null ? { retryAfterMs } : {}) }, false);
      };
      ws.onmessage = (ev) => {
        const data = new Uint8Array(ev.data as ArrayBuffer);
        if (data[0] === FRAME.CONNACK) {
          // Frames that follow CONNACK while its confirmation is checked wait for the client.
          const early: Uint8Array[] = [];
          ws.onmessage = (e2) => early.push(new Uint8Array(e2.data as ArrayBuffer));
          void this.onConnack(data, hello, ws, first !== null).then((r) => {
            // Timed out or closed while the confirmation was checked: this session never opens.
            if (settled) return this.hooks.abandoned(ws);
            if (r.ok && this.hooks.closed()) return finish({ ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while connecting', retryable: false }, true);
            finish(r, !r.ok);
            if (r.ok) this.hooks.opened(ws, early);
          });
        } else if (data[0] === FRAME.DISCONNECT) {
          const d = decodeDisconnect(data);
          finish({ ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: `DISCONNECT ${d?.errorCode ?? ''}`, retryable: false }, true);
        } else {
          finish({ ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: `frame 0x${data[0]?.toString(16)} before CONNACK`, retryable: false }, true);
        }
      };
    });
  }

  /** `sentSync`: the hello carried a SyncRequest (sealed under tx counter 0). */
  private async onConnack(data: Uint8Array, hello: Hello, ws: WebSocket, sentSync: boolean): Promise<ConnectResult> {
    const keys = hello.keys;
    let ack: Connack;
    try {
      ack = wire.connack.fromBuffer(data.subarray(1));
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
    if (hello.sentKey) this.keyAccepted = true;
    this.hooks.confirmed({ ws, keys, hello, ack, txCounter: sentSync ? 1 : 0, rxCounter: ack.sync ? 1 : 0 });
    let sync: SyncResponse | null = null;
    if (ack.sync) {
      const plain = await keys.rx.open(0, ack.sync);
      if (!plain) return { ok: false, kind: 'failed', code: 'LK_SDK_PROTOCOL_ERROR', detail: 'CONNACK sync does not authenticate', retryable: false };
      sync = wire.syncResponse.fromBuffer(plain);
    }
    return { ok: true, sessionId: ack.sessionId ?? '', keepAliveSec: ack.keepAliveSec, sync, resumed: hello.resumed };
  }
}
