/**
 * Events among the endpoints of one owner (Kaa's event sync, with its gaps closed).
 *
 * - An endpoint takes part once it declares the classes it listens to
 *   (EventSyncRequest.listenedEventClassFQNs) or sends an event. Its session is then filed under its
 *   owner (tenant + owner external id) in this node's `groups`; endpoints that never touch events
 *   cost nothing here.
 * - An event goes to the sessions of the sender's owner only: to `target` (a key hash) if set, else
 *   to every session that listens to its class; never back to the sender. Events are not queued for
 *   offline endpoints (as in Kaa): delivery is to connected endpoints, at once.
 * - Sender sequence numbers: within a session, each event's seqNum must be greater than the one
 *   before; an event that is not (a duplicate resend) is dropped. Receiver sequence numbers: the
 *   server stamps each delivered event with the receiving session's own counter (0, 1, 2, ...), so
 *   a receiver sees any gap the slow-receiver policy made.
 * - Slow receivers: a delivery to a session whose socket already buffers more than
 *   `maxBufferedBytes` is dropped (latchkey_events_dropped_total{reason="slow_receiver"}); the
 *   socket's hard limit (maxBackpressureBytes) still ends a session that stops reading altogether.
 *   So a receiver's memory is bounded whatever senders do.
 * - Owner changes (attach, detach, move) re-file a live session at once on every node through the
 *   bus ('endpoint.owner'), so after a detach neither side's events reach the other.
 * - Across processes and nodes: with a cluster directory (Redis; cluster/directory.ts) each process
 *   is listed as a member of the owners it holds sessions of (joined when its first session of the
 *   owner is filed, left when its last goes), and an event goes, after local delivery, to the nodes
 *   of the owner's other members only: one message per such node (none when all of the owner's
 *   sessions are here), whatever the cluster's size. Members are cached per owner for
 *   MEMBERS_TTL_MS; a process that joins tells the members it found (`owner.joined`), which re-read
 *   at once, so a new session of the owner elsewhere misses at most the events sent in the few
 *   milliseconds before that message arrives. Dead processes do not count (their heartbeat).
 *   Without a directory (one node, or the processes of one node without Redis) the event is
 *   published on the 'events' topic to every process. Directory unavailable: broadcast too.
 */
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { ClusterDirectory } from '../cluster/directory.js';
import { LatchkeyError } from '../errors.js';
import type { Stats } from '../metrics.js';
import type { SyncRequest, SyncResponse, WireEvent } from '../protocol/schemas.js';
import { MAX_EVENT_CLASS_LENGTH, MAX_EVENT_CLASSES } from '../store/common/ownership.js';
import { validKeyHash } from '../store/common/values.js';
import type { Application, Store } from '../store/store.js';

/** Per-session event state (Session.events), created when the session first takes part. */
export class EventMember {
  /** undefined until read from the store; null when the endpoint has no owner. */
  owner: string | null | undefined = undefined;
  /** Bumped on every owner change; a store read that started before one is discarded. */
  epoch = 0;
  listens: ReadonlySet<string> = new Set();
  /** The declaration the store holds (undefined: not read yet in this session). */
  stored: string[] | null | undefined = undefined;
  /** Highest seqNum accepted from this sender in this session. */
  lastInSeq = -1;
  /** Next seqNum stamped on an event delivered to this session. */
  outSeq = 0;
  loading: Promise<void> | null = null;
  constructor(readonly tenantId: string) {}
}

/** What the relay needs from a session (Session implements it). */
export interface EventPeer {
  readonly app: Application | null;
  readonly keyHash: string | null;
  events: EventMember | null;
  /** False once the session closed: it is never filed again. */
  readonly isOpen: boolean;
  /** Push one event: sent, dropped because the socket buffers more than the bound, or gone (not established). */
  deliverEvent(ev: WireEvent, maxBufferedBytes: number): 'sent' | 'slow' | 'gone';
}

/** Most listeners queries answered per SyncRequest; later ones get FAILURE (listeners null). */
export const MAX_LISTENER_QUERIES = 16;
/** Most events relayed per SyncRequest; later ones are dropped (reason "invalid"). */
export const MAX_EVENTS_PER_REQUEST = 256;

type EventSync = NonNullable<SyncRequest['eventSyncRequest']>;

export interface EventRelayOptions {
  store: Store;
  bus: Bus;
  stats: Stats;
  log: Logger;
  /** This node's id: bus messages it published itself are skipped when they come back. */
  nodeId: string;
  /** Slow-receiver bound: deliveries to a socket buffering more than this are dropped. */
  maxBufferedBytes: number;
  /** Owner membership across the cluster (Redis); absent or not shared: events are broadcast. */
  directory?: ClusterDirectory;
}

/** How long the other members of an owner are cached by a sender (a join also refreshes them at once). */
export const MEMBERS_TTL_MS = 5_000;

/** Nodes to send an owner's event to: the nodes of its members elsewhere (deduplicated), with the time read. */
interface Targets {
  nodes: string[] | null;
  at: number;
  epoch: number;
  pending: Promise<string[] | null> | null;
}

const groupKey = (tenantId: string, owner: string): string => `${tenantId}\n${owner}`;

/** A SyncRequest that only carries events: relayed without a SyncResponse (docs/protocol.md). */
export function isEventOnly(req: SyncRequest): boolean {
  const e = req.eventSyncRequest;
  return (
    req.profileSyncRequest === null &&
    req.userSyncRequest === null &&
    e !== null &&
    e.events !== null &&
    e.events.length > 0 &&
    (e.eventListenersRequests === null || e.eventListenersRequests.length === 0) &&
    e.listenedEventClassFQNs === null
  );
}

function validClass(c: unknown): c is string {
  return typeof c === 'string' && c.length > 0 && c.length <= MAX_EVENT_CLASS_LENGTH;
}

function sameClasses(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

export class EventRelay {
  private readonly groups = new Map<string, Set<EventPeer>>();
  /** Per owner with sessions here: where its events go besides here (routed mode). */
  private readonly targets = new Map<string, Targets>();
  /** Per owner: the last join/leave call, so they reach the directory in order. */
  private readonly membership = new Map<string, Promise<void>>();
  private unsubscribe: (() => Promise<void>) | null = null;

  private get routed(): boolean {
    return this.o.directory?.shared === true;
  }

  constructor(private readonly o: EventRelayOptions) {}

  async start(): Promise<void> {
    if (this.o.bus.shared) this.unsubscribe = await this.o.bus.subscribe('events', (msg) => this.onBus(msg));
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
    this.groups.clear();
  }

  /** Sessions filed here (for tests and /healthz). */
  get members(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.size;
    return n;
  }

  /**
   * Relay an event-only SyncRequest synchronously if the sender's owner is known (the hot path).
   * False when it must go the async way (handle()).
   */
  tryFast(peer: EventPeer, events: WireEvent[]): boolean {
    const m = peer.events;
    if (!m || m.owner === undefined || !peer.isOpen) return false;
    this.relay(peer, m, events);
    return true;
  }

  /**
   * The event part of a SyncRequest: declaration, listeners queries, events (in that order, so a
   * request may declare and send at once). Fills `res.eventSyncResponse` when there were queries.
   */
  async handle(peer: EventPeer, es: EventSync, res: SyncResponse | null): Promise<void> {
    if (!peer.isOpen) return;
    const m = this.member(peer);
    await this.ready(peer, m);
    if (es.listenedEventClassFQNs !== null) await this.declare(peer, m, es.listenedEventClassFQNs);
    if (es.eventListenersRequests && es.eventListenersRequests.length > 0 && res) {
      const out: NonNullable<SyncResponse['eventSyncResponse']>['eventListenersResponses'] = [];
      for (const [i, q] of es.eventListenersRequests.entries()) {
        const listeners = i < MAX_LISTENER_QUERIES ? await this.listeners(peer, m, q.eventClassFQNs) : null;
        out.push({ requestId: q.requestId, listeners, result: listeners === null ? 'FAILURE' : 'SUCCESS' });
      }
      res.eventSyncResponse = { eventListenersResponses: out, events: null };
    }
    if (es.events && es.events.length > 0) this.relay(peer, m, es.events);
  }

  /** The session ended. */
  leave(peer: EventPeer): void {
    const m = peer.events;
    if (!m) return;
    this.unfile(peer, m);
    m.owner = null;
    m.epoch++;
  }

  /**
   * The session just became established: if it already takes part (declared in its CONNECT), read
   * its owner again, since owner changes made while it handshook were routed past it.
   */
  revalidate(peer: EventPeer): void {
    const m = peer.events;
    if (!m || !peer.isOpen) return;
    this.unfile(peer, m);
    m.owner = undefined;
    m.epoch++;
    this.ready(peer, m).catch((err: unknown) => this.o.log.warn({ err }, 'event owner lookup failed; retried at the next event request'));
  }

  /** The endpoint's owner changed (this node or another, through the bus). */
  setOwner(peer: EventPeer, owner: string | null): void {
    const m = peer.events;
    if (!m) return; // not taking part: it reads its owner from the store when it starts
    this.unfile(peer, m);
    m.owner = owner;
    m.epoch++;
    this.file(peer, m);
  }

  private member(peer: EventPeer): EventMember {
    return (peer.events ??= new EventMember(peer.app!.tenantId));
  }

  /** Read the owner once per session (and again only if a change raced the read). */
  private async ready(peer: EventPeer, m: EventMember): Promise<void> {
    while (m.owner === undefined) {
      m.loading ??= (async () => {
        const epoch = m.epoch;
        try {
          const owner = await this.o.store.getEndpointOwner(peer.app!.id, peer.keyHash!);
          if (m.epoch === epoch && m.owner === undefined) {
            m.owner = owner?.ownerExternalId ?? null;
            this.file(peer, m);
          }
        } finally {
          m.loading = null;
        }
      })();
      await m.loading;
    }
  }

  private async declare(peer: EventPeer, m: EventMember, classes: string[]): Promise<void> {
    const unique = [...new Set(classes)];
    if (unique.length > MAX_EVENT_CLASSES || !unique.every(validClass)) {
      // Nothing changes; the SyncResponse is FAILURE with this code and the session goes on.
      throw new LatchkeyError('LK_EVENT_CLASSES_INVALID', `at most ${MAX_EVENT_CLASSES} names of 1..${MAX_EVENT_CLASS_LENGTH} characters`);
    }
    if (m.stored === undefined) m.stored = await this.o.store.getEventClasses(peer.app!.id, peer.keyHash!);
    if (m.stored === null || !sameClasses(m.stored, unique)) {
      await this.o.store.setEventClasses(peer.app!.id, peer.keyHash!, unique);
      m.stored = unique;
    }
    m.listens = new Set(unique);
  }

  /**
   * Key hashes of the owner's other endpoints (every application of the tenant) that declared all
   * of `classes`; null when the requester has no owner.
   */
  private async listeners(peer: EventPeer, m: EventMember, classes: string[]): Promise<string[] | null> {
    if (!m.owner) return null;
    const wanted = [...new Set(classes)];
    if (wanted.length === 0 || !wanted.every(validClass)) return null;
    const attached = await this.o.store.listOwnerEndpoints(m.tenantId, m.owner);
    const out: string[] = [];
    await Promise.all(
      attached.map(async (a) => {
        if (a.appId === peer.app!.id && a.keyHash === peer.keyHash) return;
        const declared = await this.o.store.getEventClasses(a.appId, a.keyHash);
        if (declared && wanted.every((c) => declared.includes(c))) out.push(a.keyHash);
      }),
    );
    return out.sort();
  }

  private relay(peer: EventPeer, m: EventMember, events: WireEvent[]): void {
    const stats = this.o.stats;
    if (!m.owner) {
      stats.eventDropped('no_owner', events.length);
      return;
    }
    for (const [i, ev] of events.entries()) {
      if (i >= MAX_EVENTS_PER_REQUEST || !validClass(ev.eventClassFQN) || ev.seqNum < 0 || (ev.target !== null && !validKeyHash(ev.target))) {
        stats.eventDropped('invalid');
        continue;
      }
      if (ev.seqNum <= m.lastInSeq) {
        stats.eventDropped('duplicate');
        continue;
      }
      m.lastInSeq = ev.seqNum;
      stats.eventsReceived++;
      this.deliverLocal(m.tenantId, m.owner, peer.keyHash!, ev.eventClassFQN, ev.eventData, ev.target, peer);
      if (this.o.bus.shared) {
        const msg: BusMessage = {
          type: 'owner.event', origin: this.o.nodeId, tenantId: m.tenantId, owner: m.owner, source: peer.keyHash!,
          eventClassFQN: ev.eventClassFQN, data: ev.eventData ? ev.eventData.toString('base64') : null, target: ev.target,
        };
        if (this.routed) this.sendRouted(m.tenantId, m.owner, msg);
        else this.broadcast(msg);
      }
    }
  }

  private deliverLocal(tenantId: string, owner: string, source: string, eventClassFQN: string, eventData: Buffer | null, target: string | null, sender: EventPeer | null): void {
    const group = this.groups.get(groupKey(tenantId, owner));
    if (!group) return;
    const stats = this.o.stats;
    for (const s of group) {
      if (s === sender) continue;
      if (target !== null && s.keyHash !== target) continue;
      const m = s.events!;
      if (!m.listens.has(eventClassFQN)) continue;
      const seqNum = m.outSeq;
      const outcome = s.deliverEvent({ seqNum, eventClassFQN, eventData, source, target }, this.o.maxBufferedBytes);
      if (outcome === 'gone') continue; // not established (yet, or any more): not a drop the receiver should see
      // Avro int: after 2^31 - 1 the counter wraps to 0 (docs/protocol.md 5.4).
      m.outSeq = seqNum === 0x7fffffff ? 0 : seqNum + 1;
      if (outcome === 'sent') stats.eventsDelivered++;
      else stats.eventDropped('slow_receiver');
    }
  }

  private broadcast(msg: BusMessage): void {
    this.o.bus.publish('events', msg).catch((err: unknown) => this.o.log.warn({ err }, 'event not published to other nodes'));
  }

  private publishTo(nodes: string[], msg: BusMessage): void {
    for (const node of nodes) {
      this.o.stats.count(this.o.stats.clusterMessages, 'node');
      this.o.bus.publishToNode(node, 'events', msg).catch((err: unknown) => this.o.log.warn({ err, node }, 'event not published to a node'));
    }
  }

  /** Send an owner's event to the nodes of its other members; in order per owner (a lookup holds later events behind it). */
  private sendRouted(tenantId: string, owner: string, msg: BusMessage): void {
    const k = groupKey(tenantId, owner);
    let t = this.targets.get(k);
    if (t && t.nodes && !t.pending && Date.now() - t.at < MEMBERS_TTL_MS) return this.publishTo(t.nodes, msg);
    if (!t) this.targets.set(k, (t = { nodes: null, at: 0, epoch: 0, pending: null }));
    const entry = t;
    if (!entry.pending) {
      const epoch = entry.epoch;
      const pending = this.o.directory!.ownerMembers(tenantId, owner).then(
        (members) => {
          // Addressed to each member process ("<node>#<process>": one delivery each), not to its node.
          const nodes = [...new Set(members)];
          if (entry.epoch === epoch) {
            entry.nodes = nodes;
            entry.at = Date.now();
          }
          return nodes;
        },
        (err: unknown) => {
          this.o.stats.count(this.o.stats.directoryErrors, 'members');
          this.o.log.warn({ err }, 'cluster directory unavailable: event broadcast');
          return null;
        },
      );
      entry.pending = pending;
      void pending.then(() => {
        if (entry.pending === pending) entry.pending = null;
      });
    }
    void entry.pending!.then((nodes) => {
      if (nodes === null) {
        this.o.stats.count(this.o.stats.clusterMessages, 'broadcast');
        this.broadcast(msg);
      } else this.publishTo(nodes, msg);
    });
  }

  /** Serialise this process's join/leave of an owner in the directory; a join tells the members found. */
  private changeMembership(tenantId: string, owner: string, join: boolean): void {
    const k = groupKey(tenantId, owner);
    const dir = this.o.directory!;
    const prev = this.membership.get(k) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        if (!join) return await dir.leaveOwner(tenantId, owner);
        const others = await dir.joinOwner(tenantId, owner);
        const nodes = [...new Set(others)];
        const msg: BusMessage = { type: 'owner.joined', origin: this.o.nodeId, tenantId, owner };
        for (const node of nodes) this.o.bus.publishToNode(node, 'events', msg).catch((err: unknown) => this.o.log.warn({ err, node }, 'owner join not announced to a node'));
      } catch (err) {
        this.o.stats.count(this.o.stats.directoryErrors, join ? 'join' : 'leave');
        this.o.log.warn({ err }, 'cluster directory unavailable: owner membership not updated (retried at the next change)');
      }
    });
    this.membership.set(k, next);
    void next.then(() => {
      if (this.membership.get(k) === next) this.membership.delete(k);
    });
  }

  private onBus(msg: BusMessage): void {
    if (msg.type === 'owner.joined') {
      if (msg.origin === this.o.nodeId) return;
      const t = this.targets.get(groupKey(msg.tenantId, msg.owner));
      if (t) {
        t.epoch++;
        t.at = 0;
      }
      return;
    }
    if (msg.type !== 'owner.event' || msg.origin === this.o.nodeId) return;
    this.deliverLocal(msg.tenantId, msg.owner, msg.source, msg.eventClassFQN, msg.data === null ? null : Buffer.from(msg.data, 'base64'), msg.target, null);
  }

  private file(peer: EventPeer, m: EventMember): void {
    if (!m.owner || !peer.isOpen) return;
    const k = groupKey(m.tenantId, m.owner);
    let g = this.groups.get(k);
    if (!g) {
      this.groups.set(k, (g = new Set()));
      if (this.routed) this.changeMembership(m.tenantId, m.owner, true);
    }
    g.add(peer);
  }

  private unfile(peer: EventPeer, m: EventMember): void {
    if (!m.owner) return;
    const k = groupKey(m.tenantId, m.owner);
    const g = this.groups.get(k);
    if (!g) return;
    g.delete(peer);
    if (g.size === 0) {
      this.groups.delete(k);
      this.targets.delete(k);
      if (this.routed) this.changeMembership(m.tenantId, m.owner, false);
    }
  }
}
