/**
 * Renders src/protocol/wire-types.ts, the TypeScript shapes of the decoded wire records, from the
 * Avro schema objects of src/protocol/wire-schemas.ts: one source, so the shapes cannot drift from
 * the schemas. `npm run docs` writes the file (gen-docs.ts); test/unit/wire-types.test.ts fails when
 * the file on disk is not what this renders.
 *
 * The mapping is how avsc decodes with `wrapUnions: false` (src/protocol/schemas.ts) and how the
 * SDK's codec (src/sdk/avro.ts) does: bytes and fixed are the type parameter B (Buffer on the
 * server, Uint8Array in the SDK); int, long, float and double are number (avsc's default long type:
 * a long beyond |2^53 - 2| is refused on decode, by the SDK too); a union is the union of its
 * branches (['null', T]: T | null); an enum is the union of its symbols; a map is Record<string, T>;
 * a record is an interface, generic over B when it holds bytes somewhere; a fixed is an alias of B
 * named after it. Avro `doc` strings become doc comments. Logical types are ignored, as avsc does
 * without its `logicalTypes` option.
 */
import { wireSchemas } from '../../src/protocol/wire-schemas.js';

/** The file this renders, from the repository root. */
export const WIRE_TYPES_FILE = 'src/protocol/wire-types.ts';

/**
 * TypeScript names that differ from the Avro name: `Sync` is the SYNC frame's record (SyncFrame
 * beside SyncRequest and SyncResponse), and `Event` would shadow the DOM's Event where imported.
 */
const TS_NAMES: Readonly<Record<string, string>> = { Sync: 'SyncFrame', Event: 'WireEvent' };

const PRIMITIVE_TS: Readonly<Record<string, string>> = {
  null: 'null',
  boolean: 'boolean',
  int: 'number',
  long: 'number',
  float: 'number',
  double: 'number',
  string: 'string',
};

/** A schema's type, resolved: named types by reference, bytes apart (they make a shape generic). */
type Ts =
  | { k: 'prim'; ts: string }
  | { k: 'bytes' }
  | { k: 'ref'; fullName: string }
  | { k: 'array'; items: Ts }
  | { k: 'map'; values: Ts }
  | { k: 'union'; branches: Ts[] };

interface Field { name: string; doc: string | undefined; type: Ts }

type Named = { fullName: string; doc: string | undefined } & (
  | { kind: 'record'; fields: Field[] }
  | { kind: 'enum'; symbols: string[] }
  | { kind: 'fixed'; size: number }
);

type Obj = Readonly<Record<string, unknown>>;

function fail(msg: string): never {
  throw new Error(`gen-wire-types: ${msg}`);
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') fail(`${where}: "${key}" is not a string`);
  return v;
}

function optDoc(o: Obj): string | undefined {
  return typeof o['doc'] === 'string' ? o['doc'] : undefined;
}

const shortName = (fullName: string): string => fullName.slice(fullName.lastIndexOf('.') + 1);

/** Walks schemas the way avsc parses them into one registry: definitions in order, names qualified by the enclosing namespace. */
class Registry {
  readonly named = new Map<string, Named>();

  add(schema: unknown, namespace: string | undefined): Ts {
    if (typeof schema === 'string') return this.byName(schema, namespace);
    if (Array.isArray(schema)) return { k: 'union', branches: schema.map((b) => this.add(b, namespace)) };
    if (typeof schema !== 'object' || schema === null) return fail(`not a schema: ${JSON.stringify(schema)}`);
    const o = schema as Obj;
    const type = o['type'];
    if (typeof type !== 'string') return this.add(type, namespace); // { type: <schema> }
    switch (type) {
      case 'array':
        return { k: 'array', items: this.add(o['items'], namespace) };
      case 'map':
        return { k: 'map', values: this.add(o['values'], namespace) };
      case 'record':
      case 'error':
      case 'enum':
      case 'fixed':
        return this.define(o, type, namespace);
      default:
        return this.byName(type, namespace); // { type: 'long', logicalType: ... } and the like
    }
  }

  private byName(name: string, namespace: string | undefined): Ts {
    if (name === 'bytes') return { k: 'bytes' };
    const prim = PRIMITIVE_TS[name];
    if (prim !== undefined) return { k: 'prim', ts: prim };
    const candidates = name.includes('.') ? [name] : [namespace ? `${namespace}.${name}` : name, name];
    const fullName = candidates.find((n) => this.named.has(n));
    if (fullName === undefined) return fail(`unknown type name ${name} (namespace ${namespace ?? 'none'})`);
    return { k: 'ref', fullName };
  }

  private define(o: Obj, kind: string, outer: string | undefined): Ts {
    const name = str(o, 'name', kind);
    const explicit = typeof o['namespace'] === 'string' ? o['namespace'] : undefined;
    const fullName = name.includes('.') ? name : explicit !== undefined ? (explicit ? `${explicit}.${name}` : name) : outer ? `${outer}.${name}` : name;
    if (this.named.has(fullName)) fail(`${fullName} defined twice`);
    const namespace = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
    const doc = optDoc(o);
    if (kind === 'enum') {
      const symbols = o['symbols'];
      if (!Array.isArray(symbols) || !symbols.every((s) => typeof s === 'string')) fail(`${fullName}: symbols`);
      this.named.set(fullName, { fullName, doc, kind: 'enum', symbols: [...symbols] });
    } else if (kind === 'fixed') {
      const size = o['size'];
      if (typeof size !== 'number') fail(`${fullName}: size`);
      this.named.set(fullName, { fullName, doc, kind: 'fixed', size });
    } else {
      // Registered before its fields are walked: the record comes first in the output, and a field may refer to it.
      const fields: Field[] = [];
      this.named.set(fullName, { fullName, doc, kind: 'record', fields });
      const list = o['fields'];
      if (!Array.isArray(list)) fail(`${fullName}: fields`);
      for (const f of list as Obj[]) fields.push({ name: str(f, 'name', fullName), doc: optDoc(f), type: this.add(f['type'], namespace) });
    }
    return { k: 'ref', fullName };
  }
}

/** Renders declarations for the named types of `schemas`, parsed in order into one registry. */
export function renderTypes(schemas: readonly unknown[]): string {
  const reg = new Registry();
  for (const s of schemas) reg.add(s, undefined);

  const tsNames = new Map<string, string>();
  for (const fullName of reg.named.keys()) {
    const short = shortName(fullName);
    const ts = TS_NAMES[short] ?? short;
    const clash = [...tsNames].find(([, t]) => t === ts);
    if (clash) fail(`${fullName} and ${clash[0]} would both be ${ts}`);
    tsNames.set(fullName, ts);
  }

  const generic = new Map<string, boolean>();
  const needsB = (fullName: string): boolean => {
    const known = generic.get(fullName);
    if (known !== undefined) return known;
    generic.set(fullName, false); // a record that refers to itself: its own reference adds nothing
    const n = reg.named.get(fullName)!;
    const v = n.kind === 'fixed' || (n.kind === 'record' && n.fields.some((f) => holdsBytes(f.type)));
    generic.set(fullName, v);
    return v;
  };
  const holdsBytes = (t: Ts): boolean => {
    switch (t.k) {
      case 'bytes': return true;
      case 'prim': return false;
      case 'ref': return needsB(t.fullName);
      case 'array': return holdsBytes(t.items);
      case 'map': return holdsBytes(t.values);
      case 'union': return t.branches.some(holdsBytes);
    }
  };

  const render = (t: Ts): string => {
    switch (t.k) {
      case 'bytes': return 'B';
      case 'prim': return t.ts;
      case 'ref': return tsNames.get(t.fullName)! + (needsB(t.fullName) ? '<B>' : '');
      case 'array': {
        const items = render(t.items);
        return /^[\w<>]+$/.test(items) ? `${items}[]` : `Array<${items}>`;
      }
      case 'map': return `Record<string, ${render(t.values)}>`;
      case 'union': {
        // avsc's order is ['null', T]; TypeScript's habit is T | null.
        const parts = t.branches.filter((b) => !(b.k === 'prim' && b.ts === 'null')).map(render);
        if (parts.length < t.branches.length) parts.push('null');
        return parts.join(' | ');
      }
    }
  };

  const out: string[] = [];
  for (const n of reg.named.values()) {
    const ts = tsNames.get(n.fullName)!;
    const param = needsB(n.fullName) ? '<B extends Uint8Array = Uint8Array>' : '';
    const lines = docComment([n.doc, `Avro ${n.kind} ${n.fullName}${n.kind === 'fixed' ? `: ${n.size} bytes` : ''}.`], '');
    if (n.kind === 'enum') {
      const one = `export type ${ts} = ${n.symbols.map((s) => `'${s}'`).join(' | ')};`;
      lines.push(one.length <= 110 ? one : [`export type ${ts} =`, ...n.symbols.map((s) => `  | '${s}'`)].join('\n') + ';');
    } else if (n.kind === 'fixed') {
      lines.push(`export type ${ts}${param} = B;`);
    } else {
      lines.push(`export interface ${ts}${param} {`);
      for (const f of n.fields) lines.push(...docComment([f.doc], '  '), `  ${f.name}: ${render(f.type)};`);
      lines.push('}');
    }
    out.push(lines.join('\n'));
  }
  return out.join('\n\n') + '\n';
}

function docComment(parts: Array<string | undefined>, indent: string): string[] {
  const text = parts.filter((p): p is string => p !== undefined && p.trim() !== '').join('\n').replace(/\*\//g, '*\\/');
  if (text === '') return [];
  const lines = text.split('\n').map((l) => l.trim());
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)), `${indent} */`];
}

const HEADER = `/**
 * GENERATED by test/helpers/gen-wire-types.ts from the Avro schemas of src/protocol/wire-schemas.ts
 * (wireSchemas, in its order): do not edit. After changing a schema run \`npm run docs\`;
 * test/unit/wire-types.test.ts fails while this file and the schemas differ.
 *
 * The TypeScript shapes of the decoded wire records, as avsc (src/protocol/schemas.ts, wrapUnions:
 * false) and the SDK's codec (src/sdk/avro.ts) decode them: bytes and fixed are B (schemas.ts fixes
 * B = Buffer; the SDK keeps Uint8Array), int, long, float and double are number (a long beyond
 * |2^53 - 2| is refused on decode), ['null', T] is T | null, an enum is the union of its symbols.
 * Types only, no runtime code: browser-safe (the SDK imports it through wire-schemas.ts).
 */
`;

/** The whole of src/protocol/wire-types.ts. Pure: the same schemas give the same text. */
export function renderWireTypes(): string {
  return HEADER + '\n' + renderTypes(Object.values(wireSchemas));
}
