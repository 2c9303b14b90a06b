/**
 * The hand-written frame encoders agree byte for byte with avsc (the schemas are the contract).
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeEventPushTransient, encodeSync, encodeSyncResponse, encodeSyncResponseTransient } from '../../src/protocol/frames.js';
import { emptySyncResponse, types } from '../../src/protocol/schemas.js';

describe('encodeSync', () => {
  it('matches avsc for counters and lengths across varint boundaries, and decodes back', () => {
    for (const counter of [0, 1, 63, 64, 127, 128, 8191, 8192, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 2 ** 52 + 1]) {
      for (const len of [0, 1, 63, 64, 127, 128, 300, 8192, 70_000]) {
        const ciphertext = Buffer.alloc(len, len % 251);
        const ours = encodeSync({ counter, ciphertext });
        const theirs = Buffer.concat([Buffer.from([0x0f]), types.sync.toBuffer({ counter, ciphertext })]);
        expect(ours.equals(theirs), `counter ${counter} len ${len}`).toBe(true);
        const back = decodeFrame(ours);
        expect(back.ok && back.value.type === 'SYNC' && back.value.sync.counter === counter && back.value.sync.ciphertext.equals(ciphertext)).toBe(true);
      }
    }
  });

  it('refuses counters that are not safe non-negative integers', () => {
    for (const counter of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) expect(() => encodeSync({ counter, ciphertext: Buffer.alloc(1) })).toThrow(RangeError);
  });
});

describe('encodeSyncResponseTransient', () => {
  it('gives the same bytes as encodeSyncResponse, also past its scratch size, and reuses the scratch', () => {
    const small = emptySyncResponse(7);
    small.eventSyncResponse = { eventListenersResponses: null, events: [{ seqNum: 3, eventClassFQN: 'a.B', eventData: Buffer.from('xyz'), source: 'src', target: null }] };
    const a = Buffer.from(encodeSyncResponseTransient(small));
    expect(a.equals(encodeSyncResponse(small))).toBe(true);
    const big = emptySyncResponse(8);
    big.eventSyncResponse = { eventListenersResponses: null, events: [{ seqNum: 4, eventClassFQN: 'a.B', eventData: Buffer.alloc(200_000, 9), source: 'src', target: 't' }] };
    const b = encodeSyncResponseTransient(big);
    expect(b.equals(encodeSyncResponse(big))).toBe(true);
    const c = encodeSyncResponseTransient(small);
    expect(c.equals(a)).toBe(true);
    // Valid until the next call only: the same memory.
    expect(c.buffer).toBe(encodeSyncResponseTransient(small).buffer);
  });
});

describe('encodeEventPushTransient', () => {
  it('matches avsc for the event push SyncResponse across varint boundaries, unicode, nulls and large data', () => {
    const cases = [];
    for (const seqNum of [0, 1, 63, 64, 8191, 8192, 2 ** 31 - 1]) {
      for (const data of [null, Buffer.alloc(0), Buffer.from('xy'), Buffer.alloc(130, 7), Buffer.alloc(70_000, 3)]) {
        for (const [source, target] of [['S', null], ['srcKeyHash_-', 'tgt'], [null, null], ['é漢字', 'ü']] as const) {
          cases.push({ seqNum, eventClassFQN: seqNum % 2 ? 'org.example.Ping' : 'ünïcode.Évent', eventData: data, source, target });
        }
      }
    }
    for (const ev of cases) {
      const res = emptySyncResponse(-1);
      res.eventSyncResponse = { eventListenersResponses: null, events: [ev] };
      expect(Buffer.from(encodeEventPushTransient(ev)).equals(encodeSyncResponse(res)), JSON.stringify({ ...ev, eventData: ev.eventData?.length })).toBe(true);
    }
  });

  it('refuses a seqNum outside Avro int', () => {
    expect(() => encodeEventPushTransient({ seqNum: 2 ** 31, eventClassFQN: 'a', eventData: null, source: null, target: null })).toThrow(RangeError);
  });
});
