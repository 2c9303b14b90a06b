/**
 * Byte-level mutators and a raw Avro writer for the fuzzer. The writer emits what avsc would not:
 * lengths and block counts that disagree with the bytes that follow, negative and overlong
 * varints, union branch indexes past the end, fixed fields of the wrong size.
 */
import type { Rng } from './fuzz-rng.js';

/** Zig-zag varint of any integer, as Avro encodes int/long; values past 64 bits give overlong varints. */
export function varint(n: bigint): Buffer {
  let z = n >= 0n ? n << 1n : ((-n) << 1n) - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

/** Varints a decoder must survive: extremes of int and long, past long, overlong and unterminated. */
export function weirdVarint(rng: Rng): Buffer {
  return rng.weighted<() => Buffer>([
    [3, () => varint(BigInt(rng.pick([0, 1, -1, 2, 127, 128, 255, 256, 4096, 65535, 65536])))],
    [3, () => varint(rng.pick([2n ** 31n - 1n, -(2n ** 31n), 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, -(2n ** 63n)]))],
    [2, () => varint(-BigInt(rng.range(1, 1 << 30)))],
    [1, () => varint(2n ** 64n + BigInt(rng.int(1000)))],
    [1, () => Buffer.concat([Buffer.alloc(rng.range(10, 14), 0xff), Buffer.from([0x01])])], // overlong
    [1, () => Buffer.alloc(rng.range(1, 9), 0xff)], // unterminated
  ])();
}

/** Avro `bytes`/`string`: length varint (or `len` instead) then the bytes. */
export function avroBytes(b: Uint8Array, len?: bigint): Buffer {
  return Buffer.concat([varint(len ?? BigInt(b.byteLength)), b]);
}

export function avroString(s: string): Buffer {
  return avroBytes(Buffer.from(s, 'utf8'));
}

/** Union branch `index` then the value (['null', X] unions: 0 = null, 1 = X). */
export function avroUnion(index: number | bigint, value: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([varint(BigInt(index)), value]);
}

/** Invalid UTF-8 sequences (lone continuation, truncated multibyte, overlong, surrogates, >U+10FFFF). */
export const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xa0, 0xa1]),
  Buffer.from([0xe2, 0x28, 0xa1]),
  Buffer.from([0xe0, 0xa4]),
  Buffer.from([0xf0, 0x28, 0x8c, 0xbc]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xfe]),
];

export function badUtf8String(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    if (rng.chance(0.5)) parts.push(Buffer.from(rng.pick(['a', 'event.Class', 'ok', '\u00e9', '\u{1f600}', '']), 'utf8'));
    parts.push(rng.pick(BAD_UTF8));
  }
  return Buffer.concat(parts);
}

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0c, 0x0d, 0x0e, 0x0f];

/** One random edit of `b` (returns a new buffer). */
export function mutateOnce(rng: Rng, b: Buffer): Buffer {
  const len = b.length;
  const at = (): number => rng.int(Math.max(1, len));
  const op = rng.int(11);
  switch (op) {
    case 0: {
      // flip 1-8 bits
      const out = Buffer.from(b);
      if (len === 0) return Buffer.from([rng.int(256)]);
      for (let i = rng.range(1, 8); i > 0; i--) {
        const p = rng.int(len);
        out[p] = out[p]! ^ (1 << rng.int(8));
      }
      return out;
    }
    case 1: {
      // set a byte to an interesting value
      const out = Buffer.from(b);
      if (len === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
      out[rng.int(len)] = rng.pick(INTERESTING_BYTES);
      return out;
    }
    case 2: {
      // truncate
      return b.subarray(0, rng.int(len + 1));
    }
    case 3: {
      // delete a range
      const p = at();
      const n = rng.range(1, Math.max(1, Math.min(64, len - p)));
      return Buffer.concat([b.subarray(0, p), b.subarray(p + n)]);
    }
    case 4: {
      // insert random bytes
      const p = rng.int(len + 1);
      return Buffer.concat([b.subarray(0, p), rng.bytes(rng.range(1, 16)), b.subarray(p)]);
    }
    case 5: {
      // insert a weird varint (a length or count that lies)
      const p = rng.int(len + 1);
      return Buffer.concat([b.subarray(0, p), weirdVarint(rng), b.subarray(p)]);
    }
    case 6: {
      // overwrite with a weird varint
      const p = at();
      const v = weirdVarint(rng);
      return Buffer.concat([b.subarray(0, p), v, b.subarray(Math.min(len, p + v.length))]);
    }
    case 7: {
      // duplicate a range
      const p = at();
      const n = rng.range(1, Math.max(1, Math.min(128, len - p)));
      return Buffer.concat([b.subarray(0, p + n), b.subarray(p, p + n), b.subarray(p + n)]);
    }
    case 8: {
      // append trailing bytes (the decoders must refuse them)
      return Buffer.concat([b, rng.bytes(rng.range(1, 8))]);
    }
    case 9: {
      // insert invalid UTF-8
      const p = rng.int(len + 1);
      return Buffer.concat([b.subarray(0, p), rng.pick(BAD_UTF8), b.subarray(p)]);
    }
    default: {
      // random block overwrite
      const out = Buffer.from(b);
      const p = at();
      const r = rng.bytes(rng.range(1, 32));
      r.copy(out, p, 0, Math.max(0, Math.min(r.length, len - p)));
      return out;
    }
  }
}

/** 1..`maxRounds` random edits. */
export function mutate(rng: Rng, b: Buffer, maxRounds = 4): Buffer {
  let out = b;
  for (let i = rng.range(1, maxRounds); i > 0; i--) out = mutateOnce(rng, out);
  return out;
}
