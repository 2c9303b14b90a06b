/**
 * Handshake transcript, key schedule and key confirmation: the exact byte recipes of
 * docs/protocol.md sections "Transcript" and "Key schedule". Shared by the crypto worker (server),
 * the worked-example test and the protocol document; the SDK implements the same recipes with
 * WebCrypto (src/sdk/crypto.ts).
 */
import crypto from 'node:crypto';
import * as C from '../protocol/constants.js';

export { PROTOCOL_VERSION } from '../protocol/constants.js';
/** Prefix of the signed CONNECT transcript (ASCII, 19 bytes, NUL-terminated). */
export const CONNECT_CONTEXT = Buffer.from(C.CONNECT_CONTEXT, 'latin1');
export const KDF_INFO = Buffer.from(C.KDF_INFO, 'latin1');
export const CONFIRM_LABEL = Buffer.from(C.CONFIRM_LABEL, 'latin1');
export const SESSION_SECRET_BYTES = 64;
export const PSS_SALT_BYTES = 32;

/** Bytes the endpoint signs: CONNECT_CONTEXT || Avro(ConnectBody). */
export function signatureInput(bodyBytes: Uint8Array): Buffer {
  return Buffer.concat([CONNECT_CONTEXT, bodyBytes]);
}

/** Prefix of the RESUME transcript (ASCII, 18 bytes, NUL-terminated); docs/protocol.md 4.6. */
export const RESUME_CONTEXT = Buffer.from(C.RESUME_CONTEXT, 'latin1');

export interface SessionKeys {
  /** AES-256-GCM key, endpoint -> server. */
  c2s: Buffer;
  /** AES-256-GCM key, server -> endpoint. */
  s2c: Buffer;
  /** HMAC-SHA-256 value carried in CONNACK: proof the server decrypted the secret (or opened the ticket). */
  confirmation: Buffer;
  /** The secret a ticket of this session carries: the next session resumes with it (4.6). */
  resumption: Buffer;
}

/**
 * transcriptHash = SHA-256(transcript); OKM = HKDF-SHA-256(ikm, salt = transcriptHash, info =
 * KDF_INFO, L = 128); c2s = OKM[0..32), s2c = OKM[32..64), confirmKey = OKM[64..96),
 * resumptionSecret = OKM[96..128); confirmation = HMAC-SHA-256(confirmKey, CONFIRM_LABEL ||
 * transcriptHash). For a full handshake ikm is the 64-byte session secret and the transcript the
 * signatureInput; for a resumed one ikm is the ticket's resumption secret and the transcript the
 * resumeInput. HKDF's output is a prefix stream: OKM[0..96) is the same as with L = 96, so the
 * resumption secret changes nothing for endpoints that never resume.
 */
export function deriveSessionKeys(ikm: Uint8Array, transcript: Uint8Array): SessionKeys {
  const th = crypto.createHash('sha256').update(transcript).digest();
  const okm = hkdfSha256(ikm, th, KDF_INFO, 128);
  const confirmation = crypto.createHmac('sha256', okm.subarray(64, 96)).update(CONFIRM_LABEL).update(th).digest();
  return { c2s: okm.subarray(0, 32), s2c: okm.subarray(32, 64), confirmation, resumption: okm.subarray(96, 128) };
}

/** Bytes a RESUME proves: RESUME_CONTEXT || Avro(ResumeBody). */
export function resumeInput(bodyBytes: Uint8Array): Buffer {
  return Buffer.concat([RESUME_CONTEXT, bodyBytes]);
}

/** proof = HMAC-SHA-256(resumptionSecret, resumeInput): possession of the previous session's secret. */
export function resumeProof(resumptionSecret: Uint8Array, input: Uint8Array): Buffer {
  return crypto.createHmac('sha256', resumptionSecret).update(input).digest();
}

/**
 * HKDF-SHA-256 (RFC 5869). Kept as a function so the worked example and tests name one recipe;
 * crypto.hkdfSync and an HMAC-based version cost the same (~14 µs for 96 bytes, bench/micro
 * case hkdf), so the native call stays.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, info, length));
}

export const RSA_OAEP = { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;
export const RSA_PSS = { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES } as const;
