/**
 * Event load between the endpoints of owners, on raw sockets (bench/lib/ws-conn.ts): endpoints that
 * connect, register, attach to an owner and listen to one event class, and flows of events between
 * them with a bounded window (events sent and not yet received), refilled when the receiver's socket
 * delivers. Used by bench/cluster, where the two endpoints of an owner sit on different nodes; the
 * same scheme as bench/events (which keeps its own copy with the echo floor's variant).
 *
 * Receivers count SYNC frames without decrypting them; the first and the last event of every flow
 * are decrypted and checked (requestId -1, one event, restamped seqNum = its index in the flow, the
 * class, the source key hash and the payload with the sender's seqNum inside), so the counts are of
 * genuine, in-order, complete deliveries.
 */
import crypto from 'node:crypto';
import type { NodeGcmCipher } from '../../src/crypto/aead.js';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodeSync, encodeSyncRequest } from '../../src/protocol/frames.js';
import type { SyncRequest, WireEvent } from '../../src/protocol/schemas.js';
import { openSync, prepareConnect, syncFrame, type NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { WsConnection } from './ws-conn.js';

/** An endpoint session that takes part in events. */
export interface EventEndpoint {
  ws: WsConnection;
  /** Seals this endpoint's SyncRequests; `rx` opens what the server sends. */
  tx: NodeGcmCipher;
  rx: NodeGcmCipher;
  txCounter: number;
  keyHash: string;
  /** Which server (by the caller's numbering) the endpoint is connected to. */
  node: number;
}

export interface EventEndpointOptions {
  port: number;
  node: number;
  appToken: string;
  serverKeyId: string;
  serverPublicKey: crypto.KeyObject;
  key: NodeEndpointKey;
  owner: string;
  eventClass: string;
  profile: Buffer;
  timeoutMs: number;
}

/**
 * Connect (CONNECT signed with node:crypto, CONNACK confirmation checked), register and attach to
 * `owner` in one SyncRequest (an unregistered endpoint's requests get PROFILE_RESYNC), then declare
 * that it listens to `eventClass`; both must be answered SUCCESS. The endpoint's application needs
 * a default owner verifier that accepts the token 'x' (trustful).
 */
export async function connectEventEndpoint(o: EventEndpointOptions): Promise<EventEndpoint> {
  const pc = prepareConnect({ appToken: o.appToken, serverKeyId: o.serverKeyId, serverPublicKey: o.serverPublicKey, key: o.key, body: { keepAliveSec: 60 } });
  const ws = await WsConnection.open(o.port, '/ep/v1', o.timeoutMs, 'latchkey.v1');
  try {
    ws.send(pc.frame);
    const ack = decodeFrame((await ws.next(o.timeoutMs)).payload);
    if (!ack.ok || ack.value.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${ack.ok ? ack.value.type : ack.code}`);
    const c = ack.value.connack;
    if (c.returnCode !== ConnackCode.ACCEPTED) throw new Error(`CONNACK ${c.returnCode} ${c.errorCode}`);
    if (!c.confirmation || c.confirmation.length !== pc.confirmation.length || !crypto.timingSafeEqual(c.confirmation, pc.confirmation)) throw new Error('CONNACK confirmation does not match');
    const ep: EventEndpoint = { ws, tx: pc.tx, rx: pc.rx, txCounter: 0, keyHash: o.key.keyHash, node: o.node };
    const ask = async (requestId: number, req: SyncRequest): Promise<void> => {
      const counter = ep.txCounter++;
      ws.send(syncFrame(ep.tx, counter, req));
      const { response } = openSync(ep.rx, (await ws.next(o.timeoutMs)).payload);
      if (response.requestId !== requestId || response.status !== 'SUCCESS') throw new Error(`request ${requestId}: requestId ${response.requestId}, ${response.status} ${response.errorCode ?? ''}`);
      const attach = response.userSyncResponse?.userAttachResponse;
      if (req.userSyncRequest && attach?.result !== 'SUCCESS') throw new Error(`attach to ${o.owner}: ${JSON.stringify(attach)}`);
    };
    await ask(1, {
      requestId: 1, syncRequestMetaData: null, profileSyncRequest: { profileBody: o.profile, endpointAccessToken: null }, eventSyncRequest: null,
      userSyncRequest: { userAttachRequest: { userVerifierId: null, userExternalId: o.owner, userAccessToken: 'x' }, endpointAttachRequests: null, endpointDetachRequests: null },
    });
    await ask(2, {
      requestId: 2, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null,
      eventSyncRequest: { eventListenersRequests: null, events: null, listenedEventClassFQNs: [o.eventClass] },
    });
    return ep;
  } catch (err) {
    ws.destroy();
    throw err;
  }
}

/** One direction of events: `from` sends, `to` receives. */
export interface EventFlow {
  id: number;
  from: EventEndpoint;
  to: EventEndpoint;
  eventClass: string;
  sent: number;
  recv: number;
  /** eventData template: flow id (u32), sender seqNum (u32), then filler. */
  data: Buffer;
  req: SyncRequest;
  first: Buffer | null;
  lastView: Buffer | null;
  last: Buffer | null;
  lastIndex: number;
  unexpected: number;
}

function eventData(id: number, bytes: number): Buffer {
  const b = Buffer.alloc(Math.max(8, bytes));
  for (let i = 8; i < b.length; i++) b[i] = (i * 31 + id) & 0xff;
  b.writeUInt32BE(id, 0);
  return b;
}

export function makeFlow(id: number, from: EventEndpoint, to: EventEndpoint, eventClass: string, eventBytes: number): EventFlow {
  const data = eventData(id, eventBytes);
  const ev: WireEvent = { seqNum: 0, eventClassFQN: eventClass, eventData: data, source: null, target: null };
  const req: SyncRequest = {
    requestId: 0, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null,
    eventSyncRequest: { eventListenersRequests: null, events: [ev], listenedEventClassFQNs: null },
  };
  return { id, from, to, eventClass, sent: 0, recv: 0, data, req, first: null, lastView: null, last: null, lastIndex: -1, unexpected: 0 };
}

/** Decrypt and check the k-th event a flow's receiver got; null when it is right, else why not. */
function checkEvent(f: EventFlow, k: number, frame: Buffer): string | null {
  try {
    const { response } = openSync(f.to.rx, frame);
    if (response.requestId !== -1 || response.status !== 'SUCCESS') return `requestId ${response.requestId} status ${response.status}`;
    const evs = response.eventSyncResponse?.events ?? [];
    if (evs.length !== 1) return `${evs.length} events in the frame`;
    const ev = evs[0]!;
    const expect = eventData(f.id, f.data.length);
    expect.writeUInt32BE(k, 4);
    if (ev.seqNum !== k) return `restamped seqNum ${ev.seqNum}, expected ${k}`;
    if (ev.eventClassFQN !== f.eventClass) return `class ${ev.eventClassFQN}`;
    if (ev.source !== f.from.keyHash) return `source ${ev.source}`;
    if (!ev.eventData || !ev.eventData.equals(expect)) return 'eventData differs (payload or sender seqNum)';
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Drives flows: each sender keeps at most `window` events in flight to its receiver and refills
 * (one socket write) when the receiver's socket delivers; at most `maxEvents` are sent in all.
 */
export class EventLoad {
  sent = 0;
  received = 0;
  private sending = false;
  private readonly batch: Buffer[];

  constructor(
    readonly flows: EventFlow[],
    private readonly window: number,
    private readonly maxEvents: number,
  ) {
    this.batch = new Array<Buffer>(window);
    for (const f of flows) {
      f.to.ws.handle(
        (opcode, payload) => {
          if (opcode !== 0x2 || payload[0] !== 0x0f) {
            f.unexpected++;
            return;
          }
          const k = f.recv++;
          this.received++;
          if (k === 0) f.first = Buffer.from(payload);
          f.lastView = payload;
        },
        () => {
          if (f.lastView) {
            f.last = Buffer.from(f.lastView);
            f.lastIndex = f.recv - 1;
            f.lastView = null;
          }
          this.pump(f);
        },
      );
    }
  }

  private pump(f: EventFlow): void {
    if (!this.sending) return;
    const room = Math.min(this.window - (f.sent - f.recv), this.maxEvents - this.sent);
    if (room <= 0) return;
    for (let i = 0; i < room; i++) {
      const seq = f.sent++;
      f.data.writeUInt32BE(seq, 4);
      f.req.eventSyncRequest!.events![0]!.seqNum = seq;
      const counter = f.from.txCounter++;
      this.batch[i] = encodeSync({ counter, ciphertext: f.from.tx.seal(counter, encodeSyncRequest(f.req)) });
    }
    this.sent += room;
    f.from.ws.sendMany(this.batch, room);
  }

  start(): void {
    this.sending = true;
    for (const f of this.flows) this.pump(f);
  }

  /** Stop refilling; events in flight still arrive. */
  stop(): void {
    this.sending = false;
  }

  get inFlight(): number {
    return this.sent - this.received;
  }

  /** Why the load cannot go on (a closed connection, an unexpected frame), or null. */
  health(): string | null {
    for (const f of this.flows) {
      if (f.from.ws.closed) return `a connection ended: ${f.from.ws.endReason}`;
      if (f.unexpected > 0) return `flow ${f.id}: ${f.unexpected} unexpected frames (not SYNC)`;
    }
    return null;
  }

  /** Detach the handlers and check every flow's first and last event; returns the failures. */
  finish(): { checked: number; failed: number; firstFailure: string | null } {
    const out = { checked: 0, failed: 0, firstFailure: null as string | null };
    for (const f of this.flows) {
      f.to.ws.handle(null);
      const samples: Array<[number, Buffer | null]> = [[0, f.first], [f.lastIndex, f.lastIndex > 0 ? f.last : null]];
      for (const [k, frame] of samples) {
        if (!frame || k < 0) continue;
        out.checked++;
        const why = checkEvent(f, k, frame);
        if (why) {
          out.failed++;
          out.firstFailure ??= `flow ${f.id} event ${k}: ${why}`;
        }
      }
    }
    return out;
  }
}
