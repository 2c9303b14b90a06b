/**
 * A tiny body announcing a huge Avro array must be refused at once (it used to run the server out
 * of memory: review finding), while genuine arrays decode as before.
 */
import { describe, expect, it } from 'vitest';
import { decodeSyncRequest } from '../../src/protocol/frames.js';
import { emptySyncRequest, types, wireSchemas } from '../../src/protocol/schemas.js';

describe('Avro int range guard', () => {
  it('refuses a SyncRequest whose int requestId is a varint beyond 32 bits (npm run fuzz found it: echoing it back threw)', () => {
    // requestId = zig-zag varint of 2^40 (5+ bytes), then the rest of an empty SyncRequest.
    const zz = (BigInt(2) ** 40n) * 2n;
    const bytes: number[] = [];
    let v = zz;
    while (v >= 0x80n) {
      bytes.push(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    bytes.push(Number(v));
    const evil = Buffer.concat([Buffer.from(bytes), types.syncRequest.toBuffer(emptySyncRequest(1)).subarray(1)]);
    expect(decodeSyncRequest(evil)).toEqual({ ok: false, code: 'LK_SYNC_MALFORMED' });
    expect(decodeSyncRequest(types.syncRequest.toBuffer(emptySyncRequest(0x7fffffff))).ok).toBe(true);
    expect(decodeSyncRequest(types.syncRequest.toBuffer(emptySyncRequest(-0x80000000))).ok).toBe(true);
  });
});

describe('Avro block count guard', () => {
  // No timing assertions (benches measure speed): without the guard these decodes spun for ~18 s
  // and then aborted the process, so the test's own timeout is the bound.
  it('refuses a 6-byte BootstrapRequest announcing 2^32 - 1 protocol versions', { timeout: 5000 }, () => {
    expect(() => types.bootstrapRequest.fromBuffer(Buffer.from('00feffffff1f', 'hex'))).toThrow();
  });

  it('refuses a SyncRequest whose events array count exceeds the bytes left (LK_SYNC_MALFORMED)', { timeout: 5000 }, () => {
    const req = emptySyncRequest(1);
    req.eventSyncRequest = { eventListenersRequests: null, events: [{ seqNum: 0, eventClassFQN: 'a', eventData: null, source: null, target: null }], listenedEventClassFQNs: null };
    const good = types.syncRequest.toBuffer(req);
    expect(decodeSyncRequest(good).ok).toBe(true);
    // requestId(1) meta(0) profile(0) user(0) eventSync(2) listeners(0) events(2) count...
    const prefix = good.subarray(0, 7);
    expect(prefix.toString('hex')).toBe('02000000020002');
    const evil = Buffer.concat([prefix, Buffer.from('feffffff0f', 'hex')]);
    expect(decodeSyncRequest(evil)).toEqual({ ok: false, code: 'LK_SYNC_MALFORMED' });
  });

  it('still decodes arrays written in several blocks and with negative (sized) block counts', () => {
    const arr = types.bootstrapRequest;
    // appToken "a", protocolVersions in two blocks: [1] then [2, 3] (the second with a byte size).
    const bytes = Buffer.from([0x02, 0x61, 0x02, 0x02, 0x03, 0x04, 0x04, 0x06, 0x00]);
    expect(arr.fromBuffer(bytes)).toEqual({ appToken: 'a', protocolVersions: [1, 2, 3] });
  });

  it('no wire schema has arrays or maps of zero-byte items (the guard assumes at least one byte each)', () => {
    const zeroSized = (t: unknown): boolean => t === 'null' || (typeof t === 'object' && t !== null && (t as { type?: string }).type === 'record' && ((t as { fields: unknown[] }).fields.length === 0));
    const walk = (t: unknown): void => {
      if (Array.isArray(t)) return t.forEach(walk);
      if (typeof t !== 'object' || t === null) return;
      const o = t as Record<string, unknown>;
      if (o.type === 'array') expect(zeroSized(o.items)).toBe(false);
      if (o.type === 'map') expect(zeroSized(o.values)).toBe(false);
      for (const v of Object.values(o)) walk(v);
    };
    for (const s of Object.values(wireSchemas)) walk(s);
  });
});
