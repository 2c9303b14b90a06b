/**
 * The protocol's fixed facts, in one browser-safe module (no Node API): the server (frames.ts,
 * crypto/session-crypto.ts, transport/gateway.ts) and the SDK (sdk/constants.ts) both take them
 * from here. docs/protocol.md states them; its tests check the bytes they produce.
 */

export const PROTOCOL_VERSION = 1;

/** Frame type bytes (docs/protocol.md section 2): Kaa's Kaatcp numbers, then latchkey's resumption frames. */
export const FRAME_TYPE = {
  CONNECT: 0x01,
  CONNACK: 0x02,
  PINGREQ: 0x0c,
  PINGRESP: 0x0d,
  DISCONNECT: 0x0e,
  SYNC: 0x0f,
  RESUME: 0x10,
  TICKETREQ: 0x11,
  TICKET: 0x12,
} as const;

/** Prefix of the signed CONNECT transcript (ASCII, 19 bytes with the NUL). */
export const CONNECT_CONTEXT = 'latchkey/1 CONNECT\0';
/** Prefix of the RESUME transcript (ASCII, 18 bytes with the NUL; 4.6). */
export const RESUME_CONTEXT = 'latchkey/1 RESUME\0';
/** HKDF info of the key schedule (4.3). */
export const KDF_INFO = 'latchkey/1 session keys';
/** Label of the key confirmation (4.3). */
export const CONFIRM_LABEL = 'latchkey/1 CONNACK';

/** The endpoint WebSocket's path and subprotocol (section 1). */
export const ENDPOINT_PATH = '/ep/v1';
export const SUBPROTOCOL = 'latchkey.v1';
