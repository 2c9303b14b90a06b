/**
 * The few frames the client builds or reads itself, outside the handshake (hello.ts builds CONNECT
 * and RESUME, resumption.ts TICKETREQ and TICKET): PINGREQ, DISCONNECT, SYNC (docs/protocol.md
 * section 2). Type bytes from constants.ts, bodies from the wire codecs.
 */
import wire from './wire.js';
import { FRAME } from './constants.js';
import { concat } from './crypto.js';

export const PINGREQ_FRAME = new Uint8Array([FRAME.PINGREQ]);

export interface DisconnectBody {
  reason: number;
  errorCode: string | null;
}

/** DISCONNECT with reason NONE: what the client sends before a close it chose (close(), a redirect). */
export function goodbyeFrame(): Uint8Array {
  return concat(new Uint8Array([FRAME.DISCONNECT]), wire.disconnect.toBuffer({ reason: 0, errorCode: null }));
}

/** The body of a DISCONNECT frame (type byte included), or null if it does not decode. */
export function decodeDisconnect(data: Uint8Array): DisconnectBody | null {
  try {
    return wire.disconnect.fromBuffer(data.subarray(1)) as DisconnectBody;
  } catch {
    return null;
  }
}

export function syncFrame(counter: number, ciphertext: Uint8Array): Uint8Array {
  return concat(new Uint8Array([FRAME.SYNC]), wire.sync.toBuffer({ counter, ciphertext }));
}

/** Sends DISCONNECT (if the socket is open) and closes with 1000; throws if the socket refuses either. */
export function sayGoodbye(ws: WebSocket): void {
  if (ws.readyState === 1) ws.send(goodbyeFrame());
  ws.close(1000);
}
