/** Protocol constants as bytes, without Node's Buffer (browser-safe). Mirrors src/crypto/session-crypto.ts. */
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

export const PROTOCOL_VERSION = 1;
export const CONNECT_CONTEXT_BYTES = ascii('latchkey/1 CONNECT\0');
/** Prefix of the RESUME transcript, 18 bytes (docs/protocol.md 4.6). */
export const RESUME_CONTEXT_BYTES = ascii('latchkey/1 RESUME\0');
export const KDF_INFO_BYTES = ascii('latchkey/1 session keys');
export const CONFIRM = ascii('latchkey/1 CONNACK');
export const SUBPROTOCOL = 'latchkey.v1';
export const ENDPOINT_PATH = '/ep/v1';

/** Frame type bytes (docs/protocol.md section 2), the ones the SDK sends or reads. */
export const FRAME = {
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
