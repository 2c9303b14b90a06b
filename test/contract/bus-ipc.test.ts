/**
 * The IPC bus (a multi-process node without Redis) against a stand-in for the node primary's relay:
 * the primary (node/primary.ts) sends every `bus` message of a gateway process to every gateway
 * process, the sender included; this relay does the same over in-memory channels, asynchronously
 * and with a copy of each message, as node:cluster's IPC does. Every client made here is one more
 * process of the same node, so node-addressed messages to that node reach all of them.
 */
import { EventEmitter } from 'node:events';
import { IpcBus } from '../../src/ipc/bus-ipc.js';
import { NodeLink } from '../../src/ipc/link.js';
import type { ToGateway, ToPrimary } from '../../src/ipc/messages.js';
import { busContract } from './bus.contract.js';

class FakeChannel extends EventEmitter {
  connected = true;
  constructor(private readonly relay: (m: ToPrimary) => void) {
    super();
  }
  send(message: unknown, callback?: (err: Error | null) => void): boolean {
    setImmediate(() => {
      this.relay(structuredClone(message) as ToPrimary);
      callback?.(null);
    });
    return true;
  }
}

/** One node: its gateway processes' channels and the primary's relay between them. */
const channels: FakeChannel[] = [];
function relay(m: ToPrimary): void {
  if (m.lk !== 'bus') return;
  for (const ch of channels) {
    const out: ToGateway = { lk: 'bus', topic: m.topic, msg: m.msg };
    setImmediate(() => ch.emit('message', structuredClone(out)));
  }
}

busContract(
  'ipc',
  async (nodeId) => {
    const ch = new FakeChannel(relay);
    channels.push(ch);
    return new IpcBus(new NodeLink(channels.length - 1, ch), { nodeId });
  },
  { shared: true },
);
