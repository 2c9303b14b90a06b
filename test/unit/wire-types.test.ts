/**
 * src/protocol/wire-types.ts against the Avro schemas: the file is generated from them
 * (test/helpers/gen-wire-types.ts) and this fails when the two drift. Also the generator's mapping
 * on the schema features the wire schemas do not use yet (maps, booleans, wider unions, docs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTypes, renderWireTypes, WIRE_TYPES_FILE } from '../helpers/gen-wire-types.js';
import { ROOT } from '../helpers/root.js';

describe('src/protocol/wire-types.ts', () => {
  it('is what the generator renders from the Avro schemas', () => {
    const onDisk = fs.readFileSync(path.join(ROOT, WIRE_TYPES_FILE), 'utf8');
    expect(onDisk, `${WIRE_TYPES_FILE} differs from the Avro schemas in src/protocol/wire-schemas.ts: run npm run docs`).toBe(renderWireTypes());
  });
});

describe('gen-wire-types mapping', () => {
  it('maps every Avro type the way avsc decodes it (wrapUnions: false)', () => {
    const ts = renderTypes([{
      type: 'record',
      name: 'Outer',
      namespace: 'x.y',
      doc: 'An outer record.',
      fields: [
        { name: 'flag', type: 'boolean', doc: 'Set when on.' },
        { name: 'ratio', type: { type: 'double' } },
        { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'tags', type: { type: 'map', values: ['null', 'string'] } },
        { name: 'either', type: ['null', 'int', 'string'] },
        { name: 'many', type: { type: 'array', items: ['null', 'bytes'] } },
        { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'n', type: 'int' }] } },
        { name: 'again', type: 'Inner' },
        { name: 'byFullName', type: 'x.y.Inner' },
        { name: 'id', type: { type: 'fixed', name: 'Id', namespace: 'z', size: 4 } },
        { name: 'idAgain', type: 'z.Id' },
        { name: 'e', type: { type: 'enum', name: 'Colour', symbols: ['RED', 'GREEN'] } },
      ],
    }]);
    expect(ts).toContain('/**\n * An outer record.\n * Avro record x.y.Outer.\n */\nexport interface Outer<B extends Uint8Array = Uint8Array> {');
    expect(ts).toContain('  /** Set when on. */\n  flag: boolean;');
    for (const line of [
      'ratio: number;',
      'at: number;',
      'tags: Record<string, string | null>;',
      'either: number | string | null;',
      'many: Array<B | null>;',
      'inner: Inner;',
      'again: Inner;',
      'byFullName: Inner;',
      'id: Id<B>;',
      'idAgain: Id<B>;',
      'e: Colour;',
      'export interface Inner {',
      'export type Id<B extends Uint8Array = Uint8Array> = B;',
      "export type Colour = 'RED' | 'GREEN';",
    ]) expect(ts).toContain(line);
  });
  it('refuses an unknown name, a name defined twice and two types with one TypeScript name', () => {
    expect(() => renderTypes([{ type: 'record', name: 'A', fields: [{ name: 'b', type: 'Missing' }] }])).toThrow(/unknown type name Missing/);
    const e = { type: 'enum', name: 'E', symbols: ['X'] };
    expect(() => renderTypes([e, e])).toThrow(/E defined twice/);
    expect(() => renderTypes([{ ...e, namespace: 'p' }, { ...e, namespace: 'q' }])).toThrow(/would both be E/);
  });
});
