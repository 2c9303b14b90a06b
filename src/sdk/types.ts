/**
 * The endpoint client's public option and result types (exported by client.ts and the SDK's entry),
 * and the CONNACK and DISCONNECT code names they carry. Types and tables only: every module of the
 * client takes them from here, and none of them imports the client.
 */
import type { SyncResponse } from '../protocol/wire-schemas.js';
import type { BootstrapOptions } from './bootstrap.js';
import type { EndpointKeys, WebCrypto } from './crypto.js';
import type { ClientErrorCode } from './errors.js';
import type { WebSocketCtor } from './websocket.js';

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
export const DISCONNECT_REASONS: Record<number, DisconnectReasonName> = { 0: 'NONE', 1: 'BAD_REQUEST', 2: 'INTERNAL_ERROR', 3: 'CREDENTIALS_REVOKED' };

export type ConnectResult =
  /** `resumed`: opened with RESUME from a ticket (no RSA), not with a full CONNECT. */
  | { ok: true; sessionId: string; keepAliveSec: number; sync: SyncResponse | null; resumed: boolean }
  /** The server refused: `code` is the CONNACK return code, `errorCode` the catalogue code. */
  | { ok: false; kind: 'refused'; code: RefusalCode; errorCode: string | null; retryable: boolean }
  /**
   * The SDK could not complete the handshake. `retryAfterMs`: the server was busy and gave a return
   * time (a paced LK_SERVER_BUSY, docs/protocol.md 1.1); automatic reconnect waits that long instead
   * of its backoff delay.
   */
  | { ok: false; kind: 'failed'; code: ClientErrorCode; detail: string; retryable: boolean; bootstrapCode?: string; retryAfterMs?: number };

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

/** Where one session goes: the configured gateway, or the access point being tried (bootstrap mode). */
export interface Target {
  url: string;
  serverKey: { id: string; spki: Uint8Array | string };
}
