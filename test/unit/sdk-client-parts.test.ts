/**
 * The endpoint client's parts in-process, without a server (the e2e suites test them through
 * EndpointClient and a socket): SessionLink's counter order both ways and what it drops when its
 * session ends, Requests' timeouts and rejection, Events' duplicate, gap and wrap handling of
 * seqNums, Reconnector's full-jitter backoff and its limits.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FRAME } from '../../src/sdk/constants.js';
import { deriveClientKeys, type ClientSessionKeys } from '../../src/sdk/crypto.js';
import { Events, type ReceivedEvent } from '../../src/sdk/events.js';
import { pacedRetryAfterMs, Reconnector } from '../../src/sdk/reconnect.js';
import { Requests } from '../../src/sdk/requests.js';
import { SessionLink } from '../../src/sdk/session-link.js';
import type { ClientOptions, ConnectResult } from '../../src/sdk/types.js';
import wire from '../../src/sdk/wire.js';
import type { SyncResponse, WireEvent } from '../../src/protocol/wire-schemas.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A socket that records what is sent and closed; readyState 1 until closed. */
function fakeSocket(): { ws: WebSocket; sent: Uint8Array[]; closed: Array<{ code?: number; reason?: string }> } {
  const sent: Uint8Array[] = [];
  const closed: Array<{ code?: number; reason?: string }> = [];
  const ws = {
    readyState: 1,
    send: (d: Uint8Array) => sent.push(d),
    close(code?: number, reason?: string) {
      closed.push({ code, reason });
      this.readyState = 3;
    },
  };
  return { ws: ws as unknown as WebSocket, sent, closed };
}

function response(requestId: number, events: WireEvent[] | null = null): SyncResponse {
  return { requestId, status: 'SUCCESS', errorCode: null, profileSyncResponse: null, userSyncResponse: null, redirectSyncResponse: null, eventSyncResponse: events ? { eventListenersResponses: null, events } : null };
}

const keysOnce = deriveClientKeys(Uint8Array.from({ length: 64 }, (_, i) => i), new Uint8Array([1, 2, 3]));
const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('SessionLink', () => {
  it('seals and sends SYNC frames in counter order, from the counter after CONNECT\'s SyncRequest, even when sealing is slow', async () => {
    const keys: ClientSessionKeys = { ...(await keysOnce) };
    const seal = keys.tx.seal.bind(keys.tx);
    keys.tx = Object.assign(Object.create(keys.tx) as typeof keys.tx, {
      seal: async (counter: number, p: Uint8Array) => {
        if (counter === 1) await new Promise((r) => setTimeout(r, 30));
        return seal(counter, p);
      },
    });
    const s = fakeSocket();
    const link = new SessionLink(s.ws, keys, 1, 0, { syncResponse: () => undefined, pong: () => undefined, ticket: () => true });
    const plain = [1, 2, 3].map((n) => new Uint8Array([n]));
    await Promise.all(plain.map((p) => link.send(p)));
    const frames = s.sent.map((f) => {
      expect(f[0]).toBe(FRAME.SYNC);
      return wire.sync.fromBuffer(f.subarray(1));
    });
    expect(frames.map((f) => f.counter)).toEqual([1, 2, 3]);
    for (const [i, f] of frames.entries()) expect(await keys.tx.open(f.counter, f.ciphertext)).toEqual(plain[i]);
  });

  it('opens frames in arrival order and hands the SyncResponses over; frames still queued when the session ends are dropped', async () => {
    const keys = await keysOnce;
    const s = fakeSocket();
    const got: number[] = [];
    const link = new SessionLink(s.ws, keys, 0, 1, { syncResponse: (r) => got.push(r.requestId), pong: () => undefined, ticket: () => true });
    const frame = async (counter: number, requestId: number): Promise<Uint8Array> =>
      new Uint8Array([FRAME.SYNC, ...wire.sync.toBuffer({ counter, ciphertext: await keys.rx.seal(counter, wire.syncResponse.toBuffer(response(requestId))) })]);
    for (let c = 1; c <= 3; c++) link.receive(await frame(c, 10 + c));
    await until(() => got.length === 3);
    expect(got).toEqual([11, 12, 13]);
    link.receive(await frame(4, 14));
    link.end();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([11, 12, 13]);
    await expect(link.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'LK_SDK_CLOSED' });
    expect(link.open).toBe(false);
  });

  it('a SYNC frame out of counter order closes the socket 4000 LK_SDK_PROTOCOL_ERROR and is the session\'s DISCONNECT', async () => {
    const keys = await keysOnce;
    const s = fakeSocket();
    const link = new SessionLink(s.ws, keys, 0, 0, { syncResponse: () => undefined, pong: () => undefined, ticket: () => true });
    link.receive(new Uint8Array([FRAME.SYNC, ...wire.sync.toBuffer({ counter: 5, ciphertext: new Uint8Array(16) })]));
    await until(() => s.closed.length > 0);
    expect(s.closed[0]).toEqual({ code: 4000, reason: 'LK_SDK_PROTOCOL_ERROR SYNC counter out of order' });
    expect(link.lastDisconnect).toEqual({ reason: 1, errorCode: 'LK_SDK_PROTOCOL_ERROR' });
  });
});

describe('Requests', () => {
  const link = (send: () => Promise<void> = async () => undefined): SessionLink => ({ send }) as unknown as SessionLink;

  it('resolves a request with its SyncResponse, times out one that gets none, and rejects the rest when the session ends', async () => {
    vi.useFakeTimers();
    const r = new Requests(1000);
    const a = r.sync(link(), () => undefined);
    const b = r.sync(link(), () => undefined);
    const c = r.sync(link(), () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(r.settle(response(1))).toBe(true);
    expect(r.settle(response(1))).toBe(false); // answered already: a push
    await expect(a).resolves.toMatchObject({ requestId: 1 });
    const ended = Promise.all([expect(b).rejects.toMatchObject({ code: 'LK_SDK_CLOSED' }), expect(c).rejects.toMatchObject({ code: 'LK_SDK_CLOSED' })]);
    r.rejectAll();
    await ended;
    const d = r.sync(link(), () => undefined);
    const timedOut = expect(d).rejects.toMatchObject({ code: 'LK_SDK_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(1000);
    await timedOut;
    expect(r.next()).toBe(5);
  });

  it('a request whose send fails is forgotten and fails with the send\'s error', async () => {
    const r = new Requests(60_000);
    const boom = Object.assign(new Error('gone'), { code: 'LK_SDK_CLOSED' });
    await expect(r.sync(link(() => Promise.reject(boom)), () => undefined)).rejects.toBe(boom);
    expect(r.settle(response(1))).toBe(false);
  });
});

describe('Events', () => {
  it('drops duplicates, counts the events missed before one, and takes a seqNum far below the next for the wrap at 2^31', () => {
    const events = new Events({ live: () => null, sync: () => Promise.reject(new Error('no sync')) });
    const got: ReceivedEvent[] = [];
    events.listeners.add((e) => got.push(e));
    const ev = (seqNum: number): WireEvent => ({ seqNum, eventClassFQN: 'a.B', eventData: null, source: 'k', target: null });
    events.dispatch(response(0, [ev(0), ev(1), ev(1), ev(4)]));
    expect(got.map((e) => [e.seqNum, e.missedBefore])).toEqual([[0, 0], [1, 0], [4, 2]]);
    events.dispatch(response(0, [ev(2), ev(2 ** 31 - 2), ev(1)]));
    expect(got.slice(3).map((e) => [e.seqNum, e.missedBefore])).toEqual([[2 ** 31 - 2, 2 ** 31 - 7], [1, 2]]);
    events.sessionStarted();
    events.dispatch(response(0, [ev(0)]));
    expect(got.at(-1)).toMatchObject({ seqNum: 0, missedBefore: 0, source: 'k', target: null });
  });

  it('keeps the declared classes for the next session\'s first SyncRequest when not connected, and refuses bad names', async () => {
    const events = new Events({ live: () => null, sync: () => Promise.reject(new Error('no sync')) });
    expect(events.declared).toBe(false);
    await expect(events.listen([''])).rejects.toMatchObject({ code: 'LK_EVENT_CLASSES_INVALID' });
    expect(events.declared).toBe(false);
    await events.listen(['a.B', 'a.B', 'c.D']);
    const req = { requestId: 1, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null, eventSyncRequest: null };
    events.declareIn(req);
    expect(req.eventSyncRequest).toEqual({ eventListenersRequests: null, events: null, listenedEventClassFQNs: ['a.B', 'c.D'] });
    await expect(events.send('a.B', null, null)).rejects.toMatchObject({ code: 'LK_SDK_CLOSED' });
  });
});

describe('Reconnector', () => {
  const failed: ConnectResult = { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: 'x', retryable: true };

  it('waits at most min(maxDelayMs, minDelayMs * 2^attempt) before each attempt, and stops after maxAttempts', async () => {
    vi.useFakeTimers();
    // The top of the jitter range, so the delays are the ceilings themselves.
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const at: number[] = [];
    const t0 = Date.now();
    const results: ConnectResult[] = [];
    const opts = { reconnect: { minDelayMs: 100, maxDelayMs: 1000, maxAttempts: 6 } } as ClientOptions;
    const r = new Reconnector(opts, { stopped: () => false, connect: async () => (at.push(Date.now() - t0), failed) });
    r.listeners.add((res) => results.push(res));
    r.schedule();
    await vi.advanceTimersByTimeAsync(10_000);
    const gaps = at.map((t, i) => t - (at[i - 1] ?? 0));
    expect(gaps).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(results).toHaveLength(6);
  });

  it('waits a paced refusal\'s return time instead of its backoff step, and counts it towards maxAttempts', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const at: number[] = [];
    const t0 = Date.now();
    // Two paced refusals (7 s, then 12 s), then plain failures: the backoff starts from its first step.
    const answers: ConnectResult[] = [{ ...failed, retryAfterMs: 7_000 }, { ...failed, retryAfterMs: 12_000 }, failed, failed];
    const opts = { reconnect: { minDelayMs: 100, maxDelayMs: 1000, maxAttempts: 5 } } as ClientOptions;
    const r = new Reconnector(opts, { stopped: () => false, connect: async () => (at.push(Date.now() - t0), answers.shift() ?? failed) });
    r.schedule();
    await vi.advanceTimersByTimeAsync(60_000);
    const gaps = at.map((t, i) => t - (at[i - 1] ?? 0));
    // 100 (first backoff step), 7,000 x 1.05, 12,000 x 1.05, then 200 and 400: the paced waits did not step the backoff.
    expect(gaps).toEqual([100, 7_350, 12_600, 200, 400]);
  });

  it('reads a paced refusal\'s return time only from a reconnect-range close whose reason has the exact form', () => {
    expect(pacedRetryAfterMs(4003, 'LK_SERVER_BUSY retryAfterMs=4250')).toBe(4250);
    expect(pacedRetryAfterMs(4003, 'LK_SERVER_BUSY retryAfterMs=99999999999')).toBeNull();
    expect(pacedRetryAfterMs(4003, 'LK_SERVER_BUSY retryAfterMs=9999999999')).toBe(3_600_000);
    expect(pacedRetryAfterMs(4003, 'LK_SERVER_BUSY')).toBeNull();
    expect(pacedRetryAfterMs(4003, 'LK_SERVER_BUSY retryAfterMs=-5')).toBeNull();
    expect(pacedRetryAfterMs(4003, ' LK_SERVER_BUSY retryAfterMs=5')).toBeNull();
    expect(pacedRetryAfterMs(4530, 'LK_SESSION_REPLACED retryAfterMs=5')).toBeNull();
    expect(pacedRetryAfterMs(1000, 'LK_SERVER_BUSY retryAfterMs=5')).toBeNull();
  });

  it('does not start an attempt after close(), nor schedule another when one fails for good', async () => {
    vi.useFakeTimers();
    let stopped = false;
    let calls = 0;
    const r = new Reconnector({ reconnect: true } as ClientOptions, { stopped: () => stopped, connect: async () => (calls++, { ...failed, retryable: false }) });
    r.schedule();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
    r.schedule();
    stopped = true;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
  });
});
