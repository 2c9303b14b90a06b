/**
 * docs/protocol.md section 7 as an implementer uses it: the JSON schema blocks, taken from the
 * document alone, parse with a plain Avro library the two ways the document says (in order with one
 * table of names, or SyncResponse with `Event` substituted), and not the way it warns against
 * (SyncResponse on its own). Both ways encode the same bytes as the server.
 */
import fs from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { types } from '../../src/protocol/schemas.js';

const doc = fs.readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('<!-- schemas:begin -->'), doc.indexOf('<!-- schemas:end -->'));
const blocks = new Map([...section.matchAll(/### (\w+)\n\n```json\n([\s\S]*?)\n```/g)].map((m) => [m[1]!, JSON.parse(m[2]!) as Record<string, unknown>]));

/** A deep copy with every `"Event"` type reference replaced by `event`. */
function substitute(schema: unknown, name: string, definition: unknown): unknown {
  if (schema === name) return definition;
  if (Array.isArray(schema)) return schema.map((s) => substitute(s, name, definition));
  if (schema && typeof schema === 'object') return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'name' ? v : substitute(v, name, definition)]));
  return schema;
}

function findNamed(schema: unknown, name: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => findNamed(s, name)).find((x) => x !== undefined);
  if (!schema || typeof schema !== 'object') return undefined;
  const o = schema as Record<string, unknown>;
  if (o.name === name && (o.type === 'record' || o.type === 'enum' || o.type === 'fixed')) return o;
  return Object.values(o).map((v) => findNamed(v, name)).find((x) => x !== undefined);
}

const pushWithEvent = {
  requestId: -1,
  status: 'SUCCESS',
  errorCode: null,
  profileSyncResponse: null,
  userSyncResponse: null,
  eventSyncResponse: { eventListenersResponses: null, events: [{ seqNum: 3, eventClassFQN: 'org.example.Chat', eventData: Buffer.from('hi'), source: 'src', target: null }] },
  redirectSyncResponse: null,
};

describe('docs/protocol.md section 7: parsing the schemas as printed', () => {
  it('lists every wire record', () => {
    expect([...blocks.keys()]).toEqual(['ConnectBody', 'Connect', 'Connack', 'ResumeBody', 'Resume', 'Ticket', 'Sync', 'Disconnect', 'SyncRequest', 'SyncResponse', 'BootstrapRequest', 'AccessPointList', 'BootstrapResponse']);
  });
  it('SyncResponse on its own does not parse: `Event` is defined in SyncRequest (as the document warns)', () => {
    expect(() => avro.Type.forSchema(blocks.get('SyncResponse') as avro.Schema, { wrapUnions: false })).toThrow(/Event/);
  });
  it('every other schema parses on its own', () => {
    for (const [name, schema] of blocks) {
      if (name === 'SyncResponse') continue;
      expect(() => avro.Type.forSchema(schema as avro.Schema, { wrapUnions: false }), name).not.toThrow();
    }
  });
  it('in the order listed with one table of names, all parse, and SyncResponse encodes the bytes the server does', () => {
    const registry: Record<string, avro.Type> = {};
    const parsed = new Map([...blocks].map(([n, s]) => [n, avro.Type.forSchema(s as avro.Schema, { registry, wrapUnions: false })]));
    expect(parsed.get('SyncResponse')!.toBuffer(pushWithEvent).equals(types.syncResponse.toBuffer(pushWithEvent))).toBe(true);
  });
  it('SyncResponse with the Event record of SyncRequest substituted parses alone and encodes the same bytes', () => {
    const event = findNamed(blocks.get('SyncRequest'), 'Event');
    expect(event).toBeDefined();
    const standalone = substitute(blocks.get('SyncResponse'), 'Event', event);
    const t = avro.Type.forSchema(standalone as avro.Schema, { wrapUnions: false });
    expect(t.toBuffer(pushWithEvent).equals(types.syncResponse.toBuffer(pushWithEvent))).toBe(true);
  });
});
