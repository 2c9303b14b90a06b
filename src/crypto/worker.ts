/**
 * Crypto worker (piscina): every RSA operation of the server runs here, never on the event loop.
 *
 * Task: verify the endpoint's RSA-PSS signature over the CONNECT transcript first (cheap, ~30 µs),
 * and only if it holds decrypt the RSA-OAEP wrapped session secret (expensive, the floor of a
 * handshake), then derive the session keys (HKDF) and the key confirmation.
 *
 * Workers keep parsed KeyObjects: endpoint keys in a small LRU keyed by key hash (parsed from the
 * PKCS#1 body, ~3 µs instead of ~110 µs for SPKI; see ENDPOINT_KEY_CACHE_CAP for its size), server
 * private keys by key id, loaded lazily from the key ring directory so a key added at run time is
 * picked up without restarting workers.
 *
 * Errors thrown in a worker reach the main thread without their code (Node 20), so the task
 * returns { ok: false, code } instead of throwing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { workerData } from 'node:worker_threads';
import { parseEndpointPublicKey } from './keys.js';
import { privateKeyPath } from './keyring.js';
import { deriveSessionKeys, RSA_OAEP, RSA_PSS, SESSION_SECRET_BYTES } from './session-crypto.js';

export interface WorkerInit {
  keyDir: string;
  endpointKeyCacheMax: number;
  /** Nice value of this thread (Linux; 0: unchanged). See lowerPriority(). */
  nice?: number;
}

export interface HandshakeTask {
  keyHash: string;
  /** SPKI DER of the endpoint key (from CONNECT or the store; already checked against keyHash). */
  publicKey: Uint8Array;
  sigInput: Uint8Array;
  signature: Uint8Array;
  wrappedSecret: Uint8Array;
  serverKeyId: string;
}

/**
 * What actually crosses the thread boundary: a batch of handshakes whose byte strings are packed
 * into one exactly-sized ArrayBuffer that is transferred, not cloned. Two measured reasons
 * (bench/handshake with LATCHKEY_BENCH_SERVER_NODE_ARGS=--cpu-prof):
 * - structured clone copies the whole ArrayBuffer behind a view, and Buffers decoded from a frame
 *   or taken from Node's 8 KiB pool are views of much larger buffers;
 * - every piscina task costs a postMessage each way plus a thread wake-up (~150 µs of main-thread
 *   time per task on the reference VM), so under load pool.ts sends several handshakes per task.
 * Layout per handshake: 4 x (u16 big-endian length || bytes) in the order publicKey, sigInput,
 * signature, wrappedSecret; handshakes follow each other.
 */
export interface HandshakeBatch {
  keyHashes: string[];
  serverKeyIds: string[];
  packed: Uint8Array;
  /**
   * One byte per handshake over a SharedArrayBuffer: the main thread sets it (Atomics) when the
   * handshake's connection is gone or banned while the batch runs, and the worker then skips that
   * handshake's RSA decrypt (pool.ts CryptoTicket).
   */
  cancel?: Uint8Array;
}

export function packHandshakeBatch(tasks: readonly HandshakeTask[]): HandshakeBatch {
  let size = 0;
  for (const t of tasks) size += 8 + t.publicKey.byteLength + t.sigInput.byteLength + t.signature.byteLength + t.wrappedSecret.byteLength;
  const packed = new Uint8Array(size);
  let o = 0;
  for (const t of tasks) {
    for (const p of [t.publicKey, t.sigInput, t.signature, t.wrappedSecret]) {
      if (p.byteLength > 0xffff) throw new RangeError('handshake field too large');
      packed[o] = p.byteLength >> 8;
      packed[o + 1] = p.byteLength & 0xff;
      packed.set(p, o + 2);
      o += 2 + p.byteLength;
    }
  }
  return { keyHashes: tasks.map((t) => t.keyHash), serverKeyIds: tasks.map((t) => t.serverKeyId), packed };
}

function unpackOne(packed: Uint8Array, offset: number): { fields: [Uint8Array, Uint8Array, Uint8Array, Uint8Array]; next: number } | null {
  const out: Uint8Array[] = [];
  let o = offset;
  for (let i = 0; i < 4; i++) {
    if (o + 2 > packed.byteLength) return null;
    const len = (packed[o]! << 8) | packed[o + 1]!;
    if (o + 2 + len > packed.byteLength) return null;
    out.push(packed.subarray(o + 2, o + 2 + len));
    o += 2 + len;
  }
  return { fields: out as [Uint8Array, Uint8Array, Uint8Array, Uint8Array], next: o };
}

/** keys = c2s (32) || s2c (32) || confirmation (32) || resumption secret (32), in one fresh 128-byte buffer (cheap to clone). */
export type HandshakeOutcome =
  | { ok: true; keys: Uint8Array }
  | { ok: false; code: 'LK_HS_BAD_SIGNATURE' | 'LK_HS_BAD_SECRET' | 'LK_HS_BAD_PUBLIC_KEY' | 'LK_HS_UNKNOWN_SERVER_KEY' | 'LK_HS_ABANDONED' | 'LK_INTERNAL'; detail?: string };

const init = workerData as WorkerInit;

/**
 * Run RSA below the event loop: the crypto workers share the cores with the loop that serves
 * every live session, and a burst of handshakes (a reconnect storm, a flood of valid keys) would
 * otherwise take the loop's core for as long as it lasts (bench/flood: legit ping p99 in the
 * first second of a flood came from ~100 decrypts on the loop's core). With a nice value the
 * scheduler gives the loop its turn first; idle cores still run RSA at full speed. Per thread:
 * /proc/thread-self names this thread's id, and setpriority on a thread id affects that thread
 * only. Raising a nice value needs no privilege; failure (not Linux) leaves the priority as is.
 */
function lowerPriority(nice: number): void {
  if (!(nice > 0)) return;
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, nice);
  } catch {
    // Not Linux, or /proc not mounted: run at the process's priority.
  }
}
lowerPriority(init?.nice ?? 0);
/**
 * Most parsed endpoint keys a worker keeps, whatever WorkerInit.endpointKeyCacheMax asks (pool.ts
 * passes 50,000). Measured with `node --expose-gc dist/bench/lib/session-memory.js --native`: a
 * parsed RSA-2048 public KeyObject that has done one verify holds ~3.8 KB outside the JS heap
 * (OpenSSL's structures: ~1.7-2.0 KB once parsed, the rest from its first verify) and ~0.2 KB of heap,
 * and keeping it spares a later handshake of the same key ~14 µs of worker CPU (verify with the
 * cached key 22 µs, parse + verify 36 µs), ~1.4% of a handshake's ~1 ms. 50,000 entries were up to
 * ~200 MB per worker, and every idle session whose key was among them paid ~4 KB for it: the
 * largest item of the per-session budget (docs/performance.md "Per-session memory budget"). The
 * LRU only pays for keys that handshake again soon (retries, flapping devices, a bench's reused
 * keys), so a thousand of them is enough: ~4 MB per worker at most.
 */
export const ENDPOINT_KEY_CACHE_CAP = 1024;
const endpointKeyCacheMax = Math.min(init?.endpointKeyCacheMax ?? ENDPOINT_KEY_CACHE_CAP, ENDPOINT_KEY_CACHE_CAP);
const endpointKeys = new Map<string, crypto.KeyObject>();
const serverKeys = new Map<string, crypto.KeyObject>();

function endpointKey(keyHash: string, spki: Uint8Array): crypto.KeyObject {
  let key = endpointKeys.get(keyHash);
  if (key) {
    // Refresh LRU position.
    endpointKeys.delete(keyHash);
    endpointKeys.set(keyHash, key);
    return key;
  }
  key = parseEndpointPublicKey(spki);
  endpointKeys.set(keyHash, key);
  if (endpointKeys.size > endpointKeyCacheMax) {
    endpointKeys.delete(endpointKeys.keys().next().value as string);
  }
  return key;
}

function serverKey(id: string): crypto.KeyObject | undefined {
  let key = serverKeys.get(id);
  if (key) return key;
  let pem: string;
  try {
    pem = fs.readFileSync(privateKeyPath(init.keyDir, id), 'utf8');
  } catch {
    return undefined;
  }
  key = crypto.createPrivateKey(pem);
  serverKeys.set(id, key);
  return key;
}

/** One handshake: signature first (cheap), then the secret (expensive), then the keys. */
function handshakeOne(keyHash: string, serverKeyId: string, fields: [Uint8Array, Uint8Array, Uint8Array, Uint8Array], cancelled: () => boolean): HandshakeOutcome {
  const [publicKey, sigInput, signature, wrappedSecret] = fields;
  let pub: crypto.KeyObject;
  try {
    pub = endpointKey(keyHash, publicKey);
  } catch {
    return { ok: false, code: 'LK_HS_BAD_PUBLIC_KEY' };
  }
  let verified = false;
  try {
    verified = crypto.verify('sha256', sigInput, { key: pub, ...RSA_PSS }, signature);
  } catch {
    verified = false;
  }
  if (!verified) return { ok: false, code: 'LK_HS_BAD_SIGNATURE' };
  // Checked as late as possible: the decrypt is the expensive part, and a ban or a closed socket
  // may have landed while earlier handshakes of the batch ran.
  if (cancelled()) return { ok: false, code: 'LK_HS_ABANDONED' };

  const priv = serverKey(serverKeyId);
  if (!priv) return { ok: false, code: 'LK_HS_UNKNOWN_SERVER_KEY' };
  let secret: Buffer;
  try {
    secret = crypto.privateDecrypt({ key: priv, ...RSA_OAEP }, wrappedSecret);
  } catch {
    return { ok: false, code: 'LK_HS_BAD_SECRET' };
  }
  if (secret.length !== SESSION_SECRET_BYTES) return { ok: false, code: 'LK_HS_BAD_SECRET' };
  const derived = deriveSessionKeys(secret, sigInput);
  secret.fill(0);
  const keys = new Uint8Array(128);
  keys.set(derived.c2s, 0);
  keys.set(derived.s2c, 32);
  keys.set(derived.confirmation, 64);
  keys.set(derived.resumption, 96);
  return { ok: true, keys };
}

/** Piscina task: a batch of handshakes, answered in order. Never throws. */
export function handshakeBatch(batch: HandshakeBatch): HandshakeOutcome[] {
  const out: HandshakeOutcome[] = [];
  const cancel = batch.cancel;
  let o = 0;
  for (let i = 0; i < batch.keyHashes.length; i++) {
    const cancelled = cancel ? () => Atomics.load(cancel, i) !== 0 : () => false;
    const one = unpackOne(batch.packed, o);
    if (!one) {
      out.push({ ok: false, code: 'LK_INTERNAL', detail: 'bad packed batch' });
      continue;
    }
    o = one.next;
    try {
      out.push(handshakeOne(batch.keyHashes[i]!, batch.serverKeyIds[i]!, one.fields, cancelled));
    } catch (err) {
      out.push({ ok: false, code: 'LK_INTERNAL', detail: (err as Error).message });
    }
  }
  return out;
}

export default handshakeBatch;
