/**
 * The two halves of a bulk bench key (bench/lib/bulk-keys.ts) that bench/sessions needs apart:
 *
 * - the coordinator provisions N credentials and needs only each key's SPKI and key hash. Built by
 *   hand from n = p * q (~10 µs a key: one 1024 x 1024-bit multiply, a fixed DER template and a
 *   SHA-256), instead of deriving the whole private key (~180 µs) only to throw it away;
 * - a load generator signs CONNECTs and needs only the private KeyObject and the key hash.
 *
 * `bulkSpki(pool, i)` is byte for byte `bulkKey(pool, i).spki` (bench/sessions checks one key of
 * every run against it before provisioning).
 */
import crypto from 'node:crypto';
import { bulkKeyJwk, pairOf, type PrimePool } from './bulk-keys.js';

/**
 * SubjectPublicKeyInfo DER of an RSA key with a 2048-bit modulus (top bit set: one leading zero
 * byte in the INTEGER) and e = 65537: 294 bytes.
 *   30 82 01 22  30 0d 06 09 2a864886f70d010101 05 00  03 82 01 0f 00
 *     30 82 01 0a  02 82 01 01 00 <n: 256 bytes>  02 03 010001
 */
const SPKI_HEAD = Buffer.from('30820122300d06092a864886f70d01010105000382010f003082010a0282010100', 'hex');
const SPKI_TAIL = Buffer.from('0203010001', 'hex');

export function bulkSpki(pool: PrimePool, index: number): Buffer {
  if (index >= pool.capacity) throw new RangeError(`key ${index} is beyond the pool's ${pool.capacity} keys`);
  const [i, j] = pairOf(index);
  const n = pool.primes[j]! * pool.primes[i]!;
  const hex = n.toString(16);
  if (hex.length !== 512 || Number.parseInt(hex[0]!, 16) < 8) throw new Error(`key ${index}: modulus is not 2048 bits`);
  return Buffer.concat([SPKI_HEAD, Buffer.from(hex, 'hex'), SPKI_TAIL]);
}

export function keyHashOf(spki: Buffer): Buffer {
  return crypto.createHash('sha256').update(spki).digest();
}

/** The private key of bulk key `index` (what a generator signs with). */
export function bulkPrivateKey(pool: PrimePool, index: number): crypto.KeyObject {
  return crypto.createPrivateKey({ key: bulkKeyJwk(pool, index), format: 'jwk' });
}
