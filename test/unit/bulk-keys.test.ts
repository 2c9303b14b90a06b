import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkKey, bulkKeys, ensurePrimePool, keysForPrimes, loadPrimePool, pairOf, primesForKeys, type PrimePool } from '../../bench/lib/bulk-keys.js';
import { keyHashId, parseEndpointPublicKey } from '../../src/crypto/keys.js';
import { RSA_OAEP, RSA_PSS } from '../../src/crypto/session-crypto.js';
import type { NodeEndpointKey } from '../helpers/wire-client.js';

const PRIMES = 12; // 66 keys
const quiet = { write: (): boolean => true };

let dir: string;
let file: string;
let pool: PrimePool;
let keys: NodeEndpointKey[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulk-keys-'));
  file = path.join(dir, 'primes.bin');
  pool = await ensurePrimePool(PRIMES, 'test', { file, out: quiet });
  keys = Array.from({ length: pool.capacity }, (_, i) => bulkKey(pool, i));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bulk bench keys', () => {
  it('numbers pairs by their larger index, one key per pair, stable as the pool grows', () => {
    const seen = new Set<string>();
    for (let k = 0; k < keysForPrimes(40); k++) {
      const [i, j] = pairOf(k);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(j);
      expect(k < keysForPrimes(j + 1) && k >= keysForPrimes(j)).toBe(true);
      seen.add(`${i},${j}`);
    }
    expect(seen.size).toBe(keysForPrimes(40));
    expect(pairOf(249_999)[1]).toBeLessThan(primesForKeys(250_000));
    expect(primesForKeys(250_000)).toBe(708);
    expect(primesForKeys(66)).toBe(12);
    expect(primesForKeys(67)).toBe(13);
  });

  it('gives valid 2048-bit keys: PSS sign/verify as in the handshake and OAEP round-trip', () => {
    for (const k of [keys[0]!, keys[31]!, keys[keys.length - 1]!]) {
      expect(k.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(k.privateKey.asymmetricKeyDetails?.publicExponent).toBe(65537n);
      const pub = parseEndpointPublicKey(k.spki); // the server's parser: checks RSA-2048 too
      expect(keyHashId(k.spki)).toBe(k.keyHash);
      const msg = crypto.randomBytes(100);
      const sig = crypto.sign('sha256', msg, { key: k.privateKey, ...RSA_PSS });
      expect(crypto.verify('sha256', msg, { key: pub, ...RSA_PSS }, sig)).toBe(true);
      const secret = crypto.randomBytes(64);
      const wrapped = crypto.publicEncrypt({ key: pub, ...RSA_OAEP }, secret);
      expect(crypto.privateDecrypt({ key: k.privateKey, ...RSA_OAEP }, wrapped).equals(secret)).toBe(true);
      // The PEM a bench child process receives parses back to the same key.
      const again = crypto.createPrivateKey(k.privateKeyPem);
      expect(crypto.verify('sha256', msg, k.publicKeyPem, crypto.sign('sha256', msg, again))).toBe(true);
    }
  });

  it('carries consistent CRT values (OpenSSL would hide wrong ones behind a slow non-CRT retry)', () => {
    // OpenSSL checks each CRT result and silently redoes it with d when it is wrong, so sign/verify
    // passes even with a bad qi; the bench's signing cost would not. Check the arithmetic instead.
    const big = (s: string | undefined): bigint => BigInt(`0x${Buffer.from(s!, 'base64url').toString('hex')}`);
    for (const k of keys) {
      const j = k.privateKey.export({ format: 'jwk' });
      const [n, e, d, p, q, dp, dq, qi] = [j.n, j.e, j.d, j.p, j.q, j.dp, j.dq, j.qi].map(big) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
      expect(p * q).toBe(n);
      expect(n >> 2047n).toBe(1n);
      expect(e).toBe(65537n);
      expect((e * d) % ((p - 1n) * (q - 1n))).toBe(1n);
      expect((e * dp) % (p - 1n)).toBe(1n);
      expect((e * dq) % (q - 1n)).toBe(1n);
      expect((qi * q) % p).toBe(1n);
      expect(qi < p && dp < p && dq < q).toBe(true);
    }
  });

  it('gives distinct keys and moduli for every pair', () => {
    expect(keys).toHaveLength(keysForPrimes(PRIMES));
    expect(new Set(keys.map((k) => k.keyHash)).size).toBe(keys.length);
    expect(new Set(keys.map((k) => k.privateKey.export({ format: 'jwk' }).n)).size).toBe(keys.length);
  });

  it('derives key i identically from the cache, in another slice, and from a grown pool', async () => {
    const stat = fs.statSync(file);
    expect(stat.size).toBe(PRIMES * 128);
    expect(stat.mode & 0o777).toBe(0o600);
    const reloaded = loadPrimePool(PRIMES, { file });
    expect(reloaded.primes).toEqual(pool.primes);
    expect(bulkKey(reloaded, 17).privateKeyPem).toBe(keys[17]!.privateKeyPem);
    const slice = await bulkKeys(40, 45, 'test', { file, out: quiet });
    expect(slice.map((k) => k.keyHash)).toEqual(keys.slice(40, 45).map((k) => k.keyHash));
    expect(fs.statSync(file).mtimeMs).toBe(stat.mtimeMs); // a cache hit writes nothing

    const grown = await ensurePrimePool(PRIMES + 2, 'test', { file, out: quiet });
    expect(grown.primes.slice(0, PRIMES)).toEqual(pool.primes);
    expect(bulkKey(grown, pool.capacity - 1).keyHash).toBe(keys[pool.capacity - 1]!.keyHash);
    expect(bulkKey(grown, grown.capacity - 1).privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(() => bulkKey(pool, pool.capacity)).toThrow(RangeError);
    expect(() => loadPrimePool(PRIMES + 3, { file })).toThrow(/holds 14 primes/);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });

  it('refuses a damaged cache instead of renumbering keys', () => {
    const bad = path.join(dir, 'bad.bin');
    fs.writeFileSync(bad, fs.readFileSync(file).subarray(0, 200));
    expect(() => loadPrimePool(1, { file: bad })).toThrow(/not a multiple of 128/);
    const twice = fs.readFileSync(file).subarray(0, 128);
    fs.writeFileSync(bad, Buffer.concat([twice, twice]));
    expect(() => loadPrimePool(1, { file: bad })).toThrow(/duplicate/);
  });
});
