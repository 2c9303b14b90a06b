/**
 * Hundreds of thousands of distinct, valid RSA-2048 endpoint keys for bench load, cheaply. FOR
 * BENCHES ONLY: never use these keys for anything real.
 *
 * Why: node crypto takes ~50-100 ms per RSA-2048 key pair on the bench machine (bench/lib/keys.ts),
 * so 250,000 keys would take hours. Instead we generate a pool of P random 1024-bit primes and form
 * one key per unordered pair {p, q}: P primes give P(P-1)/2 moduli (708 primes -> 250,278 keys).
 * Every key is a real RSA key (sign/verify and OAEP round-trip, test/unit/bulk-keys.test.ts), and
 * distinct pairs of distinct primes give distinct moduli (unique factorisation), hence distinct key
 * hashes.
 *
 * Why only for benches: each prime sits in P - 1 moduli, so gcd(n1, n2) of any two keys that share
 * a prime factors both of them at once ("batch GCD", the attack that broke the shared-prime keys
 * found on the internet, Heninger et al. 2012). Anyone holding two public keys of this set can
 * compute every private key that uses either prime. The server cannot tell (each key is valid on
 * its own), which is exactly why it is fine for load and wrong for anything else.
 *
 * Choices:
 * - Every prime has its top two bits set (p >= 3 * 2^1022), so every product has
 *   2^2047 < 9 * 2^2044 <= n < 2^2048: exactly 2048 bits, no pair is skipped. OpenSSL's
 *   BN_generate_prime_ex already draws candidates with BN_RAND_TOP_TWO (all of 20 primes sampled
 *   on Node 20); a prime without them is rejected anyway, so the guarantee does not rest on an
 *   OpenSSL detail.
 * - Primes with p = 1 (mod 65537) are rejected (probability 1/65537), so gcd(e, (p-1)(q-1)) = 1 for
 *   every pair: with no pair skipped, key index -> pair is a pure function (`pairOf`) and every
 *   process derives the same key i from the same pool.
 * - Pairs are ordered by their larger index: key k uses primes (i, j) with j(j-1)/2 <= k <
 *   j(j+1)/2, i = k - j(j-1)/2. Growing the pool appends primes and never renumbers existing keys.
 * - d = e^-1 mod phi(n) rather than mod lcm(p-1, q-1): valid (e*d = 1 mod lambda, RFC 8017 3.2),
 *   and computed with one multiply and one divide (d = (k*phi + 1) / e for the small k that makes
 *   the division exact) instead of a 2048-bit extended Euclid. OpenSSL signs and decrypts with the
 *   CRT values dp, dq, qi anyway. qi = q^-1 mod p is the one 1024-bit extended Euclid per key and
 *   costs most of the derivation (~150 µs of ~180 µs). Wrong CRT values would not show in a
 *   sign/verify test: OpenSSL checks each CRT result and silently redoes it with d (1.9 ms instead
 *   of 0.27 ms per signature here), so the unit test checks the arithmetic itself.
 *
 * Measured (Intel Xeon, 2 cores, Node 20.20, load average ~2.8 from other jobs; `node
 * dist/bench/lib/bulk-keys.js --keys 250000` measures both):
 * - primes: 708 (250,278 keys) in 10.4 s, 4 generatePrime calls in flight on the libuv pool:
 *   14.7 ms of wall time per prime, ~30 ms of CPU (sampled alone: 26-44 ms per prime). A cache hit
 *   reads and checks the 708 primes in well under 0.1 s;
 * - per key: 177-181 µs (bigint maths ~155 of it, JWK encoding + createPrivateKey ~20, public key +
 *   SPKI export + key hash + both PEM exports ~30), so 250,000 keys take ~45 s of one core, which
 *   load generators split by deriving only their own slice.
 *
 * Cache: bench/.cache/bulk-primes.bin (gitignored, mode 0600): the primes only, 128 bytes each,
 * big-endian, in pool order, no header. Keys are not cached: deriving one (~180 µs) costs less than
 * parsing its PKCS#8 PEM (createPrivateKey: ~355 µs). The file is rewritten atomically (temporary
 * file + rename) every few seconds while generating, so an interrupted run keeps its primes. One
 * process generates at a time (bench/.cache/bulk-primes.lock, O_EXCL, holding its pid; a lock whose
 * pid is dead is taken over): others wait for it and read what it wrote, so concurrent load
 * generators share one pool.
 *
 * Use: a coordinator calls `ensurePrimePool(primesForKeys(total), label)` once; each load generator
 * calls `bulkKeys(from, to)` (or `loadPrimePool` + `bulkKey`) for its own slice.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { endpointKeyFrom, type NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { ROOT } from '../../test/helpers/root.js';
import { machineInfo, machineLine } from './machine.js';
import { sleep } from './run.js';

export const PRIME_BITS = 1024;
export const PRIME_BYTES = PRIME_BITS / 8;
export const BULK_PRIME_CACHE_FILE = path.join(ROOT, 'bench/.cache/bulk-primes.bin');

const E = 65537n;
/** 3 * 2^1022: the smallest 1024-bit number whose top two bits are set. */
const PRIME_FLOOR = 3n << BigInt(PRIME_BITS - 2);
/** generatePrime calls in flight: the default libuv pool has 4 threads; more only queue. */
const DEFAULT_CONCURRENCY = 4;
/** Save the cache at most this often while generating (ms). */
const SAVE_EVERY_MS = 5000;
/** How often a process waiting for another one's lock looks again (ms). */
const LOCK_POLL_MS = 250;
/** A lock file still empty after this long belongs to a process that died before writing its pid (ms). */
const STALE_EMPTY_LOCK_MS = 10_000;

export interface PrimePool {
  /** The primes, in cache order. */
  readonly primes: readonly bigint[];
  /** How many keys the pool gives: P(P-1)/2. Keys [0, capacity) are derivable. */
  readonly capacity: number;
}

export interface PoolOptions {
  /** Cache file (default BULK_PRIME_CACHE_FILE; the unit test uses a temporary one). */
  file?: string;
  /** generatePrime calls in flight (default 4). */
  concurrency?: number;
  /** Progress output (default process.stdout). */
  out?: { write(s: string): unknown };
}

/** Keys given by `primes` primes. */
export function keysForPrimes(primes: number): number {
  return (primes * (primes - 1)) / 2;
}

/** The smallest pool size that gives at least `keys` keys. */
export function primesForKeys(keys: number): number {
  if (!Number.isSafeInteger(keys) || keys < 0) throw new RangeError(`bad key count ${keys}`);
  if (keys === 0) return 0;
  let p = Math.ceil((1 + Math.sqrt(1 + 8 * keys)) / 2);
  while (p > 2 && keysForPrimes(p - 1) >= keys) p--;
  while (keysForPrimes(p) < keys) p++;
  return p;
}

/** Pool indices (i, j), i < j, of the primes of key `index` (see the header for the order). */
export function pairOf(index: number): [number, number] {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`bad key index ${index}`);
  let j = Math.floor((1 + Math.sqrt(1 + 8 * index)) / 2);
  while (keysForPrimes(j) > index) j--;
  while (keysForPrimes(j + 1) <= index) j++;
  return [index - keysForPrimes(j), j];
}

/** Why `p` may not join a pool, or null. Generated primes are already prime; this checks the rest. */
function unfitPrime(p: bigint): string | null {
  if (p < PRIME_FLOOR || p >> BigInt(PRIME_BITS) !== 0n) return 'top two bits not set';
  if ((p & 1n) === 0n) return 'even';
  if (p % E === 1n) return 'p = 1 mod 65537';
  return null;
}

function primeHex(p: bigint): string {
  return p.toString(16).padStart(PRIME_BYTES * 2, '0');
}

/** Every prime in `file` (none if it does not exist). Throws on a damaged file rather than renumbering keys. */
function readPrimes(file: string): bigint[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const damaged = (why: string): Error => new Error(`${file}: ${why}; delete it to generate a new pool`);
  if (buf.length % PRIME_BYTES !== 0) throw damaged(`length ${buf.length} is not a multiple of ${PRIME_BYTES}`);
  const primes: bigint[] = [];
  const seen = new Set<string>();
  for (let off = 0; off < buf.length; off += PRIME_BYTES) {
    const hex = buf.toString('hex', off, off + PRIME_BYTES);
    const p = BigInt(`0x${hex}`);
    const why = unfitPrime(p) ?? (seen.has(hex) ? 'duplicate' : null);
    if (why) throw damaged(`prime ${primes.length}: ${why}`);
    seen.add(hex);
    primes.push(p);
  }
  return primes;
}

function writePrimes(file: string, primes: readonly bigint[]): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.from(primes.map(primeHex).join(''), 'hex'), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function makePool(primes: readonly bigint[]): PrimePool {
  return { primes, capacity: keysForPrimes(primes.length) };
}

/**
 * The first `count` primes of the cache, without generating. Throws if fewer are cached: a load
 * generator must not grow the pool on its own (see ensurePrimePool for the one that does).
 */
export function loadPrimePool(count: number, options: Pick<PoolOptions, 'file'> = {}): PrimePool {
  const file = options.file ?? BULK_PRIME_CACHE_FILE;
  const primes = readPrimes(file);
  if (primes.length < count) throw new Error(`${file} holds ${primes.length} primes, ${count} needed: run ensurePrimePool first`);
  return makePool(primes.slice(0, count));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the generation lock, waiting for a live holder; returns its release. */
async function lock(file: string): Promise<() => void> {
  const lockFile = `${file}.lock`;
  for (;;) {
    try {
      const fd = fs.openSync(lockFile, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => fs.rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: number;
    let ageMs: number;
    try {
      holder = Number(fs.readFileSync(lockFile, 'utf8'));
      ageMs = Date.now() - fs.statSync(lockFile).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    // An empty file is a holder between its open and its write, unless it stays empty. Taking over
    // a dead holder's lock is best effort (two waiters could both take it): with one coordinator
    // calling ensurePrimePool first, as the header says, nobody waits on a dead one.
    const dead = holder > 0 ? !isAlive(holder) : ageMs > STALE_EMPTY_LOCK_MS;
    if (dead) fs.rmSync(lockFile, { force: true });
    else await sleep(LOCK_POLL_MS);
  }
}

function generatePrime(): Promise<bigint> {
  return new Promise((resolve, reject) =>
    crypto.generatePrime(PRIME_BITS, { bigint: true }, (err, p) => (err ? reject(err) : resolve(p))),
  );
}

/**
 * A pool of `count` primes: the cached ones, plus new ones generated and appended to the cache
 * (`label` prefixes the progress line, printed at most once a second). Safe to call from several
 * processes at once: one generates, the others wait and read its primes.
 */
export async function ensurePrimePool(count: number, label: string, options: PoolOptions = {}): Promise<PrimePool> {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`bad prime count ${count}`);
  const file = options.file ?? BULK_PRIME_CACHE_FILE;
  const out = options.out ?? process.stdout;
  const cached = readPrimes(file);
  if (cached.length >= count) return makePool(cached.slice(0, count));

  fs.mkdirSync(path.dirname(file), { recursive: true });
  const release = await lock(file);
  try {
    const primes = readPrimes(file); // another process may have generated them while we waited
    if (primes.length >= count) return makePool(primes.slice(0, count));
    const missing = count - primes.length;
    const seen = new Set(primes.map(primeHex));
    out.write(`[${label}] generating ${missing} primes of ${PRIME_BITS} bits for ${keysForPrimes(count)} bench keys (cached in ${path.relative(ROOT, file)})\n`);
    const t0 = performance.now();
    let lastPrint = t0;
    let lastSave = t0;
    let rejected = 0;
    const worker = async (): Promise<void> => {
      while (primes.length < count) {
        const p = await generatePrime();
        if (primes.length >= count) return;
        const hex = primeHex(p);
        if (unfitPrime(p) || seen.has(hex)) {
          rejected++;
          continue;
        }
        seen.add(hex);
        primes.push(p);
        const now = performance.now();
        if (now - lastSave >= SAVE_EVERY_MS) {
          writePrimes(file, primes);
          lastSave = now;
        }
        if (now - lastPrint >= 1000) {
          const made = missing - (count - primes.length);
          const s = (now - t0) / 1000;
          out.write(`[${label}] primes ${primes.length}/${count} (${s.toFixed(0)} s, ~${(((count - primes.length) * s) / made).toFixed(0)} s left)\n`);
          lastPrint = now;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, missing) }, worker));
    writePrimes(file, primes);
    const ms = performance.now() - t0;
    out.write(`[${label}] ${missing} primes in ${(ms / 1000).toFixed(1)} s (${(ms / missing).toFixed(1)} ms each${rejected ? `, ${rejected} rejected` : ''})\n`);
    return makePool(primes);
  } finally {
    release();
  }
}

/** a^-1 mod m for a coprime to m (extended Euclid). */
function modInverse(a: bigint, m: bigint): bigint {
  let r0 = a % m;
  let r1 = m;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    let t = r0 - q * r1;
    r0 = r1;
    r1 = t;
    t = s0 - q * s1;
    s0 = s1;
    s1 = t;
  }
  if (r0 !== 1n) throw new Error('not invertible');
  return s0 < 0n ? s0 + m : s0;
}

/** base64url of the minimal big-endian bytes of x (JWK "base64urlUInt"). */
function b64u(x: bigint): string {
  const hex = x.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
}

/** The JWK of key `index` of `pool`: n = p*q with (i, j) = pairOf(index), p = primes[j], q = primes[i]. */
export function bulkKeyJwk(pool: PrimePool, index: number): crypto.JsonWebKey {
  if (index >= pool.capacity) throw new RangeError(`key ${index} is beyond the pool's ${pool.capacity} keys`);
  const [i, j] = pairOf(index);
  const p = pool.primes[j]!;
  const q = pool.primes[i]!;
  const n = p * q;
  if (n >> 2047n !== 1n) throw new Error(`key ${index}: modulus is not 2048 bits`); // cannot happen, see header
  const phi = (p - 1n) * (q - 1n);
  // d = (k*phi + 1) / e with k*phi = -1 (mod e): one small inverse instead of a 2048-bit one.
  const k = (E - modInverse(phi % E, E)) % E;
  const d = (k * phi + 1n) / E;
  return {
    kty: 'RSA',
    n: b64u(n),
    e: 'AQAB',
    d: b64u(d),
    p: b64u(p),
    q: b64u(q),
    dp: b64u(d % (p - 1n)),
    dq: b64u(d % (q - 1n)),
    qi: b64u(modInverse(q, p)),
  };
}

/** Key `index` of `pool`, as the bench clients use it (same shape as bench/lib/keys.ts gives). */
export function bulkKey(pool: PrimePool, index: number): NodeEndpointKey {
  const privateKey = crypto.createPrivateKey({ key: bulkKeyJwk(pool, index), format: 'jwk' });
  return endpointKeyFrom(privateKey, crypto.createPublicKey(privateKey));
}

/**
 * Keys [from, to) from the shared cache, generating the primes they need if the cache lacks them
 * (with several load generators, let one coordinator call ensurePrimePool first so they all wait
 * for one generation rather than queue on the lock).
 */
export async function bulkKeys(from: number, to: number, label = 'bulk-keys', options: PoolOptions = {}): Promise<NodeEndpointKey[]> {
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && 0 <= from && from <= to)) throw new RangeError(`bad key range [${from}, ${to})`);
  const pool = await ensurePrimePool(primesForKeys(to), label, options);
  const keys: NodeEndpointKey[] = [];
  for (let i = from; i < to; i++) keys.push(bulkKey(pool, i));
  return keys;
}

/** `node dist/bench/lib/bulk-keys.js [--keys N] [--sample M]`: fill the cache and measure both costs. */
async function main(): Promise<void> {
  const num = (name: string, def: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(process.argv[i + 1]) : def;
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const keys = num('keys', 250_000);
  const sample = Math.min(num('sample', 2000), keys);
  process.stdout.write(`${machineLine(machineInfo())}\nsettings: keys ${keys}, primes ${primesForKeys(keys)}, sample ${sample}\n`);
  const pool = await ensurePrimePool(primesForKeys(keys), 'bulk-keys');
  for (let i = 0; i < 50; i++) bulkKey(pool, keys - 1 - i); // warm up
  const stride = Math.max(1, Math.floor(keys / sample));
  const t0 = performance.now();
  for (let i = 0; i < sample; i++) bulkKey(pool, (i * stride) % keys);
  const us = ((performance.now() - t0) * 1000) / sample;
  process.stdout.write(`per key: ${us.toFixed(0)} µs (${sample} keys spread over [0, ${keys})); ${keys} keys: ~${((us * keys) / 1e6).toFixed(0)} s of one core\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
