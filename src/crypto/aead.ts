/**
 * Frame encryption: AES-256-GCM, one key per direction, counter nonces. Every SYNC frame and the
 * SyncRequest/SyncResponse embedded in CONNECT/CONNACK go through this interface.
 *
 * nonce (12 bytes) = 0x00000000 || counter as unsigned 64-bit big-endian
 * aad   (9 bytes)  = 0x0F || counter as unsigned 64-bit big-endian
 * sealed           = ciphertext || 16-byte tag
 *
 * Two implementations of the same standard AES-256-GCM (they interoperate with each other and with
 * the SDK's WebCrypto): `WasmGcmCipher` (the default: AES from a persistent node:crypto AES-ECB
 * context, keystream computed ahead for upcoming counters, GHASH and XOR in the constant-time
 * WebAssembly kernel wasm/src/ghash.c) and `NodeGcmCipher` (one node:crypto GCM call per frame; the
 * fallback when the kernel cannot load). bench/micro, case aead, compares them.
 *
 * This file: the contract (format, FrameCipher) and NodeGcmCipher. aead-wasm.ts: WasmGcmCipher, its
 * idle sweeper and the kernel's known-answer check. frame-cipher.ts: which of the two a session
 * gets. key-slots.ts: frame keys at rest until a session first needs its ciphers.
 */
import crypto from 'node:crypto';

export const TAG_BYTES = 16;
export const FRAME_TYPE_SYNC = 0x0f;

export interface FrameCipher {
  /** Encrypt `plaintext` under `counter`; returns ciphertext || tag. */
  seal(counter: number, plaintext: Uint8Array): Buffer;
  /** Decrypt; null when the frame does not authenticate (tampered, wrong key or counter). */
  open(counter: number, sealed: Uint8Array): Buffer | null;
}

/** A frame counter is a safe non-negative integer (RangeError otherwise). */
export function checkCounter(counter: number): void {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('counter out of range');
}

/** Write the frame nonce and AAD of `counter` (the format above) into `nonce` (12 bytes) and `aad` (9 bytes). */
function nonceAndAad(counter: number, nonce: Buffer, aad: Buffer): void {
  checkCounter(counter);
  nonce.writeUInt32BE(0, 0);
  nonce.writeBigUInt64BE(BigInt(counter), 4);
  aad[0] = FRAME_TYPE_SYNC;
  nonce.copy(aad, 1, 4, 12);
}

/** node:crypto AES-256-GCM: one createCipheriv/createDecipheriv per frame (~5-9 µs per call, almost all fixed overhead; bench/micro, case aead). */
export class NodeGcmCipher implements FrameCipher {
  private readonly key: crypto.KeyObject;
  private readonly nonce = Buffer.alloc(12);
  private readonly aad = Buffer.alloc(9);
  constructor(key: Uint8Array | crypto.KeyObject) {
    if (key instanceof crypto.KeyObject) {
      if (key.type !== 'secret' || key.symmetricKeySize !== 32) throw new RangeError('AES-256-GCM needs a 32-byte key');
      this.key = key;
      return;
    }
    if (key.byteLength !== 32) throw new RangeError('AES-256-GCM needs a 32-byte key');
    this.key = crypto.createSecretKey(key);
  }
  seal(counter: number, plaintext: Uint8Array): Buffer {
    nonceAndAad(counter, this.nonce, this.aad);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, this.nonce);
    c.setAAD(this.aad);
    const head = c.update(plaintext);
    const tail = c.final();
    return Buffer.concat([head, tail, c.getAuthTag()]);
  }
  open(counter: number, sealed: Uint8Array): Buffer | null {
    if (sealed.byteLength < TAG_BYTES) return null;
    nonceAndAad(counter, this.nonce, this.aad);
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, this.nonce);
    d.setAAD(this.aad);
    d.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES));
    try {
      const head = d.update(sealed.subarray(0, sealed.byteLength - TAG_BYTES));
      const tail = d.final();
      return tail.length ? Buffer.concat([head, tail]) : head;
    } catch {
      return null;
    }
  }
}
