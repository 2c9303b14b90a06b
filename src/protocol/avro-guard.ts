/**
 * A guard on avsc's binary decoding of arrays and maps (avsc 5.7). avsc trusts an array's block
 * count: it allocates `new Array(count)` and reads that many items, and reads past the end of the
 * buffer yield zeros instead of throwing, so a 6-byte body announcing 2^32 - 1 items kept the
 * event loop busy until the heap ran out. Every item of every array or map in latchkey's schemas
 * takes at least one byte, so a block count larger than the bytes left is malformed: refused here,
 * before any allocation. (A schema with zero-byte items, e.g. an array of null, would need this
 * relaxed; test/unit/avro-guard.test.ts shows the guard and the check that no such schema exists.)
 *
 * Imported for its effect by src/protocol/schemas.ts, so every decoder (server and SDK) has it.
 */
import avro from 'avsc';

interface Tap {
  buf: Uint8Array;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
}
interface Readable {
  _read(tap: Tap): unknown;
}

export class AvroBlockCountError extends Error {}

function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong(); // block size in bytes, not needed
  }
  if (n > tap.buf.length - tap.pos) throw new AvroBlockCountError(`block of ${n} items with ${tap.buf.length - tap.pos} bytes left`);
  return n;
}

const t = avro.types as unknown as Record<string, { prototype: Record<string, unknown> }>;

t.ArrayType!.prototype._read = function (this: { itemsType: Readable }, tap: Tap): unknown[] {
  const items = this.itemsType;
  const val: unknown[] = [];
  let n: number;
  while ((n = blockCount(tap))) {
    while (n--) val.push(items._read(tap));
  }
  return val;
};

t.MapType!.prototype._read = function (this: { valuesType: Readable }, tap: Tap): Record<string, unknown> {
  const values = this.valuesType;
  const val: Record<string, unknown> = {};
  let n: number;
  while ((n = blockCount(tap))) {
    while (n--) {
      const key = tap.readString();
      val[key] = values._read(tap);
    }
  }
  return val;
};

/**
 * avsc decodes an `int` as a zig-zag varint of any length and does not check its range, so a
 * 5-byte varint of 2^40 decodes "fine" and only fails when the value is written back (a requestId
 * echoed in the SyncResponse: found by `npm run fuzz`, it threw out of the session's answer chain).
 * An int outside 32 bits is malformed input: refused at decode.
 */
export class AvroIntRangeError extends Error {}

interface IntTap {
  readInt(): number;
}

t.IntType!.prototype._read = function (tap: IntTap): number {
  const n = tap.readInt();
  if (n > 0x7fffffff || n < -0x80000000) throw new AvroIntRangeError(`int out of range: ${n}`);
  return n;
};

export const AVRO_GUARD_INSTALLED = true;
