/**
 * Endpoint and server key handling on the main thread: key hashes, cheap public-key parsing,
 * PEM/DER conversion.
 *
 * Parsing cost matters (DESIGN.md section 6, measured on Node 20): createPublicKey of an SPKI DER
 * costs ~110 µs because OpenSSL 3 tries many decoders, while the RSAPublicKey inside the SPKI bit
 * string parsed with `type: 'pkcs1'` costs ~3 µs. So we unwrap the SPKI ourselves (a few fixed DER
 * headers) and hand OpenSSL the PKCS#1 body. bench/micro (case keyparse) measures both: ~136 vs ~6 µs here.
 */
import crypto from 'node:crypto';
import { LatchkeyError } from '../errors.js';

/** DER of AlgorithmIdentifier { rsaEncryption, NULL }. */
const RSA_ALG_ID = Buffer.from('300d06092a864886f70d0101010500', 'hex');

export const RSA_MODULUS_BITS = 2048;

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function base64url(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('base64url');
}

/** Key hash of an endpoint key: SHA-256 over the SubjectPublicKeyInfo DER (raw 32 bytes). */
export function keyHashRaw(spkiDer: Uint8Array): Buffer {
  return sha256(spkiDer);
}

/** Key hash as the endpoint id / credentials id: base64url, no padding (43 characters). */
export function keyHashId(spkiDer: Uint8Array): string {
  return base64url(keyHashRaw(spkiDer));
}

const KEY_HASH_ID = /^[A-Za-z0-9_-]{43}$/;
export function isKeyHashId(s: string): boolean {
  return KEY_HASH_ID.test(s);
}

/** Read one DER TLV header at `pos`; returns [contentStart, contentEnd] or throws. */
function tlv(der: Uint8Array, pos: number, tag: number): [number, number] {
  if (pos + 2 > der.length || der[pos] !== tag) throw new Error('unexpected DER tag');
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || start + n > der.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error('DER length beyond input');
  return [start, end];
}

/**
 * Extract the PKCS#1 RSAPublicKey from an RSA SubjectPublicKeyInfo DER without OpenSSL's decoder
 * search. Throws LatchkeyError LK_HS_BAD_PUBLIC_KEY for anything else.
 */
export function spkiToPkcs1(spkiDer: Uint8Array): Buffer {
  try {
    const [seqStart, seqEnd] = tlv(spkiDer, 0, 0x30);
    if (seqEnd !== spkiDer.length) throw new Error('trailing bytes');
    const alg = spkiDer.subarray(seqStart, seqStart + RSA_ALG_ID.length);
    if (!Buffer.from(alg).equals(RSA_ALG_ID)) throw new Error('not rsaEncryption');
    const [bitStart, bitEnd] = tlv(spkiDer, seqStart + RSA_ALG_ID.length, 0x03);
    if (bitEnd !== seqEnd || spkiDer[bitStart] !== 0) throw new Error('bad bit string');
    return Buffer.from(spkiDer.subarray(bitStart + 1, bitEnd));
  } catch (err) {
    throw new LatchkeyError('LK_HS_BAD_PUBLIC_KEY', (err as Error).message);
  }
}

/** Parse an endpoint public key (SPKI DER) the cheap way and check it is RSA-2048. */
export function parseEndpointPublicKey(spkiDer: Uint8Array): crypto.KeyObject {
  const pkcs1 = spkiToPkcs1(spkiDer);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: pkcs1, format: 'der', type: 'pkcs1' });
  } catch (err) {
    throw new LatchkeyError('LK_HS_BAD_PUBLIC_KEY', (err as Error).message);
  }
  if (key.asymmetricKeyDetails?.modulusLength !== RSA_MODULUS_BITS) {
    throw new LatchkeyError('LK_HS_BAD_PUBLIC_KEY', `modulus must be ${RSA_MODULUS_BITS} bits`);
  }
  return key;
}

/**
 * Accept a public key as PEM (SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY"), or DER SPKI, and return
 * the canonical SPKI DER. Used by provisioning (CLI, seed file, admin API). LK_BAD_PUBLIC_KEY if it
 * is not an RSA-2048 public key.
 */
export function toSpkiDer(input: string | Uint8Array): Buffer {
  try {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
    const key = text.includes('-----BEGIN')
      ? crypto.createPublicKey(text)
      : crypto.createPublicKey({ key: Buffer.from(input as Uint8Array), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'rsa' || key.asymmetricKeyDetails?.modulusLength !== RSA_MODULUS_BITS) {
      throw new Error(`expected an RSA-${RSA_MODULUS_BITS} key`);
    }
    return key.export({ format: 'der', type: 'spki' });
  } catch (err) {
    throw new LatchkeyError('LK_BAD_PUBLIC_KEY', (err as Error).message);
  }
}

export interface PemKeyPair {
  publicKeyPem: string;
  privateKeyPem: string;
  spkiDer: Buffer;
  keyHash: string;
}

/** Generate an RSA-2048 key pair as PEM (SPKI public, PKCS#8 private). */
export async function generateRsaKeyPair(): Promise<PemKeyPair> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: crypto.KeyObject; privateKey: crypto.KeyObject }>((resolve, reject) =>
    crypto.generateKeyPair('rsa', { modulusLength: RSA_MODULUS_BITS, publicExponent: 0x10001 }, (err, pub, priv) =>
      err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }),
    ),
  );
  const spkiDer = publicKey.export({ format: 'der', type: 'spki' });
  return {
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    spkiDer,
    keyHash: keyHashId(spkiDer),
  };
}
