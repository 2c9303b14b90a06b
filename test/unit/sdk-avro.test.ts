/**
 * The SDK's own Avro codec (src/sdk/avro.ts) against avsc, the server's: for every wire message the
 * SDK encodes or decodes, random values (every union branch, empty and filled arrays, edge ints and
 * longs, non-ASCII strings) encode to the same bytes and decode both ways to the same value; and
 * malformed input is refused the way src/protocol/avro-guard.ts makes avsc refuse it.
 */
import { describe, expect, it } from 'vitest';
import { types, wireSchemas } from '../../src/protocol/schemas.js';
import wire from '../../src/sdk/wire.js';
import { AvroDecodeError, AvroEncodeError, avroCodec } from '../../src/sdk/avro.js';

type Json = string | readonly Json[] | { readonly [k: string]: unknown };

/** A small deterministic PRNG (mulberry32): the same values every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', 'a', 'org.example.Chat', 'żółw 🐢', 'x'.repeat(300)];
const INTS = [0, 1, -1, 63, 64, -64, -65, 0x7fffffff, -0x80000000, 123456];
// avsc computes the zig-zag form in a double, so it is exact only while that fits 53 bits: |n| <
// 2^52 (it encodes -(2^53 - 2) as +(2^53 - 2)). The wire's longs are timestamps and counters.
const LONGS = [0, -1, 2 ** 31, -(2 ** 40), 2 ** 52 - 1, -(2 ** 52), 1_760_000_000_000];

/** A random value of `schema`; named types come from `named` (filled as they are met). */
function gen(schema: Json, rnd: () => number, named: Map<string, Json>, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  if (typeof schema === 'string') {
    switch (schema) {
      case 'null': return null;
      case 'boolean': return rnd() < 0.5;
      case 'int': return rnd() < 0.5 ? pick(INTS) : Math.floor(rnd() * 2 ** 32) - 2 ** 31;
      case 'long': return rnd() < 0.5 ? pick(LONGS) : Math.floor((rnd() - 0.5) * 2 ** 52);
      case 'float': return Math.fround((rnd() - 0.5) * 1e6);
      case 'double': return (rnd() - 0.5) * 1e12;
      case 'bytes': return bytes(pick([0, 1, 16, 200]));
      case 'string': return pick(STRINGS);
      default: return gen(named.get(schema)!, rnd, named, depth);
    }
  }
  if (Array.isArray(schema)) {
    const branch = depth > 6 || rnd() < 0.35 ? 'null' : schema.find((b) => b !== 'null')!;
    return gen(branch, rnd, named, depth + 1);
  }
  const s = schema as { type: Json; name?: string; fields?: Array<{ name: string; type: Json }>; symbols?: string[]; size?: number; items?: Json };
  if (typeof s.name === 'string') named.set(s.name, s as Json);
  switch (s.type) {
    case 'record': return Object.fromEntries(s.fields!.map((f) => [f.name, gen(f.type, rnd, named, depth + 1)]));
    case 'enum': return pick(s.symbols!);
    case 'fixed': return bytes(s.size!);
    case 'array': return Array.from({ length: pick([0, 1, 3]) }, () => gen(s.items!, rnd, named, depth + 1));
    default: return gen(s.type, rnd, named, depth);
  }
}

/** Buffers (avsc) and Uint8Arrays (SDK) compare as plain byte arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const toBuf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
/** avsc wants Buffers where the SDK gives Uint8Arrays. */
function buffers(v: unknown): unknown {
  if (v instanceof Uint8Array) return toBuf(v);
  if (Array.isArray(v)) return v.map(buffers);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, buffers(x)]));
  return v;
}

const PAIRS = [
  ['ConnectBody', 'connectBody'],
  ['Connect', 'connect'],
  ['Connack', 'connack'],
  ['ResumeBody', 'resumeBody'],
  ['Resume', 'resume'],
  ['Ticket', 'ticket'],
  ['Sync', 'sync'],
  ['Disconnect', 'disconnect'],
  ['SyncRequest', 'syncRequest'],
  ['SyncResponse', 'syncResponse'],
  ['BootstrapRequest', 'bootstrapRequest'],
  ['AccessPointList', 'accessPointList'],
  ['BootstrapResponse', 'bootstrapResponse'],
] as const;

describe('SDK Avro codec against avsc', () => {
  it('covers every wire schema', () => {
    expect(PAIRS.map(([n]) => n).sort()).toEqual(Object.keys(wireSchemas).sort());
  });

  // SyncResponse names Event, defined in SyncRequest, and ResumeBody names ConnectBody's KeyHash and
  // Nonce: generate with those names known.
  const named = new Map<string, Json>();
  gen(wireSchemas.ConnectBody as unknown as Json, prng(0), named);
  gen(wireSchemas.SyncRequest as unknown as Json, prng(0), named);

  for (const [name, key] of PAIRS) {
    it(`${name}: same bytes, and each decodes what the other encodes`, () => {
      const rnd = prng(name.length * 7919);
      for (let i = 0; i < 300; i++) {
        const value = gen(wireSchemas[name] as unknown as Json, rnd, named);
        const sdk = (wire[key] as { toBuffer(v: unknown): Uint8Array }).toBuffer(value);
        const avsc = types[key].toBuffer(buffers(value));
        expect([...sdk]).toEqual([...avsc]);
        expect(plain(types[key].fromBuffer(toBuf(sdk)))).toEqual(plain(value));
        expect(plain((wire[key] as { fromBuffer(b: Uint8Array): unknown }).fromBuffer(new Uint8Array(avsc)))).toEqual(plain(value));
      }
    });
  }

  it('longs are exact over the whole range avsc accepts, |n| <= 2^53 - 2, wider than where avsc itself is exact', () => {
    const long = avroCodec<number>('long');
    for (const n of [2 ** 53 - 2, -(2 ** 53 - 2), 2 ** 52 + 1, -(2 ** 52 + 1), -(2 ** 52) - 3]) expect(long.fromBuffer(long.toBuffer(n))).toBe(n);
    expect(() => long.fromBuffer(new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]))).toThrow(AvroDecodeError); // 2^53 - 1
  });

  it('refuses malformed input: huge block counts, out-of-range ints, bad indexes, truncation, trailing bytes', () => {
    const ints = avroCodec<number[]>({ type: 'array', items: 'int' });
    // 6 bytes announcing 2^31 items: refused before any allocation.
    expect(() => ints.fromBuffer(new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0x0f, 0]))).toThrow(AvroDecodeError);
    const int = avroCodec<number>('int');
    expect(() => int.fromBuffer(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x02]))).toThrow(AvroDecodeError);
    expect(() => int.fromBuffer(new Uint8Array([0x80]))).toThrow(AvroDecodeError);
    expect(() => int.fromBuffer(new Uint8Array([2, 0]))).toThrow(AvroDecodeError);
    expect(() => avroCodec<string>('string').fromBuffer(new Uint8Array([20, 0x61]))).toThrow(AvroDecodeError);
    expect(() => avroCodec<unknown>(['null', 'int']).fromBuffer(new Uint8Array([4]))).toThrow(AvroDecodeError);
    expect(() => avroCodec<unknown>({ type: 'enum', name: 'E', symbols: ['A'] }).fromBuffer(new Uint8Array([2]))).toThrow(AvroDecodeError);
    // The server's guard refuses the same bytes.
    expect(() => types.syncRequest.fromBuffer(Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]))).toThrow();
  });

  it('refuses values that do not fit the schema on encode, as avsc does', () => {
    expect(() => avroCodec<number>('int').toBuffer(2 ** 31)).toThrow(AvroEncodeError);
    expect(() => avroCodec<number>('long').toBuffer(1.5)).toThrow(AvroEncodeError);
    expect(() => avroCodec<number>('long').toBuffer(2 ** 53 - 1)).toThrow(AvroEncodeError);
    expect(() => avroCodec<unknown>({ type: 'fixed', name: 'F', size: 4 }).toBuffer(new Uint8Array(3))).toThrow(AvroEncodeError);
    expect(() => avroCodec<unknown>({ type: 'enum', name: 'E', symbols: ['A'] }).toBuffer('B')).toThrow(AvroEncodeError);
    expect(() => wire.syncRequest.toBuffer({ requestId: 1 } as never)).not.toThrow(); // optional parts default to null
    expect(() => wire.disconnect.toBuffer({ errorCode: null } as never)).toThrow(AvroEncodeError);
  });
});
