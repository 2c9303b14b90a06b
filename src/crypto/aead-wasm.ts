/**
 * WasmGcmCipher: AES-256-GCM frames (aead.ts) with AES from a persistent node:crypto AES-ECB
 * context and GHASH and XOR in the constant-time WebAssembly kernel (wasm/src/ghash.c, loaded by
 * ghash-wasm.ts); the module-wide sweeper that drops idle ciphers' keystream and AES context; and
 * the kernel's known-answer check against NodeGcmCipher, run once before the kernel is used.
 * Hand-written on purpose: the frame AEAD is the hot path (bench/micro, case aead).
 */
import crypto from 'node:crypto';
import { checkCounter, NodeGcmCipher, TAG_BYTES, type FrameCipher } from './aead.js';
import { ghashKernel, type GhashKernel } from './ghash-wasm.js';

/** Keystream cached per direction at most (4 KiB), and the longest window in frames. */
export const KEYSTREAM_CACHE_BLOCKS = 256;
const WINDOW_MAX_FRAMES = 64;
/** A window used up within this many ms makes the next one twice as long; after WINDOW_SHRINK_MS, half. */
const WINDOW_GROW_MS = 100;
const WINDOW_SHRINK_MS = 1000;
/** A cipher unused for one to two sweep periods drops its keystream and its AES context. */
const IDLE_SWEEP_MS = 1000;

/**
 * Frames longer than this (bytes of plaintext or ciphertext) go to node:crypto's GCM: its fixed
 * cost per call is ~5 µs but its GHASH (PCLMUL) costs <1 ns/byte against ~5 ns/byte for the
 * constant-time kernel, so it wins from ~700 bytes on (bench/micro, case aead).
 */
export const WASM_MAX_BYTES = 512;

const TWO_32 = 2 ** 32;

export interface WasmGcmOptions {
  /** Longest frame (plaintext bytes) done in WebAssembly; longer ones use node:crypto GCM. At most the kernel's chunk (16 KiB). */
  wasmMaxBytes?: number;
  /** The kernel to use (default: the module's, loaded and checked once). */
  kernel?: GhashKernel;
}

/**
 * AES-256-GCM with AES from node:crypto and GHASH in WebAssembly, bit-for-bit the same frames as
 * NodeGcmCipher. GCM's counter mode for frame counter c uses the blocks
 *   J0 = nonce(c) || 00000001 (E_K(J0) masks the tag), and nonce(c) || 00000002, 00000003, ...
 * (one per 16 bytes of data). A node:crypto call costs ~2 µs however little it does, so the
 * keystream for a window of upcoming counters (K frames x B blocks: J0 and B-1 data blocks each) is
 * computed in one AES-ECB update: counters are sequential per direction (tx counters are ours, rx
 * counters must be exactly the next expected one).
 *
 * The window starts at one frame and doubles while windows are used up within 100 ms (halves when
 * one lasted over a second), its B follows the longest recent frame, and it holds at most
 * KEYSTREAM_CACHE_BLOCKS blocks (4 KiB): what a direction holds is about its next 0.1-1 s of frames.
 * A frame longer than B-1 blocks gets its other blocks from an extra update; a counter outside the
 * window (a jump, a repeat, a step back) starts a fresh window there; each cached block is only
 * ever used for the (counter, block) it was computed for. A cipher left idle for 1-2 s drops its
 * keystream and its AES context (one module-wide sweep timer, unref'd), so a session at rest keeps
 * its key object and H only, as NodeGcmCipher keeps its key object.
 *
 * Frames over wasmMaxBytes (WASM_MAX_BYTES by default) go to node:crypto GCM (same bytes; faster
 * per byte). Open authenticates before it decrypts and returns null, never throws, for any frame
 * that does not authenticate (a counter that is not a safe non-negative integer throws RangeError,
 * as in NodeGcmCipher). Output buffers come from Buffer.allocUnsafe (Node's pool for small frames).
 */
export class WasmGcmCipher implements FrameCipher {
  private readonly key: crypto.KeyObject;
  /** H = E_K(0^128), the GHASH key, as four big-endian 32-bit words. */
  private readonly ha: number;
  private readonly hb: number;
  private readonly hc: number;
  private readonly hd: number;
  private ecb: crypto.Cipher | null = null;
  /** Keystream window: frames ksBase .. ksBase+ksFrames-1, ksBlocks blocks each (J0 first). */
  private ks: Buffer | null = null;
  private ksBase = 0;
  private ksFrames = 0;
  private ksBlocks = 0;
  /** The counter after the last one used, to tell a sequential stream from a jump. */
  private next = -1;
  private windowFrames = 1;
  private needMax = 0;
  private refilledAt = 0;
  /** Set by every frame; the idle sweep clears it (and releases the cipher if it was already clear). */
  used = false;

  private readonly k: GhashKernel;
  private readonly wasmMaxBytes: number;
  private nodeGcm: NodeGcmCipher | null = null;

  constructor(key: Uint8Array, options: WasmGcmOptions = {}) {
    if (key.byteLength !== 32) throw new RangeError('AES-256-GCM needs a 32-byte key');
    this.k = options.kernel ?? requireKernel();
    this.wasmMaxBytes = Math.min(options.wasmMaxBytes ?? WASM_MAX_BYTES, this.k.chunk);
    this.key = crypto.createSecretKey(key);
    const h = this.aes().update(Buffer.alloc(16));
    this.ha = h.readUInt32BE(0);
    this.hb = h.readUInt32BE(4);
    this.hc = h.readUInt32BE(8);
    this.hd = h.readUInt32BE(12);
  }

  seal(counter: number, plaintext: Uint8Array): Buffer {
    checkCounter(counter);
    const len = plaintext.byteLength;
    if (len > this.wasmMaxBytes) return this.native(counter).seal(counter, plaintext);
    const k = this.k;
    const { hi, lo } = this.load(counter, len, plaintext);
    k.x.lk_seal(hi, lo, len, this.ha, this.hb, this.hc, this.hd);
    const out = Buffer.allocUnsafe(len + TAG_BYTES);
    out.set(k.mem.subarray(k.BUF, k.BUF + len + TAG_BYTES));
    return out;
  }

  open(counter: number, sealed: Uint8Array): Buffer | null {
    checkCounter(counter);
    if (sealed.byteLength < TAG_BYTES) return null;
    const len = sealed.byteLength - TAG_BYTES;
    if (len > this.wasmMaxBytes) return this.native(counter).open(counter, sealed);
    const k = this.k;
    const { hi, lo } = this.load(counter, len, sealed);
    if (k.x.lk_open(hi, lo, len, this.ha, this.hb, this.hc, this.hd) !== 1) return null;
    const out = Buffer.allocUnsafe(len);
    out.set(k.mem.subarray(k.BUF, k.BUF + len));
    return out;
  }

  /**
   * Put frame `counter`'s keystream (E_K(J0) and the blocks for `len` data bytes) and `input` (the
   * plaintext, or ciphertext || tag) into the kernel's memory; returns the counter's two halves.
   */
  private load(counter: number, len: number, input: Uint8Array): { hi: number; lo: number } {
    const hi = Math.floor(counter / TWO_32);
    const lo = counter >>> 0;
    const nb = (len + 15) >>> 4;
    const have = this.keystream(counter, nb, hi, lo);
    if (have < nb) this.extra(hi, lo, have, nb - have);
    this.k.mem.set(input, this.k.BUF);
    return { hi, lo };
  }

  /** Bytes of keystream this cipher holds now (for tests and memory accounting). */
  get cachedKeystreamBytes(): number {
    return this.ks ? this.ks.byteLength : 0;
  }

  /** Whether the AES context exists now (it is dropped when idle and re-created on demand). */
  get hasAesContext(): boolean {
    return this.ecb !== null;
  }

  /** Drop the keystream and the AES context; both come back on the next frame. */
  release(): void {
    this.ks = null;
    this.ecb = null;
    this.windowFrames = 1;
  }

  private aes(): crypto.Cipher {
    if (!this.ecb) {
      this.ecb = crypto.createCipheriv('aes-256-ecb', this.key, null);
      this.ecb.setAutoPadding(false);
      track(this);
    }
    return this.ecb;
  }

  /**
   * Put E_K(J0) of frame `c` in io.mask and the keystream of its first data blocks right after it
   * in io.ks; returns how many data blocks (at most nb) are there.
   */
  private keystream(c: number, nb: number, hi: number, lo: number): number {
    this.used = true;
    let f = c - this.ksBase;
    if (this.ks === null || f < 0 || f >= this.ksFrames) {
      this.refill(c, nb, hi, lo);
      f = 0;
    } else if (nb + 1 > this.needMax) {
      this.needMax = nb + 1;
    }
    const blocks = this.ksBlocks;
    const have = nb < blocks - 1 ? nb : blocks - 1;
    const off = f * blocks * 16;
    this.k.mem.set(this.ks!.subarray(off, off + 16 + have * 16), this.k.MASK);
    this.next = c + 1;
    if (f === this.ksFrames - 1) this.ks = null; // window used up: free it now
    return have;
  }

  /** A new window starting at counter c. */
  private refill(c: number, nb: number, hi: number, lo: number): void {
    const now = Date.now();
    let frames = 1;
    if (c === this.next) {
      const dt = now - this.refilledAt;
      if (dt < WINDOW_GROW_MS) frames = Math.min(this.windowFrames * 2, WINDOW_MAX_FRAMES);
      else if (dt > WINDOW_SHRINK_MS) frames = Math.max(1, this.windowFrames >> 1);
      else frames = this.windowFrames;
    }
    let blocks = nb + 1;
    if (frames > 1) {
      const need = Math.max(blocks, this.needMax);
      blocks = need + Math.max(1, need >> 3); // some room for frames a little longer than the last ones
    }
    const maxBlocks = this.k.chunk / 16;
    if (blocks > maxBlocks) blocks = maxBlocks;
    frames = Math.max(1, Math.min(frames, Math.floor(KEYSTREAM_CACHE_BLOCKS / blocks), Number.MAX_SAFE_INTEGER - c + 1));
    const n = this.k.x.lk_fill_ctr(frames, blocks, 1, hi, lo);
    if (n !== frames * blocks * 16) throw new Error('aead: keystream window larger than the kernel buffer');
    this.ks = this.aes().update(this.k.mem.subarray(this.k.CTR, this.k.CTR + n));
    this.ksBase = c;
    this.ksFrames = frames;
    this.ksBlocks = blocks;
    this.windowFrames = frames;
    this.needMax = nb + 1;
    this.refilledAt = now;
  }

  /** Keystream of data blocks first .. first+count-1 (count <= chunk / 16) into io.ks at block `first`. */
  private extra(hi: number, lo: number, first: number, count: number): void {
    const k = this.k;
    const n = k.x.lk_fill_ctr(1, count, first + 2, hi, lo);
    if (n !== count * 16) throw new Error('aead: keystream request larger than the kernel buffer');
    k.mem.set(this.aes().update(k.mem.subarray(k.CTR, k.CTR + n)), k.KS + first * 16);
  }

  /** node:crypto GCM for frames above wasmMaxBytes (same bytes; its per-byte cost is far lower). */
  private native(counter: number): NodeGcmCipher {
    this.used = true;
    this.next = counter + 1;
    return (this.nodeGcm ??= new NodeGcmCipher(this.key));
  }
}

// Idle sweep: ciphers that made an AES context are tracked; one unused for a whole period is
// released and forgotten (ciphers of closed sessions are forgotten the same way).
const live = new Set<WasmGcmCipher>();
let sweeper: NodeJS.Timeout | null = null;

function track(c: WasmGcmCipher): void {
  live.add(c);
  if (!sweeper) {
    sweeper = setInterval(sweepIdle, IDLE_SWEEP_MS);
    sweeper.unref();
  }
}

/** One sweep (exported for tests). */
export function sweepIdle(): void {
  for (const c of live) {
    if (c.used) {
      c.used = false;
    } else {
      c.release();
      live.delete(c);
    }
  }
  if (live.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/** Ciphers holding an AES context (for tests). */
export function liveWasmCiphers(): number {
  return live.size;
}

let kernelChecked: GhashKernel | null | undefined;

/** The wasm kernel when it loads and passes a known-answer check against node:crypto; else null. Never throws. */
export function frameKernel(): GhashKernel | null {
  if (kernelChecked === undefined) {
    const k = ghashKernel();
    kernelChecked = k && kernelSelfTest(k) ? k : null;
  }
  return kernelChecked;
}

function requireKernel(): GhashKernel {
  const k = frameKernel();
  if (!k) throw new Error('the frame AEAD kernel (wasm/build/ghash.wasm) is not available');
  return k;
}

/** Known-answer check of a kernel against NodeGcmCipher (seal, open, a flipped tag bit); false on any mismatch or error. */
export function kernelSelfTest(k: GhashKernel): boolean {
  let c: WasmGcmCipher | null = null;
  try {
    const key = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) key[i] = (i * 29 + 7) & 0xff;
    const ref = new NodeGcmCipher(key);
    c = new WasmGcmCipher(key, { kernel: k, wasmMaxBytes: k.chunk });
    for (const [counter, len] of [[0, 0], [1, 15], [2, 100], [2 ** 40 + 3, 33], [5, k.chunk]] as const) {
      const pt = Buffer.alloc(len);
      for (let i = 0; i < len; i++) pt[i] = (i * 7 + counter) & 0xff;
      const sealed = ref.seal(counter, pt);
      if (!c.seal(counter, pt).equals(sealed)) return false;
      const opened = c.open(counter, sealed);
      if (!opened || !opened.equals(pt)) return false;
      sealed[sealed.length - 1]! ^= 1;
      if (c.open(counter, sealed) !== null) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (c) {
      c.release();
      live.delete(c);
    }
  }
}
