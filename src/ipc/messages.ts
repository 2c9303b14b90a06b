/**
 * The channel between the primary of a multi-process node (node/primary.ts) and its gateway
 * processes (node/gateway-process.ts): node:cluster's IPC pipe, one JSON message per line.
 *
 * What crosses it, and why through the primary rather than process to process:
 * - bus messages (`bus`): the bus of a node without Redis (ipc/bus-ipc.ts). The primary relays
 *   each to every gateway process, the sender included, as the Redis bus does.
 * - cache operations (`cache`): the node's one cache lives in the primary (cache/cache-ipc.ts), so
 *   a delete is seen by every process and setIfAbsent is atomic across them (nonce claims).
 * - the session directory (`claim` / `release` / `replace`): which process holds the session of
 *   each endpoint, so a newer session on one process ends the older one on another
 *   (LK_SESSION_REPLACED) with one message to the process concerned, not a broadcast. A replace
 *   names the new session's establishment time: a session established after it is left alone.
 * - node-wide questions (`health`, `metrics`, `online`, `sessions`) and the operator's drain
 *   (`drain`): asked of the primary by the process that holds the admin listener, answered from
 *   (done by) every process.
 * - life cycle: `ready` / `failed` (gateway -> primary); the primary stops its processes with
 *   SIGTERM, which each handles as a single-process node does (drain, then exit).
 *
 * Requests carry an id and get exactly one `reply` (or a `reply` with `error`); the link rejects
 * the pending requests of a channel that closed (LK_INTERNAL), and times out after `timeoutMs`.
 */
import { LatchkeyError, isErrorCode, type ErrorCode } from '../errors.js';
import type { BusMessage, BusTopic } from '../bus/bus.js';

/** Gateway process -> primary. */
export type ToPrimary =
  | { lk: 'ready'; index: number; port: number; adminPort: number | null; pid: number }
  | { lk: 'failed'; index: number; code: ErrorCode; message: string }
  | { lk: 'bus'; topic: BusTopic; msg: BusMessage }
  | { lk: 'claim'; key: string; at: number }
  | { lk: 'release'; key: string }
  | { lk: 'req'; id: number; op: PrimaryOp; args: unknown[] }
  | { lk: 'reply'; id: number; value?: unknown; error?: { code: ErrorCode; message: string } };

/** Primary -> gateway process. */
export type ToGateway =
  | { lk: 'bus'; topic: BusTopic; msg: BusMessage }
  | { lk: 'replace'; key: string; at: number }
  /** The node's established sessions over all its processes (the directory's size), every heartbeat. */
  | { lk: 'nodeSessions'; n: number }
  | { lk: 'req'; id: number; op: GatewayOp; args: unknown[] }
  | { lk: 'reply'; id: number; value?: unknown; error?: { code: ErrorCode; message: string } };

/** Requests a gateway process may make of the primary. */
export type PrimaryOp = 'cache.get' | 'cache.set' | 'cache.delete' | 'cache.setIfAbsent' | 'node.health' | 'node.metrics' | 'node.online' | 'node.sessions' | 'node.drain';
/** Requests the primary makes of a gateway process. */
export type GatewayOp = 'health' | 'sessions' | 'drain';

export function isLkMessage(m: unknown): m is { lk: string } {
  return typeof m === 'object' && m !== null && typeof (m as { lk?: unknown }).lk === 'string';
}

/** The sending half of a channel: `process` in a gateway process, a cluster Worker in the primary. */
export interface Channel {
  send(message: unknown, callback?: (err: Error | null) => void): boolean;
  connected?: boolean;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
  /** Date.now() when it was sent. */
  at: number;
}

/**
 * Request/response over one channel. The owner routes incoming `reply` messages to `settle` and
 * `req` messages to its handler, which answers with `answer`.
 */
export class Requester<Op extends string> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly channel: Channel,
    private readonly timeoutMs = 10_000,
  ) {}

  request<T>(op: Op, args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LatchkeyError('LK_INTERNAL', `node IPC ${op}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, at: Date.now() });
      send(this.channel, { lk: 'req', id, op, args }, (err) => {
        if (!err) return;
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new LatchkeyError('LK_INTERNAL', `node IPC ${op}: ${err.message}`, { cause: err }));
      });
    });
  }

  /** How long the oldest request still waiting has waited (0: none waits). Map order is send order. */
  oldestWaitMs(now = Date.now()): number {
    for (const p of this.pending.values()) return Math.max(0, now - p.at);
    return 0;
  }

  settle(m: { id: number; value?: unknown; error?: { code: ErrorCode; message: string } }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.reject(new LatchkeyError(isErrorCode(m.error.code) ? m.error.code : 'LK_INTERNAL', m.error.message));
    else p.resolve(m.value);
  }

  /** The channel is gone: fail what waits on it. */
  failAll(why: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new LatchkeyError('LK_INTERNAL', `node IPC: ${why}`));
      this.pending.delete(id);
    }
  }
}

/** Run `handler` for a request and send its reply (errors as codes). */
export function answer(channel: Channel, id: number, handler: () => unknown): void {
  Promise.resolve()
    .then(handler)
    .then(
      (value) => send(channel, { lk: 'reply', id, value: value === undefined ? null : value }),
      (err: unknown) => {
        const code = err instanceof LatchkeyError ? err.code : 'LK_INTERNAL';
        send(channel, { lk: 'reply', id, error: { code, message: (err as Error)?.message ?? String(err) } });
      },
    );
}

/** Send, never throw: a channel that closed meanwhile is reported to `callback` (or dropped). */
export function send(channel: Channel, message: unknown, callback?: (err: Error | null) => void): void {
  if (channel.connected === false) {
    callback?.(new Error('channel closed'));
    return;
  }
  try {
    channel.send(message, callback ?? (() => undefined));
  } catch (err) {
    callback?.(err as Error);
  }
}
