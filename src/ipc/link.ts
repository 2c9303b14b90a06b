/**
 * A gateway process's end of the channel to its node's primary (see messages.ts for what crosses it).
 * One instance per process, created only when the process was started by a primary (node:cluster
 * worker with an IPC channel); the IPC bus, the IPC cache and the session directory use it.
 */
import { LatchkeyError } from '../errors.js';
import type { BusMessage, BusTopic } from '../bus/bus.js';
import { answer, isLkMessage, Requester, send, type Channel, type GatewayOp, type PrimaryOp, type ToGateway, type ToPrimary } from './messages.js';

export interface LinkHandlers {
  bus?: (topic: BusTopic, msg: BusMessage) => void;
  /** The primary saw a newer session of `key`, established at `at`, on another process. */
  replace?: (key: string, at: number) => void;
  request?: (op: GatewayOp, args: unknown[]) => unknown;
}

export class NodeLink {
  private readonly requester: Requester<PrimaryOp>;
  private readonly handlers: LinkHandlers = {};
  private closed = false;

  constructor(
    readonly index: number,
    private readonly channel: Channel & NodeJS.EventEmitter = process as unknown as Channel & NodeJS.EventEmitter,
  ) {
    if (typeof channel.send !== 'function') throw new LatchkeyError('LK_INTERNAL', 'not started by a node primary (no IPC channel)');
    this.requester = new Requester<PrimaryOp>(channel);
    channel.on('message', (m: unknown) => {
      if (isLkMessage(m)) this.onMessage(m as ToGateway);
    });
    channel.on('disconnect', () => {
      this.closed = true;
      this.requester.failAll('the primary is gone');
    });
  }

  /** Set (or replace) the handlers of incoming messages; components register as they are built. */
  on(h: LinkHandlers): void {
    Object.assign(this.handlers, h);
  }

  /**
   * Established sessions of the whole node, as the primary last said (every heartbeat); null until
   * it has. Announced to the bootstrap node registry so the least-loaded strategy sees the node's
   * load, not one process's.
   */
  nodeSessionCount: number | null = null;

  get connected(): boolean {
    return !this.closed && this.channel.connected !== false;
  }

  private onMessage(m: ToGateway): void {
    switch (m.lk) {
      case 'bus':
        this.handlers.bus?.(m.topic, m.msg);
        return;
      case 'replace':
        this.handlers.replace?.(m.key, m.at);
        return;
      case 'nodeSessions':
        this.nodeSessionCount = m.n;
        return;
      case 'req': {
        const h = this.handlers.request;
        answer(this.channel, m.id, () => {
          if (!h) throw new LatchkeyError('LK_NOT_READY', 'process still starting');
          return h(m.op, m.args);
        });
        return;
      }
      case 'reply':
        this.requester.settle(m);
        return;
    }
  }

  /** How long this process's oldest unanswered request to the primary has waited, ms (0: none). */
  oldestWaitMs(): number {
    return this.requester.oldestWaitMs();
  }

  request<T>(op: PrimaryOp, ...args: unknown[]): Promise<T> {
    if (!this.connected) return Promise.reject(new LatchkeyError('LK_INTERNAL', 'node IPC: the primary is gone'));
    return this.requester.request<T>(op, args);
  }

  /** Hand a message to the primary; resolves once written to the channel. */
  post(m: ToPrimary): Promise<void> {
    return new Promise((resolve, reject) => {
      send(this.channel, m, (err) => (err ? reject(new LatchkeyError('LK_INTERNAL', `node IPC: ${err.message}`, { cause: err })) : resolve()));
    });
  }

  /** Fire and forget (directory updates): a lost one only costs a missed takeover across processes. */
  notify(m: ToPrimary): void {
    send(this.channel, m);
  }
}
