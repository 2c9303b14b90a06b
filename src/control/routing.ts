/**
 * Routing over the cluster directory (cluster/directory.ts): messages about one endpoint go to
 * the node holding its session, not to every node.
 *
 * - Takeover across nodes: every established session is claimed in the directory; when the claim
 *   finds a live session of the same endpoint on another node, that node gets `session.replaced`
 *   and ends exactly that session (LK_SESSION_REPLACED). Within one node the primary's directory
 *   does the same (node/primary.ts), so a previous holder on this node is left to it.
 * - toHolder(): revocations, kicks, notifications and owner changes of one endpoint are published
 *   to the holder's node only; with no live holder anywhere nothing is sent (the store has the
 *   change, and the next session reads it). Without a shared directory (one node) or when it is
 *   unavailable (Redis down) the message is broadcast on its topic, as before routing existed.
 *
 * Counted in latchkey_cluster_messages_total{route} and latchkey_directory_errors_total{call}.
 */
import type { Logger } from 'pino';
import type { Bus, BusMessage, BusTopic } from '../bus/bus.js';
import type { Stats } from '../metrics.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Session } from '../session/session.js';
import type { ClusterDirectory, SessionHolder } from '../cluster/directory.js';

export type Route = 'node' | 'broadcast' | 'none';

export interface ClusterRoutingDeps {
  directory: ClusterDirectory;
  bus: Bus;
  registry: SessionRegistry;
  /** This node's id (shared by its processes) and this process's index in it. */
  node: string;
  process: number;
  stats: Stats;
  log: Logger;
}

export class ClusterRouting {
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(private readonly d: ClusterRoutingDeps) {}

  get shared(): boolean {
    return this.d.directory.shared;
  }

  async start(): Promise<void> {
    if (this.d.directory.shared) {
      this.d.registry.addDirectory({ claimed: (s) => this.claimed(s), released: (s) => this.released(s) });
    }
    this.unsubscribe = await this.d.bus.subscribe('sessions', (msg) => {
      if (msg.type === 'session.replaced') this.d.registry.replacedOnOtherNode(msg.appId, msg.keyHash, msg.session);
    });
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Where the endpoint's live session is: the directory's answer, or this process's own session. */
  async locate(appId: string, keyHash: string): Promise<SessionHolder | null> {
    const here = this.d.registry.byEndpointKey(appId, keyHash);
    if (here && here.establishedAt !== null) return { node: this.d.node, process: this.d.process, session: here.id, since: here.establishedAt };
    return this.d.directory.shared ? this.d.directory.lookup(appId, keyHash) : null;
  }

  /**
   * Publish `msg` about one endpoint where its session is: the holder's node, nowhere (no live
   * session), or every node (no shared directory, or it failed). Rejects only if the bus does.
   */
  async toHolder(appId: string, keyHash: string, topic: BusTopic, msg: BusMessage): Promise<Route> {
    if (!this.d.directory.shared) return this.broadcast(topic, msg);
    let holder: SessionHolder | null;
    try {
      holder = await this.d.directory.lookup(appId, keyHash);
    } catch (err) {
      this.failed('lookup', err);
      return this.broadcast(topic, msg);
    }
    if (!holder) {
      this.d.stats.count(this.d.stats.clusterMessages, 'none');
      return 'none';
    }
    this.d.stats.count(this.d.stats.clusterMessages, 'node');
    await this.d.bus.publishToNode(holder.node, topic, msg);
    return 'node';
  }

  private async broadcast(topic: BusTopic, msg: BusMessage): Promise<Route> {
    if (this.d.bus.shared) this.d.stats.count(this.d.stats.clusterMessages, 'broadcast');
    await this.d.bus.publish(topic, msg);
    return 'broadcast';
  }

  private claimed(s: Session): void {
    const appId = s.app!.id;
    const keyHash = s.keyHash!;
    this.d.directory
      .claim(appId, keyHash, { node: this.d.node, process: this.d.process, session: s.id, since: s.establishedAt ?? Date.now() })
      .then(async (prev) => {
        if (!prev || prev.node === this.d.node) return;
        this.d.stats.count(this.d.stats.clusterMessages, 'node');
        await this.d.bus.publishToNode(prev.node, 'sessions', { type: 'session.replaced', appId, keyHash, session: prev.session });
      })
      .catch((err: unknown) => this.failed('claim', err));
  }

  private released(s: Session): void {
    this.d.directory.release(s.app!.id, s.keyHash!, s.id).catch((err: unknown) => this.failed('release', err));
  }

  private failed(call: string, err: unknown): void {
    this.d.stats.count(this.d.stats.directoryErrors, call);
    this.d.log.warn({ err, call }, 'cluster directory unavailable');
  }
}
