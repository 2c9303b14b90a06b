/** Protocol constants as the SDK uses them: bytes without Node's Buffer (browser-safe), from src/protocol/constants.ts. */
import { CONFIRM_LABEL, CONNECT_CONTEXT, ENDPOINT_PATH, FRAME_TYPE, KDF_INFO, PROTOCOL_VERSION, RESUME_CONTEXT, SUBPROTOCOL } from '../protocol/constants.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

export { ENDPOINT_PATH, PROTOCOL_VERSION, SUBPROTOCOL };
export const CONNECT_CONTEXT_BYTES = ascii(CONNECT_CONTEXT);
/** Prefix of the RESUME transcript, 18 bytes (docs/protocol.md 4.6). */
export const RESUME_CONTEXT_BYTES = ascii(RESUME_CONTEXT);
export const KDF_INFO_BYTES = ascii(KDF_INFO);
export const CONFIRM = ascii(CONFIRM_LABEL);

/** Frame type bytes (docs/protocol.md section 2). */
export const FRAME = FRAME_TYPE;
