import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeGcmCipher, type FrameCipher } from '../../src/crypto/aead.js';
import { frameKernel, kernelSelfTest, KEYSTREAM_CACHE_BLOCKS, liveWasmCiphers, sweepIdle, WASM_MAX_BYTES, WasmGcmCipher } from '../../src/crypto/aead-wasm.js';
import { createFrameCipher, frameCipherKind } from '../../src/crypto/frame-cipher.js';
import { ghashKernel, instantiateGhash, WASM_RELATIVE_PATH, type GhashKernel } from '../../src/crypto/ghash-wasm.js';
import { WebFrameCipher } from '../../src/sdk/crypto.js';
import { ROOT } from '../helpers/root.js';

// Reference: plain node:crypto AES-256-GCM with the frame nonce and AAD of docs/protocol.md 5.1.
function nonceOf(counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(counter), 4);
  return nonce;
}
function aadOf(counter: number): Buffer {
  return Buffer.concat([Buffer.from([0x0f]), nonceOf(counter).subarray(4)]);
}
function refSeal(key: Uint8Array, counter: number, plaintext: Uint8Array): Buffer {
  const c = crypto.createCipheriv('aes-256-gcm', key, nonceOf(counter));
  c.setAAD(aadOf(counter));
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}
function refOpen(key: Uint8Array, counter: number, sealed: Uint8Array): Buffer | null {
  if (sealed.length < 16) return null;
  const d = crypto.createDecipheriv('aes-256-gcm', key, nonceOf(counter));
  d.setAAD(aadOf(counter));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

// Reference GHASH, bit by bit (NIST SP 800-38D, algorithm 1), on 128-bit BigInts whose most
// significant bit is the first bit of the block (GCM's bit order).
const R = 0xe1n << 120n;
const MASK128 = (1n << 128n) - 1n;
function toBig(b: Uint8Array): bigint {
  return BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));
}
function gfMulRef(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127; i >= 0; i--) {
    if ((x >> BigInt(i)) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z & MASK128;
}
function ghashRef(h: Uint8Array, data: Uint8Array): Buffer {
  const hb = toBig(h);
  let y = 0n;
  for (let i = 0; i < data.length; i += 16) {
    const block = Buffer.alloc(16);
    Buffer.from(data.subarray(i, i + 16)).copy(block);
    y = gfMulRef(y ^ toBig(block), hb);
  }
  return Buffer.from(y.toString(16).padStart(32, '0'), 'hex');
}

function kernelGhash(k: GhashKernel, h: Uint8Array, data: Uint8Array): Buffer {
  const hv = Buffer.from(h);
  k.x.lk_ghash_init(hv.readUInt32BE(0), hv.readUInt32BE(4), hv.readUInt32BE(8), hv.readUInt32BE(12));
  for (let pos = 0; pos < data.length || pos === 0; pos += k.chunk) {
    const part = data.subarray(pos, pos + k.chunk);
    k.mem.set(part, k.BUF);
    k.x.lk_ghash(part.length);
    if (data.length === 0) break;
  }
  k.x.lk_ghash_out();
  return Buffer.from(k.mem.subarray(k.GHASH_OUT, k.GHASH_OUT + 16));
}

/** The kernel as loaded (GHASH tests) or as accepted by the self-test (cipher tests). */
function rawKernel(): GhashKernel {
  const k = ghashKernel();
  if (!k) throw new Error(`the kernel did not load from ${WASM_RELATIVE_PATH}`);
  return k;
}
function kernel(): GhashKernel {
  const k = frameKernel();
  if (!k) throw new Error('the kernel loaded but failed its self-test against node:crypto');
  return k;
}

/** Deterministic lengths and data so a failure names its case. */
function bytes(len: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: len }, (_, i) => (i * 131 + seed * 17 + (i >> 3)) & 0xff));
}

describe('frame cipher selection', () => {
  it('uses the wasm kernel by default when the committed .wasm loads', () => {
    expect(fs.existsSync(path.join(ROOT, WASM_RELATIVE_PATH))).toBe(true);
    expect(frameCipherKind()).toBe('wasm');
    expect(createFrameCipher(crypto.randomBytes(32))).toBeInstanceOf(WasmGcmCipher);
  });

  it('a kernel that computes wrong tags fails the self-test (createFrameCipher would fall back)', () => {
    const k = kernel();
    const broken: GhashKernel = { ...k, x: { ...k.x, lk_seal: (hi, lo, len, ha, hb, hc, hd) => k.x.lk_seal(hi, lo, len, ha ^ 1, hb, hc, hd) } };
    expect(kernelSelfTest(k)).toBe(true);
    expect(kernelSelfTest(broken)).toBe(false);
  });

  it('garbage instead of the .wasm does not instantiate', () => {
    expect(() => instantiateGhash(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff]))).toThrow();
  });

  afterEach(() => {
    vi.doUnmock('node:fs');
    vi.resetModules();
  });

  it('falls back to NodeGcmCipher, without throwing or logging, when the .wasm is missing', async () => {
    vi.resetModules();
    vi.doMock('node:fs', async (importOriginal) => {
      const real = (await importOriginal()) as { default: typeof fs };
      const existsSync = (p: fs.PathLike): boolean => (String(p).endsWith('ghash.wasm') ? false : real.default.existsSync(p));
      return { ...real, default: { ...real.default, existsSync }, existsSync };
    });
    const log = vi.spyOn(console, 'log');
    const warn = vi.spyOn(console, 'warn');
    const error = vi.spyOn(console, 'error');
    const fresh = await import('../../src/crypto/frame-cipher.js');
    const freshAead = await import('../../src/crypto/aead.js');
    expect(fresh.frameCipherKind()).toBe('node');
    const c = fresh.createFrameCipher(crypto.randomBytes(32));
    expect(c).toBeInstanceOf(freshAead.NodeGcmCipher);
    expect(c.open(0, c.seal(0, Buffer.from('hi')))!.toString()).toBe('hi');
    expect(log).not.toHaveBeenCalled();
    expect(warn).not.toHaveBeenCalled();
    expect(error).not.toHaveBeenCalled();
  });
});

describe('GHASH kernel', () => {
  it('matches a bit-by-bit GF(2^128) reference', () => {
    const k = rawKernel();
    const hs = [
      Buffer.alloc(16),
      Buffer.from('80000000000000000000000000000000', 'hex'), // H = 1
      Buffer.from('00000000000000000000000000000001', 'hex'), // H = x^127
      Buffer.alloc(16, 0xff),
      Buffer.from('66e94bd4ef8a2c3b884cfa59ca342b2e', 'hex'), // AES-128 H of the GCM spec, test case 1
      ...Array.from({ length: 40 }, () => crypto.randomBytes(16)),
    ];
    let n = 0;
    for (const h of hs) {
      for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 48, 100, 160]) {
        const data = n % 3 === 0 ? Buffer.alloc(len, 0xff) : crypto.randomBytes(len);
        expect(kernelGhash(k, h, data).toString('hex'), `H=${h.toString('hex')} len=${len}`).toBe(ghashRef(h, data).toString('hex'));
        n++;
      }
    }
  });

  it('single-bit operands: every x^i * x^j', () => {
    const k = rawKernel();
    for (let i = 0; i < 128; i += 3) {
      for (let j = 0; j < 128; j += 5) {
        const h = Buffer.alloc(16);
        h[i >> 3] = 0x80 >> (i & 7);
        const x = Buffer.alloc(16);
        x[j >> 3] = 0x80 >> (j & 7);
        expect(kernelGhash(k, h, x).toString('hex'), `x^${i} * x^${j}`).toBe(ghashRef(h, x).toString('hex'));
      }
    }
  });

  it('a long input (several calls, 40 KiB) matches the reference', () => {
    const k = rawKernel();
    const h = crypto.randomBytes(16);
    const data = crypto.randomBytes(40_000); // not a multiple of 16: the last block is padded
    // The kernel pads only the last block of each call, so feed whole chunks (multiples of 16).
    expect(kernelGhash(k, h, data).toString('hex')).toBe(ghashRef(h, data).toString('hex'));
  });

  it('the reference GHASH itself reproduces node:crypto GCM tags', () => {
    // tag = GHASH(H, A || C || lengths) ^ E_K(J0): checks the reference the kernel is held to.
    const key = crypto.randomBytes(32);
    const ecb = crypto.createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const h = ecb.update(Buffer.alloc(16));
    for (const [counter, len] of [[0, 0], [7, 5], [1000, 64], [2 ** 33 + 1, 100]] as const) {
      const sealed = refSeal(key, counter, crypto.randomBytes(len));
      const c = sealed.subarray(0, len);
      const aadBlock = Buffer.alloc(16);
      aadOf(counter).copy(aadBlock);
      const padded = Buffer.alloc(Math.ceil(len / 16) * 16);
      c.copy(padded);
      const lens = Buffer.alloc(16);
      lens.writeBigUInt64BE(72n, 0);
      lens.writeBigUInt64BE(BigInt(len * 8), 8);
      const s = ghashRef(h, Buffer.concat([aadBlock, padded, lens]));
      const j0 = Buffer.concat([nonceOf(counter), Buffer.from([0, 0, 0, 1])]);
      const mask = ecb.update(j0);
      const tag = Buffer.from(s.map((b, i) => b ^ mask[i]!));
      expect(tag.toString('hex')).toBe(sealed.subarray(len).toString('hex'));
    }
  });
});

describe('WasmGcmCipher', () => {
  const key = crypto.randomBytes(32);

  function check(cipherTx: FrameCipher, cipherRx: FrameCipher, counter: number, pt: Buffer, ref: NodeGcmCipher): void {
    const sealed = cipherTx.seal(counter, pt);
    const label = `counter ${counter}, ${pt.length} bytes`;
    expect(sealed.equals(refSeal(key, counter, pt)), label).toBe(true);
    expect(sealed.equals(ref.seal(counter, pt)), label).toBe(true);
    expect(refOpen(key, counter, sealed)!.equals(pt), label).toBe(true);
    const opened = cipherRx.open(counter, refSeal(key, counter, pt));
    expect(opened !== null && opened.equals(pt), label).toBe(true);
  }

  it('lengths 0..300, both directions, against node:crypto and NodeGcmCipher', () => {
    const tx = new WasmGcmCipher(key);
    const rx = new WasmGcmCipher(key);
    const ref = new NodeGcmCipher(key);
    for (let len = 0; len <= 300; len++) check(tx, rx, len, crypto.randomBytes(len), ref);
  });

  it('long frames: node:crypto above wasmMaxBytes, the kernel up to its 16 KiB chunk when asked', () => {
    const ref = new NodeGcmCipher(key);
    const lens = [WASM_MAX_BYTES - 1, WASM_MAX_BYTES, WASM_MAX_BYTES + 1, 1024, 4095, 4096, 4097, 16_383, 16_384, 16_385, 70_000];
    const dflt = [new WasmGcmCipher(key), new WasmGcmCipher(key)] as const;
    const forced = [new WasmGcmCipher(key, { wasmMaxBytes: 1 << 20 }), new WasmGcmCipher(key, { wasmMaxBytes: 1 << 20 })] as const;
    let counter = 0;
    for (const len of lens) {
      for (const [tx, rx] of [dflt, forced]) {
        check(tx, rx, counter, crypto.randomBytes(len), ref);
        check(tx, rx, counter + 1, crypto.randomBytes(37), ref); // a small frame right after a long one
      }
      counter += 2;
    }
  });

  it('thousands of sequential counters with varying lengths (window refills, growth, overflow blocks)', () => {
    const tx = new WasmGcmCipher(key);
    const rx = new WasmGcmCipher(key);
    const ref = new NodeGcmCipher(key);
    let maxCached = 0;
    for (let c = 0; c < 6000; c++) {
      // runs of similar sizes, a longer frame now and then (more blocks than the window holds),
      // and a frame for node:crypto every so often
      const len = c % 97 === 0 ? 600 : c % 13 === 0 ? 250 + (c % 50) : ((c >> 6) % 8) * 16 + (c % 23);
      check(tx, rx, c, bytes(len, c), ref);
      maxCached = Math.max(maxCached, (tx as WasmGcmCipher).cachedKeystreamBytes, (rx as WasmGcmCipher).cachedKeystreamBytes);
    }
    expect(maxCached).toBeGreaterThan(16 * 16); // the window did grow past a few frames
    expect(maxCached).toBeLessThanOrEqual(KEYSTREAM_CACHE_BLOCKS * 16);
  });

  it('counters that jump, go backwards, or start high: same object and fresh objects', () => {
    const counters = [0, 1, 2, 3, 4, 10, 11, 12, 5, 6, 0, 1, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 7, 8, 9, Number.MAX_SAFE_INTEGER - 2, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER, 100, 101];
    const ref = new NodeGcmCipher(key);
    const tx = new WasmGcmCipher(key);
    const rx = new WasmGcmCipher(key);
    for (const [i, c] of counters.entries()) {
      check(tx, rx, c, crypto.randomBytes(i * 11), ref);
      check(new WasmGcmCipher(key), new WasmGcmCipher(key), c, crypto.randomBytes(i * 7), ref);
    }
    // Each counter in a fast sequential run after a jump is right too (the window restarts there).
    for (let c = 2 ** 33; c < 2 ** 33 + 300; c++) check(tx, rx, c, crypto.randomBytes(c % 100), ref);
    expect(() => tx.seal(-1, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => tx.seal(2 ** 53, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => rx.open(1.5, Buffer.alloc(20))).toThrow(RangeError);
  });

  it('never uses keystream for two different (counter, block) pairs', () => {
    // Sealing zeros yields the keystream itself: every block must be the one node:crypto GCM uses
    // for that counter and position, and no two (counter, block) pairs may share one.
    const tx = new WasmGcmCipher(key);
    const seen = new Map<string, string>();
    const counters = [...Array.from({ length: 400 }, (_, i) => i), 1000, 1001, 999, 5, 2 ** 32 + 3, ...Array.from({ length: 200 }, (_, i) => 2000 + i)];
    for (const [i, c] of counters.entries()) {
      const len = 16 * (1 + (i % 9)) + (i % 3 === 0 ? 16 * 20 : 0); // some frames longer than the window's blocks
      const ks = tx.seal(c, Buffer.alloc(len)).subarray(0, len);
      expect(ks.equals(refSeal(key, c, Buffer.alloc(len)).subarray(0, len)), `counter ${c}`).toBe(true);
      for (let b = 0; b < len / 16; b++) {
        const block = ks.subarray(b * 16, b * 16 + 16).toString('hex');
        const where = `${c}/${b}`;
        const prev = seen.get(block);
        if (prev !== undefined && prev !== where) throw new Error(`keystream block of ${where} was also used for ${prev}`);
        seen.set(block, where);
      }
    }
  });

  it('open returns null for a wrong counter, any flipped bit, a truncated frame or another key', () => {
    const tx = new WasmGcmCipher(key);
    const rx = new WasmGcmCipher(key);
    const forcedRx = new WasmGcmCipher(key, { wasmMaxBytes: 1 << 20 });
    const other = new WasmGcmCipher(crypto.randomBytes(32));
    let counter = 0;
    for (const len of [0, 1, 15, 16, 17, 100, 300, WASM_MAX_BYTES + 100, 5000]) {
      const pt = crypto.randomBytes(len);
      const sealed = tx.seal(counter, pt);
      for (const r of [rx, forcedRx]) {
        expect(r.open(counter + 1, sealed)).toBeNull();
        expect(r.open(counter === 0 ? 1 : counter - 1, sealed)).toBeNull();
        const step = sealed.length > 400 ? 37 : 1;
        for (let i = 0; i < sealed.length; i += step) {
          const bad = Buffer.from(sealed);
          bad[i]! ^= 1 << (i % 8);
          expect(r.open(counter, bad), `${len} bytes, bit flipped in byte ${i}`).toBeNull();
        }
        for (const cut of [1, 15, 16, 17]) {
          if (cut <= sealed.length) expect(r.open(counter, sealed.subarray(0, sealed.length - cut))).toBeNull();
        }
        expect(r.open(counter, Buffer.concat([sealed, Buffer.alloc(1)]))).toBeNull();
        for (let short = 0; short < 16; short++) expect(r.open(counter, sealed.subarray(0, short))).toBeNull();
        expect(other.open(counter, sealed)).toBeNull();
        // the failures left nothing behind: the right frame still opens
        expect(r.open(counter, sealed)!.equals(pt)).toBe(true);
      }
      counter++;
    }
  });

  it('two ciphers with different keys interleaved (one shared kernel memory) stay independent', () => {
    const k1 = crypto.randomBytes(32);
    const k2 = crypto.randomBytes(32);
    const a = new WasmGcmCipher(k1);
    const b = new WasmGcmCipher(k2);
    const aRx = new WasmGcmCipher(k1);
    const bRx = new WasmGcmCipher(k2);
    for (let c = 0; c < 500; c++) {
      const pt = crypto.randomBytes(c % 150);
      const sa = a.seal(c, pt);
      const sb = b.seal(c, pt);
      expect(sa.equals(refSeal(k1, c, pt))).toBe(true);
      expect(sb.equals(refSeal(k2, c, pt))).toBe(true);
      if (pt.length > 0) expect(sa.equals(sb)).toBe(false);
      expect(bRx.open(c, sa)).toBeNull();
      expect(aRx.open(c, sa)!.equals(pt)).toBe(true);
      expect(bRx.open(c, sb)!.equals(pt)).toBe(true);
    }
  });

  it('interoperates with the SDK (WebFrameCipher, WebCrypto AES-GCM) in both directions', async () => {
    const web = new WebFrameCipher(await globalThis.crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']), globalThis.crypto);
    const tx = new WasmGcmCipher(key);
    const rx = new WasmGcmCipher(key);
    for (let c = 0; c < 60; c++) {
      const pt = crypto.randomBytes((c * 29) % 700);
      const fromSdk = await web.seal(c, pt);
      expect(rx.open(c, fromSdk)!.equals(pt)).toBe(true);
      const toSdk = tx.seal(c, pt);
      expect(Buffer.from(toSdk).equals(Buffer.from(fromSdk))).toBe(true);
      expect(Buffer.from((await web.open(c, toSdk))!).equals(pt)).toBe(true);
    }
  });

  it('drops its keystream and AES context when idle and works again after', () => {
    const tx = new WasmGcmCipher(key);
    const ref = new NodeGcmCipher(key);
    for (let c = 0; c < 100; c++) expect(tx.seal(c, Buffer.alloc(50, c)).equals(ref.seal(c, Buffer.alloc(50, c)))).toBe(true);
    expect(tx.hasAesContext).toBe(true);
    expect(liveWasmCiphers()).toBeGreaterThan(0);
    sweepIdle(); // marks
    expect(tx.hasAesContext).toBe(true);
    sweepIdle(); // unused for a whole period: released
    expect(tx.hasAesContext).toBe(false);
    expect(tx.cachedKeystreamBytes).toBe(0);
    for (let c = 100; c < 200; c++) expect(tx.seal(c, Buffer.alloc(50, c)).equals(ref.seal(c, Buffer.alloc(50, c)))).toBe(true);
    expect(tx.hasAesContext).toBe(true);
  });

  it('a cipher used once holds no keystream afterwards', () => {
    const tx = new WasmGcmCipher(key);
    tx.seal(0, Buffer.alloc(100));
    expect(tx.cachedKeystreamBytes).toBe(0);
  });
});

describe('ghash.wasm build', () => {
  it('the committed .wasm is what `npm run build:wasm` produces', (ctx) => {
    const clang = process.env.CLANG ?? 'clang';
    let version: string;
    try {
      version = execFileSync(clang, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
      execFileSync('wasm-ld', ['--version'], { stdio: 'ignore' });
    } catch {
      return ctx.skip('clang or wasm-ld is not installed (Debian: apt-get install -y clang lld); the committed wasm/build/ghash.wasm is used as is');
    }
    const committed = path.join(ROOT, WASM_RELATIVE_PATH);
    const builtWith = fs.readFileSync(committed + '.toolchain', 'utf8').trim();
    if (builtWith !== version.trim()) {
      return ctx.skip(`the committed .wasm was built with "${builtWith}", this machine has "${version}": other compilers emit other bytes`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-wasm-'));
    try {
      const out = path.join(dir, 'ghash.wasm');
      execFileSync('sh', [path.join(ROOT, 'wasm/build.sh'), out], { stdio: 'pipe' });
      expect(fs.readFileSync(out).equals(fs.readFileSync(committed))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the loaded kernel is small and exports only memory and functions', () => {
    const size = fs.statSync(path.join(ROOT, WASM_RELATIVE_PATH)).size;
    expect(size).toBeLessThan(16 * 1024);
    const mod = new WebAssembly.Module(fs.readFileSync(path.join(ROOT, WASM_RELATIVE_PATH)));
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
    expect(ghashKernel()).not.toBeNull();
  });
});
