/**
 * Session control: revocations and operator kicks reach every live session of the endpoint, on
 * every node, even when the bus (Redis) is down or loses the message.
 *
 * The store is the truth (DESIGN 8). An operation is, in this order:
 *  1. applied on the node that took it, at once (its own sessions end before the admin call answers);
 *  2. appended to the store's session control log (ProtectionStore.appendControl);
 *  3. published on the bus: the fast path to the other nodes (milliseconds). In a cluster with a
 *     directory (control/routing.ts) only to the node holding the endpoint's session, or to none
 *     when no node holds one; a handshake of the endpoint racing the revocation on a third node
 *     (it read the status before the change) is then ended by that node's next poll of the log.
 * Every node also polls the log every `pollMs` (config controlPollMs, 2 s) and applies entries it has
 * not applied yet, so a message the bus lost arrives within pollMs + one store read of the moment
 * the entry is in the log, whether or not Redis is back. Entries carry an id: the same entry seen on
 * the bus and in the log is applied once.
 *
 * A log write that fails (store down) stays in an in-memory outbox, retried at every poll; the
 * admin answer says so (`propagation.log = "pending"`). If the process dies with entries in its
 * outbox, those reach other nodes only through the bus message (if that went out): the status
 * change itself (REVOKED) is already in the store, so no new session is accepted anywhere.
 *
 * Reading the log: from (cursor - OVERLAP_MS), so an entry written by a node whose clock is behind
 * ours, or that became visible late (Cassandra), is still read; node clocks must agree within
 * OVERLAP_MS (NTP). A kick ends only sessions established before its time `at`, so re-reading it
 * never ends the endpoint's next session.
 *
 * Applying a revocation: end the session (registry.revoked also remembers it for racing handshakes)
 * and drop the cached credential status. If the cache is unreachable the drop is retried at every
 * poll until the cache confirms it, however long the outage: Redis may come back with the old
 * status still cached, and that entry must go.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { SessionRegistry } from '../session/registry.js';
import type { ControlEntry, ControlType, ProtectionStore } from '../store/store.js';

/** How far back of the cursor every poll reads (clock skew between nodes, late visibility). */
export const OVERLAP_MS = 10_000;
/** Entries read per store call; a backlog is read page by page within one poll. */
const PAGE = 1000;

export interface Propagation {
  /** Sessions of the endpoint this node ended at once (0 or 1). */
  endedHere: number;
  /** The control log entry: written (every node applies it within controlPollMs), or pending (retried). */
  log: 'written' | 'pending';
  /**
   * The bus message: published (to every node, or to the node holding the session: other nodes act
   * in milliseconds), none (no node holds a session of the endpoint: nothing to end), failed (other
   * nodes act from the log), or local (single node).
   */
  bus: 'published' | 'none' | 'failed' | 'local';
}

export interface SessionControlDeps {
  store: ProtectionStore;
  bus: Bus;
  registry: SessionRegistry;
  /** Drop the cached credential status; must throw when the cache did not confirm it. */
  invalidate: (appId: string, keyHash: string) => Promise<void>;
  /**
   * Publish a message about one endpoint to the node holding its session (control/routing.ts:
   * 'none' when no node does). Absent: broadcast on the bus.
   */
  toHolder?: (appId: string, keyHash: string, topic: 'credentials' | 'sessions', msg: BusMessage) => Promise<'node' | 'broadcast' | 'none'>;
  pollMs: number;
  log: Logger;
  now?: () => number;
}

export class SessionControl {
  private readonly now: () => number;
  /** Applied entry ids -> their `at`, pruned once they fall behind the read window. */
  private readonly applied = new Map<string, number>();
  private outbox: ControlEntry[] = [];
  /** Revocations applied here whose cache entry is not confirmed dropped yet (bounded: see issue()). */
  private readonly uninvalidated = new Map<string, ControlEntry>();
  private cursor: number;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private unsubscribe: Array<() => Promise<void>> = [];
  /** Entries applied from the log rather than the bus (a measure of how often the bus lost one). */
  appliedFromLog = 0;

  constructor(private readonly d: SessionControlDeps) {
    this.now = d.now ?? Date.now;
    this.cursor = this.now();
  }

  async start(): Promise<void> {
    const onMessage = (msg: BusMessage): Promise<void> | void => {
      if (msg.type === 'credentials.revoked') return this.applyOnce({ id: msg.controlId ?? crypto.randomUUID(), type: 'revoke', appId: msg.appId, keyHash: msg.credentialsId, at: msg.at ?? this.now() }, false);
      if (msg.type === 'session.kick') return this.applyOnce({ id: msg.controlId ?? crypto.randomUUID(), type: 'kick', appId: msg.appId, keyHash: msg.keyHash, at: msg.at ?? this.now() }, false);
    };
    this.unsubscribe.push(await this.d.bus.subscribe('credentials', onMessage));
    this.unsubscribe.push(await this.d.bus.subscribe('sessions', onMessage));
    this.timer = setInterval(() => void this.poll(), this.d.pollMs);
    this.timer.unref();
  }

  /** End the endpoint's live sessions everywhere with CREDENTIALS_REVOKED (the status is already REVOKED). */
  revoke(appId: string, keyHash: string): Promise<Propagation> {
    return this.issue('revoke', appId, keyHash);
  }

  /** End the endpoint's live session everywhere with LK_SESSION_KICKED (it may reconnect). */
  kick(appId: string, keyHash: string): Promise<Propagation> {
    return this.issue('kick', appId, keyHash);
  }

  private async issue(type: ControlType, appId: string, keyHash: string): Promise<Propagation> {
    const entry: ControlEntry = { id: crypto.randomUUID(), type, appId, keyHash, at: this.now() };
    const endedHere = this.end(entry) ? 1 : 0;
    // Applied here once the cache agrees; otherwise every poll retries dropping the cached status.
    if (type === 'kick' || (await this.invalidated(entry))) this.applied.set(entry.id, entry.at);
    else this.uninvalidated.set(entry.id, entry);
    let log: Propagation['log'] = 'written';
    try {
      await this.d.store.appendControl(entry);
    } catch (err) {
      this.d.log.warn({ err, appId, keyHash, type }, 'session control log unavailable: entry kept in the outbox and retried');
      this.outbox.push(entry);
      log = 'pending';
    }
    let bus: Propagation['bus'] = this.d.bus.shared ? 'published' : 'local';
    if (this.d.bus.shared) {
      const msg: BusMessage = type === 'revoke'
        ? { type: 'credentials.revoked', appId, credentialsId: keyHash, controlId: entry.id, at: entry.at }
        : { type: 'session.kick', appId, keyHash, controlId: entry.id, at: entry.at };
      const topic = type === 'revoke' ? 'credentials' : 'sessions';
      try {
        if (this.d.toHolder) {
          if ((await this.d.toHolder(appId, keyHash, topic, msg)) === 'none') bus = 'none';
        } else {
          await this.d.bus.publish(topic, msg);
        }
      } catch (err) {
        this.d.log.warn({ err, appId, keyHash, type }, `bus unavailable: other nodes apply this ${type} from the control log`);
        bus = 'failed';
      }
    }
    return { endedHere, log, bus };
  }

  /** End the matching session on this node; true if one was ended. */
  private end(e: ControlEntry): boolean {
    if (e.type === 'revoke') return this.d.registry.revoked(e.appId, e.keyHash);
    const s = this.d.registry.byEndpointKey(e.appId, e.keyHash);
    if (!s || s.establishedAt === null || s.establishedAt > e.at) return false;
    s.end('LK_SESSION_KICKED');
    return true;
  }

  /** Drop the cached status; true when done (the entry then counts as applied). */
  private async invalidated(e: ControlEntry): Promise<boolean> {
    try {
      await this.d.invalidate(e.appId, e.keyHash);
      return true;
    } catch (err) {
      this.d.log.warn({ err, appId: e.appId }, 'cache unreachable while applying a revocation: retried at the next control poll');
      return false;
    }
  }

  private async applyOnce(e: ControlEntry, fromLog: boolean): Promise<void> {
    if (this.applied.has(e.id) || this.uninvalidated.has(e.id)) return;
    this.end(e);
    if (e.type === 'revoke' && !(await this.invalidated(e))) {
      this.uninvalidated.set(e.id, e);
      return;
    }
    if (this.applied.has(e.id)) return;
    this.applied.set(e.id, e.at);
    if (fromLog) this.appliedFromLog++;
  }

  /** One poll: retry the outbox, then apply unseen log entries. Never runs twice at once. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = null));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const waiting = this.outbox;
    this.outbox = [];
    for (const e of waiting) {
      // A revocation written late is stamped now, so readers whose cursor moved on still read it
      // (applying it again is harmless). A kick keeps its time: `at` is also its cutoff, and a later
      // one would end the endpoint's next session; a kick written more than OVERLAP_MS late reaches
      // other nodes only if the bus brought it (the endpoint may reconnect after a kick anyway).
      const late = e.type === 'revoke' ? { ...e, at: Math.max(e.at, this.now()) } : e;
      try {
        await this.d.store.appendControl(late);
      } catch {
        this.outbox.push(e);
      }
    }
    // Revocations whose cached status could not be dropped: retried until the cache confirms, for
    // as long as it takes (the log's read window would lose them after OVERLAP_MS).
    for (const [id, e] of this.uninvalidated) {
      if (await this.invalidated(e)) {
        this.uninvalidated.delete(id);
        this.applied.set(id, e.at);
      }
    }
    const started = this.now();
    try {
      let since = this.cursor - OVERLAP_MS;
      for (;;) {
        const page = await this.d.store.listControlSince(since, PAGE);
        for (const e of page) {
          try {
            await this.applyOnce(e, true);
          } catch (err) {
            // One bad entry must not stop the log for good: it is logged and skipped.
            this.d.log.error({ err, id: e.id, type: e.type }, 'control log entry could not be applied');
            this.applied.set(e.id, e.at);
          }
        }
        const last = page[page.length - 1];
        if (page.length < PAGE || !last || last.at <= since) break;
        since = last.at;
      }
      // Everything written before `started` (within the overlap of clock skew) has been read.
      this.cursor = started;
    } catch (err) {
      this.d.log.warn({ err }, 'session control log read failed; retried at the next poll');
    }
    const horizon = this.cursor - 2 * OVERLAP_MS;
    for (const [id, at] of this.applied) if (at < horizon) this.applied.delete(id);
  }

  get outboxSize(): number {
    return this.outbox.length;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const u of this.unsubscribe) await u();
    this.unsubscribe = [];
    await this.polling;
  }
}
