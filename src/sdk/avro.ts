/**
 * The SDK's Avro binary codec: just enough of the Avro specification for the wire schemas of
 * src/protocol/wire-schemas.ts (records, enums, fixed, bytes, string, int, long, float, double,
 * boolean, null, arrays, and ['null', X] unions decoded as plain values like avsc's
 * `wrapUnions: false`), on Uint8Array, with no Node module or global.
 *
 * Why not avsc in the SDK: avsc needs Node's stream/util/zlib/path and Buffer; bundled for a
 * browser with polyfills the SDK was 74 KB min+gzip, this codec and the whole SDK are a fraction of
 * that (docs/performance.md, "SDK browser bundle"). test/unit/sdk-avro.test.ts checks it against
 * avsc on every SDK message, both ways, byte for byte.
 *
 * Decoding is defensive the way src/protocol/avro-guard.ts makes avsc defensive on the server: an
 * int outside 32 bits, a long beyond 2^53, a length or block count larger than the bytes left,
 * a bad union or enum index and trailing bytes are errors (AvroDecodeError), never a huge allocation.
 */

export class AvroDecodeError extends Error {
  override name = 'AvroDecodeError';
}
export class AvroEncodeError extends Error {
  override name = 'AvroEncodeError';
}

/** A compiled schema: encode a value to its Avro binary form, decode a whole buffer to a value. */
export interface AvroCodec<T> {
  toBuffer(value: T): Uint8Array;
  fromBuffer(bytes: Uint8Array): T;
}

/** avsc's bound for a long held in a JS number (isSafeLong): the SDK accepts exactly the same range. */
const MAX_LONG = 9007199254740990;

class Writer {
  buf = new Uint8Array(256);
  pos = 0;
  private view = new DataView(this.buf.buffer);
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  /**
   * Zig-zag varint of an integer of at most 53 bits. Computed on half = |zig-zag| / 2 and the sign
   * bit, never on the zig-zag value itself: that needs 54 bits, which a double does not hold exactly.
   */
  long(n: number): void {
    this.ensure(10);
    let half = n >= 0 ? n : -n - 1;
    let b = (half % 0x40) * 2 + (n < 0 ? 1 : 0);
    half = Math.floor(half / 0x40);
    while (half > 0) {
      this.buf[this.pos++] = b | 0x80;
      b = half % 0x80;
      half = Math.floor(half / 0x80);
    }
    this.buf[this.pos++] = b;
  }
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  float(n: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, n, true);
    this.pos += 4;
  }
  double(n: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, n, true);
    this.pos += 8;
  }
}

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get left(): number {
    return this.buf.length - this.pos;
  }
  /** The inverse of Writer.long, exact for the whole range avsc accepts: |n| <= 2^53 - 2. */
  long(): number {
    let b = this.buf[this.pos++];
    if (b === undefined) throw new AvroDecodeError('truncated varint');
    const negative = (b & 1) === 1;
    let half = (b & 0x7f) >> 1;
    let scale = 0x40;
    for (let i = 1; b & 0x80; i++) {
      if (i === 10) throw new AvroDecodeError('varint longer than 10 bytes');
      b = this.buf[this.pos++];
      if (b === undefined) throw new AvroDecodeError('truncated varint');
      half += (b & 0x7f) * scale;
      scale *= 0x80;
    }
    const n = negative ? -half - 1 : half;
    if (!(n >= -MAX_LONG && n <= MAX_LONG)) throw new AvroDecodeError('long beyond 2^53 - 2');
    return n;
  }
  int(): number {
    const n = this.long();
    if (n > 0x7fffffff || n < -0x80000000) throw new AvroDecodeError(`int out of range: ${n}`);
    return n;
  }
  length(): number {
    const n = this.long();
    if (n < 0 || n > this.left) throw new AvroDecodeError(`length ${n} with ${this.left} bytes left`);
    return n;
  }
  raw(n: number): Uint8Array {
    if (n > this.left) throw new AvroDecodeError(`${n} bytes wanted, ${this.left} left`);
    // A copy: decoded values must not keep (or alias) the frame they came from.
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  float(): number {
    if (this.left < 4) throw new AvroDecodeError('truncated float');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  double(): number {
    if (this.left < 8) throw new AvroDecodeError('truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** An array block's item count (0 ends the array). Every item takes at least one byte. */
  blockCount(): number {
    let n = this.long();
    if (n < 0) {
      n = -n;
      this.long(); // the block's size in bytes, not needed
    }
    if (n > this.left) throw new AvroDecodeError(`block of ${n} items with ${this.left} bytes left`);
    return n;
  }
}

interface Node {
  write(w: Writer, v: unknown): void;
  read(r: Reader): unknown;
}

type SchemaJson = string | readonly SchemaJson[] | { readonly [k: string]: unknown };

const utf8 = new TextEncoder();
// Not fatal: avsc decodes strings leniently too (invalid sequences become U+FFFD).
const fromUtf8 = new TextDecoder();

function fail(path: string, want: string, v: unknown): never {
  throw new AvroEncodeError(`${path}: expected ${want}, got ${v === null ? 'null' : typeof v}`);
}

function intNode(path: string): Node {
  return {
    write(w, v) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v > 0x7fffffff || v < -0x80000000) fail(path, 'an int', v);
      w.long(v);
    },
    read: (r) => r.int(),
  };
}

function primitive(name: string, path: string): Node | null {
  switch (name) {
    case 'null':
      return {
        write(_w, v) {
          if (v !== null && v !== undefined) fail(path, 'null', v);
        },
        read: () => null,
      };
    case 'boolean':
      return {
        write(w, v) {
          if (typeof v !== 'boolean') fail(path, 'a boolean', v);
          w.raw(new Uint8Array([v ? 1 : 0]));
        },
        read(r) {
          const b = r.raw(1)[0];
          if (b !== 0 && b !== 1) throw new AvroDecodeError(`${path}: boolean byte ${b}`);
          return b === 1;
        },
      };
    case 'int':
      return intNode(path);
    case 'long':
      return {
        write(w, v) {
          if (typeof v !== 'number' || !Number.isInteger(v) || v > MAX_LONG || v < -MAX_LONG) fail(path, 'a long (|n| <= 2^53 - 2)', v);
          w.long(v);
        },
        read: (r) => r.long(),
      };
    case 'float':
      return {
        write(w, v) {
          if (typeof v !== 'number') fail(path, 'a float', v);
          w.float(v);
        },
        read: (r) => r.float(),
      };
    case 'double':
      return {
        write(w, v) {
          if (typeof v !== 'number') fail(path, 'a double', v);
          w.double(v);
        },
        read: (r) => r.double(),
      };
    case 'bytes':
      return {
        write(w, v) {
          if (!(v instanceof Uint8Array)) fail(path, 'bytes (Uint8Array)', v);
          w.long(v.length);
          w.raw(v);
        },
        read: (r) => r.raw(r.length()),
      };
    case 'string':
      return {
        write(w, v) {
          if (typeof v !== 'string') fail(path, 'a string', v);
          const b = utf8.encode(v);
          w.long(b.length);
          w.raw(b);
        },
        read: (r) => fromUtf8.decode(r.raw(r.length())),
      };
    default:
      return null;
  }
}

/** Named types (records, enums, fixed) by full name, shared by the schemas compiled together. */
export type AvroRegistry = Map<string, Node>;

function fullName(name: string, namespace: string): string {
  return name.includes('.') || !namespace ? name : `${namespace}.${name}`;
}

function compile(schema: SchemaJson, registry: AvroRegistry, namespace: string, path: string): Node {
  if (typeof schema === 'string') {
    const p = primitive(schema, path);
    if (p) return p;
    const named = registry.get(fullName(schema, namespace)) ?? registry.get(schema);
    if (!named) throw new Error(`${path}: unknown type ${schema}`);
    return named;
  }
  if (Array.isArray(schema)) return union(schema as readonly SchemaJson[], registry, namespace, path);
  const s = schema as { readonly [k: string]: unknown };
  const type = s.type as SchemaJson;
  if (typeof type !== 'string') return compile(type, registry, namespace, path);
  const name = typeof s.name === 'string' ? s.name : '';
  const ns = typeof s.namespace === 'string' ? s.namespace : name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : namespace;
  const register = (node: Node): Node => {
    const full = fullName(name, ns);
    if (registry.has(full)) throw new Error(`${path}: type ${full} defined twice`);
    registry.set(full, node);
    return node;
  };
  switch (type) {
    case 'record': {
      const fields: Array<{ name: string; node: Node; hasDefault: boolean; def: unknown }> = [];
      // Registered before its fields compile, as the specification allows a record to name itself.
      const node = register({
        write(w, v) {
          if (v === null || typeof v !== 'object') fail(path, `a ${name} record`, v);
          for (const f of fields) {
            let fv = (v as Record<string, unknown>)[f.name];
            if (fv === undefined && f.hasDefault) fv = f.def;
            f.node.write(w, fv);
          }
        },
        read(r) {
          const out: Record<string, unknown> = {};
          for (const f of fields) out[f.name] = f.node.read(r);
          return out;
        },
      });
      for (const f of s.fields as ReadonlyArray<{ name: string; type: SchemaJson; default?: unknown }>) {
        fields.push({ name: f.name, node: compile(f.type, registry, ns, `${path}.${f.name}`), hasDefault: 'default' in f, def: f.default });
      }
      return node;
    }
    case 'enum': {
      const symbols = s.symbols as readonly string[];
      return register({
        write(w, v) {
          const i = typeof v === 'string' ? symbols.indexOf(v) : -1;
          if (i < 0) fail(path, `one of ${symbols.join('|')}`, v);
          w.long(i);
        },
        read(r) {
          const i = r.long();
          const sym = symbols[i];
          if (sym === undefined) throw new AvroDecodeError(`${path}: enum index ${i}`);
          return sym;
        },
      });
    }
    case 'fixed': {
      const size = s.size as number;
      return register({
        write(w, v) {
          if (!(v instanceof Uint8Array) || v.length !== size) fail(path, `${size} bytes`, v);
          w.raw(v);
        },
        read: (r) => r.raw(size),
      });
    }
    case 'array': {
      const items = compile(s.items as SchemaJson, registry, namespace, `${path}[]`);
      return {
        write(w, v) {
          if (!Array.isArray(v)) fail(path, 'an array', v);
          if (v.length > 0) {
            w.long(v.length);
            for (const x of v) items.write(w, x);
          }
          w.long(0);
        },
        read(r) {
          const out: unknown[] = [];
          let n: number;
          while ((n = r.blockCount()) !== 0) {
            while (n-- > 0) out.push(items.read(r));
          }
          return out;
        },
      };
    }
    default: {
      const p = primitive(type, path);
      if (p) return p;
      throw new Error(`${path}: Avro type ${type} is not supported by the SDK codec`);
    }
  }
}

/** ['null', X] (either order): null or a value of X, as avsc's wrapUnions: false decodes it. */
function union(branches: readonly SchemaJson[], registry: AvroRegistry, namespace: string, path: string): Node {
  const nullAt = branches.indexOf('null');
  if (branches.length !== 2 || nullAt < 0) throw new Error(`${path}: only ['null', X] unions are supported by the SDK codec`);
  const valueAt = 1 - nullAt;
  const value = compile(branches[valueAt]!, registry, namespace, path);
  return {
    write(w, v) {
      if (v === null || v === undefined) w.long(nullAt);
      else {
        w.long(valueAt);
        value.write(w, v);
      }
    },
    read(r) {
      const i = r.long();
      if (i === nullAt) return null;
      if (i === valueAt) return value.read(r);
      throw new AvroDecodeError(`${path}: union index ${i}`);
    },
  };
}

/**
 * Compile `schema` (its named types join `registry`, so later schemas may refer to them by name).
 * Throws when the schema uses something the codec does not support: caught at load, not on the wire.
 */
export function avroCodec<T>(schema: unknown, registry: AvroRegistry = new Map()): AvroCodec<T> {
  const node = compile(schema as SchemaJson, registry, '', typeof schema === 'object' && schema && 'name' in schema ? String(schema.name) : 'value');
  return {
    toBuffer(value: T): Uint8Array {
      const w = new Writer();
      node.write(w, value);
      return w.buf.slice(0, w.pos);
    },
    fromBuffer(bytes: Uint8Array): T {
      const r = new Reader(bytes);
      const v = node.read(r) as T;
      if (r.left !== 0) throw new AvroDecodeError(`${r.left} trailing bytes`);
      return v;
    },
  };
}
