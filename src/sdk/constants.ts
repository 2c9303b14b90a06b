/** Protocol constants as bytes, without Node's Buffer (browser-safe). Mirrors src/crypto/session-crypto.ts. */
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

export const PROTOCOL_VERSION = 1;
export const CONNECT_CONTEXT_BYTES = ascii('latchkey/1 CONNECT\0');
export const KDF_INFO_BYTES = ascii('latchkey/1 session keys');
export const CONFIRM = ascii('latchkey/1 CONNACK');
export const SUBPROTOCOL = 'latchkey.v1';
export const ENDPOINT_PATH = '/ep/v1';
