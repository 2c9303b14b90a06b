/**
 * Loader for the frame AEAD kernel wasm/build/ghash.wasm (source wasm/src/ghash.c, rebuilt by
 * `npm run build:wasm`): constant-time GHASH and the counter-mode XOR for the AES-GCM frame
 * cipher in aead-wasm.ts. The .wasm is read from the package root at first use, whether this file runs
 * from src/crypto (vitest, tsx) or dist/src/crypto (node), and compiled synchronously (it is a
 * few KiB). One instance per thread; everything here is synchronous, so its scratch memory is
 * never shared between two calls in flight.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WASM_RELATIVE_PATH = 'wasm/build/ghash.wasm';

interface Exports {
  memory: WebAssembly.Memory;
  lk_io(): number;
  lk_chunk(): number;
  /** H is passed as four big-endian 32-bit words. */
  lk_seal(ctrHi: number, ctrLo: number, len: number, ha: number, hb: number, hc: number, hd: number): void;
  lk_open(ctrHi: number, ctrLo: number, len: number, ha: number, hb: number, hc: number, hd: number): number;
  lk_fill_ctr(frames: number, blocks: number, first: number, ctrHi: number, ctrLo: number): number;
  lk_ghash_init(ha: number, hb: number, hc: number, hd: number): void;
  lk_ghash(len: number): void;
  lk_ghash_out(): void;
}

const FUNCTIONS = ['lk_io', 'lk_chunk', 'lk_seal', 'lk_open', 'lk_fill_ctr', 'lk_ghash_init', 'lk_ghash', 'lk_ghash_out'] as const;

/** The kernel's exports and the offsets of its io block (the `io` struct in wasm/src/ghash.c). */
export interface GhashKernel {
  readonly x: Exports;
  /** View of the whole wasm memory (fixed size: the module cannot grow it). */
  readonly mem: Uint8Array;
  /** Longest frame per call; io.ks and io.ctr are this long, io.buf 16 bytes longer (data || tag). */
  readonly chunk: number;
  /** The GHASH value after lk_ghash_out. */
  readonly GHASH_OUT: number;
  /** E_K(J0); io.ks follows it directly, so a mask and its frame's keystream copy in one go. */
  readonly MASK: number;
  readonly KS: number;
  readonly BUF: number;
  readonly CTR: number;
}

/** Where the package root is: the nearest directory above this file that holds the .wasm. */
export function wasmPath(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, WASM_RELATIVE_PATH);
    if (fs.existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Instantiate the kernel from `bytes`; throws when the module is not the expected one. */
export function instantiateGhash(bytes: Uint8Array<ArrayBuffer>): GhashKernel {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const x = instance.exports as unknown as Exports;
  for (const f of FUNCTIONS) {
    if (typeof x[f] !== 'function') throw new Error(`ghash.wasm: missing export ${f}`);
  }
  if (!(x.memory instanceof WebAssembly.Memory)) throw new Error('ghash.wasm: missing memory');
  const io = x.lk_io();
  const chunk = x.lk_chunk();
  const mem = new Uint8Array(x.memory.buffer);
  const k: GhashKernel = {
    x,
    mem,
    chunk,
    GHASH_OUT: io,
    MASK: io + 16,
    KS: io + 32,
    BUF: io + 32 + chunk,
    CTR: io + 48 + 2 * chunk,
  };
  if (chunk < 1024 || chunk % 16 !== 0 || k.CTR + chunk > mem.byteLength) throw new Error('ghash.wasm: unexpected layout');
  return k;
}

let loaded: GhashKernel | null | undefined;

/** The kernel, loaded on first use; null when the .wasm is missing or does not instantiate. Never throws. */
export function ghashKernel(): GhashKernel | null {
  if (loaded === undefined) {
    try {
      const file = wasmPath();
      loaded = file ? instantiateGhash(new Uint8Array(fs.readFileSync(file))) : null;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
