/**
 * The handshake and frame recipes of docs/protocol.md written against the WebCrypto API only, so
 * the SDK runs unchanged in browsers and in Node (globalThis.crypto). No node:crypto here.
 */
import { CONFIRM, CONNECT_CONTEXT_BYTES, KDF_INFO_BYTES, RESUME_CONTEXT_BYTES } from './constants.js';
import { ClientError } from './errors.js';

export type WebCrypto = Crypto;

/** WebCrypto's typings want ArrayBuffer-backed views; nothing here uses SharedArrayBuffer. */
function bs(x: Uint8Array): BufferSource {
  return x as Uint8Array<ArrayBuffer>;
}

function u8(b: ArrayBuffer | Uint8Array): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

export function toBase64url(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The DER inside a PEM block labelled `label` (RFC 7468: text around the block, such as a comment
 * line, is ignored). Anything else is a ClientError LK_SDK_BAD_KEY saying what was expected: the
 * browser's atob() would otherwise fail with a bare InvalidCharacterError.
 */
export function pemToDer(pem: string, label: 'PUBLIC KEY' | 'PRIVATE KEY' = 'PUBLIC KEY'): Uint8Array {
  const what = label === 'PUBLIC KEY' ? 'a PEM public key (SPKI, -----BEGIN PUBLIC KEY-----)' : 'a PEM private key (PKCS#8, -----BEGIN PRIVATE KEY-----)';
  const m = typeof pem === 'string' ? PEM.exec(pem) : null;
  if (!m) throw new ClientError('LK_SDK_BAD_KEY', `not ${what}`);
  if (m[1] !== label) throw new ClientError('LK_SDK_BAD_KEY', `not ${what}: the PEM block is ${m[1]}`);
  const b64 = m[2]!.replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) throw new ClientError('LK_SDK_BAD_KEY', `not ${what}: the block is not base64`);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A public key given as PEM or as SPKI DER, as DER; a string that is not PEM is LK_SDK_BAD_KEY. */
export function spkiOf(key: Uint8Array | string): Uint8Array {
  return typeof key === 'string' ? pemToDer(key, 'PUBLIC KEY') : key;
}

export function derToPem(der: Uint8Array, label: string): string {
  let s = '';
  for (const x of der) s += String.fromCharCode(x);
  const b64 = btoa(s).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface EndpointKeys {
  /** RSA-PSS SHA-256 signing key. */
  privateKey: CryptoKey;
  /** SubjectPublicKeyInfo DER of the public key. */
  spki: Uint8Array;
  /** SHA-256 of the SPKI DER (32 bytes). */
  keyHashRaw: Uint8Array;
  /** The same as base64url: the endpoint id and credentials id. */
  keyHash: string;
}

const PSS = { name: 'RSA-PSS', hash: 'SHA-256' } as const;

async function finishKeys(c: WebCrypto, privateKey: CryptoKey, spki: Uint8Array): Promise<EndpointKeys> {
  const keyHashRaw = u8(await c.subtle.digest('SHA-256', bs(spki)));
  return { privateKey, spki, keyHashRaw, keyHash: toBase64url(keyHashRaw) };
}

/** Generate an RSA-2048 endpoint key pair (extractable so it can be saved). */
export async function generateEndpointKeys(c: WebCrypto = globalThis.crypto): Promise<EndpointKeys> {
  const pair = await c.subtle.generateKey({ ...PSS, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify']);
  const spki = u8(await c.subtle.exportKey('spki', pair.publicKey));
  return finishKeys(c, pair.privateKey, spki);
}

/** Load keys from PEM: PKCS#8 private key and SPKI public key (what `latchkey keygen endpoint` writes). */
export async function loadEndpointKeys(privateKeyPem: string, publicKeyPem: string, c: WebCrypto = globalThis.crypto): Promise<EndpointKeys> {
  const pkcs8 = pemToDer(privateKeyPem, 'PRIVATE KEY');
  const spki = pemToDer(publicKeyPem, 'PUBLIC KEY');
  const privateKey = await importOr('not an RSA private key the SDK can import (PKCS#8)', () => c.subtle.importKey('pkcs8', bs(pkcs8), PSS, true, ['sign']));
  return finishKeys(c, privateKey, spki);
}

export async function exportEndpointKeys(keys: EndpointKeys, c: WebCrypto = globalThis.crypto): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const pkcs8 = u8(await c.subtle.exportKey('pkcs8', keys.privateKey));
  return { privateKeyPem: derToPem(pkcs8, 'PRIVATE KEY'), publicKeyPem: derToPem(keys.spki, 'PUBLIC KEY') };
}

/** WebCrypto's DataError on a key that does not parse, as LK_SDK_BAD_KEY. */
async function importOr(problem: string, run: () => Promise<CryptoKey>): Promise<CryptoKey> {
  try {
    return await run();
  } catch (err) {
    throw new ClientError('LK_SDK_BAD_KEY', `${problem}: ${(err as Error).name ?? String(err)}`);
  }
}

export async function importServerKey(spkiOrPem: Uint8Array | string, c: WebCrypto = globalThis.crypto): Promise<CryptoKey> {
  const der = spkiOf(spkiOrPem);
  return importOr('the server key is not an RSA SubjectPublicKeyInfo', () => c.subtle.importKey('spki', bs(der), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']));
}

/** The bootstrap public key, for checking list signatures (RSA-PSS SHA-256). */
export async function importBootstrapKey(spkiOrPem: Uint8Array | string, c: WebCrypto = globalThis.crypto): Promise<CryptoKey> {
  const der = spkiOf(spkiOrPem);
  return importOr('the bootstrap key is not an RSA SubjectPublicKeyInfo', () => c.subtle.importKey('spki', bs(der), PSS, false, ['verify']));
}

export async function wrapSecret(serverKey: CryptoKey, secret: Uint8Array, c: WebCrypto = globalThis.crypto): Promise<Uint8Array> {
  return u8(await c.subtle.encrypt({ name: 'RSA-OAEP' }, serverKey, bs(secret)));
}

export async function signConnect(keys: EndpointKeys, body: Uint8Array, c: WebCrypto = globalThis.crypto): Promise<Uint8Array> {
  return u8(await c.subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, keys.privateKey, bs(concat(CONNECT_CONTEXT_BYTES, body))));
}

/** AES-256-GCM with counter nonces, one instance per direction. */
export class WebFrameCipher {
  constructor(private readonly key: CryptoKey, private readonly c: WebCrypto) {}
  private params(counter: number): AesGcmParams {
    const iv = new Uint8Array(new ArrayBuffer(12));
    const aad = new Uint8Array(new ArrayBuffer(9));
    const view = new DataView(iv.buffer);
    view.setBigUint64(4, BigInt(counter));
    aad[0] = 0x0f;
    aad.set(iv.subarray(4), 1);
    return { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 };
  }
  async seal(counter: number, plaintext: Uint8Array): Promise<Uint8Array> {
    return u8(await this.c.subtle.encrypt(this.params(counter), this.key, bs(plaintext)));
  }
  async open(counter: number, sealed: Uint8Array): Promise<Uint8Array | null> {
    try {
      return u8(await this.c.subtle.decrypt(this.params(counter), this.key, bs(sealed)));
    } catch {
      return null;
    }
  }
}

export interface ClientSessionKeys {
  tx: WebFrameCipher;
  rx: WebFrameCipher;
  /** Resolves true when `confirmation` is HMAC(confirmKey, CONFIRM || transcriptHash). */
  checkConfirmation(confirmation: Uint8Array): Promise<boolean>;
  /** OKM[96..128): the secret this session's tickets resume with (docs/protocol.md 4.6). */
  resumptionSecret: Uint8Array;
}

/**
 * The key schedule of docs/protocol.md 4.3: transcriptHash = SHA-256(transcript), OKM =
 * HKDF-SHA-256(ikm, transcriptHash, "latchkey/1 session keys", L = 128); keyC2S, keyS2C,
 * confirmKey, resumptionSecret in that order. A full handshake's ikm is the 64-byte session secret
 * and its transcript the signatureInput; a resumed one's (4.6) the ticket's resumption secret and
 * the resumeInput.
 */
async function deriveKeys(ikm: Uint8Array, transcript: Uint8Array, c: WebCrypto): Promise<ClientSessionKeys> {
  const th = u8(await c.subtle.digest('SHA-256', bs(transcript)));
  const hkdf = await c.subtle.importKey('raw', bs(ikm), 'HKDF', false, ['deriveBits']);
  const okm = u8(await c.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: bs(th), info: bs(KDF_INFO_BYTES) }, hkdf, 128 * 8));
  const aes = (raw: Uint8Array): Promise<CryptoKey> => c.subtle.importKey('raw', bs(raw), { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  const confirmKey = await c.subtle.importKey('raw', bs(okm.slice(64, 96)), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const tx = new WebFrameCipher(await aes(okm.slice(0, 32)), c);
  const rx = new WebFrameCipher(await aes(okm.slice(32, 64)), c);
  const resumptionSecret = okm.slice(96, 128);
  okm.fill(0);
  return {
    tx,
    rx,
    resumptionSecret,
    checkConfirmation: (confirmation) => c.subtle.verify('HMAC', confirmKey, bs(confirmation), bs(concat(CONFIRM, th))),
  };
}

/** The keys of a full handshake (4.1, 4.3) from the session secret and the ConnectBody bytes. */
export function deriveClientKeys(secret: Uint8Array, body: Uint8Array, c: WebCrypto = globalThis.crypto): Promise<ClientSessionKeys> {
  return deriveKeys(secret, concat(CONNECT_CONTEXT_BYTES, body), c);
}

/** resumeInput = "latchkey/1 RESUME\0" || Avro(ResumeBody) (4.6 step 3). */
export function resumeInput(body: Uint8Array): Uint8Array {
  return concat(RESUME_CONTEXT_BYTES, body);
}

/** proof = HMAC-SHA-256(resumptionSecret, resumeInput) (4.6 step 4). */
export async function resumeProof(resumptionSecret: Uint8Array, body: Uint8Array, c: WebCrypto = globalThis.crypto): Promise<Uint8Array> {
  const key = await c.subtle.importKey('raw', bs(resumptionSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return u8(await c.subtle.sign('HMAC', key, bs(resumeInput(body))));
}

/** The keys of a resumed session (4.6 step 5): IKM = the ticket's resumption secret, transcript = resumeInput. */
export function deriveResumedKeys(resumptionSecret: Uint8Array, body: Uint8Array, c: WebCrypto = globalThis.crypto): Promise<ClientSessionKeys> {
  return deriveKeys(resumptionSecret, resumeInput(body), c);
}
