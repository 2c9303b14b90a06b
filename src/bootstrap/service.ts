/**
 * The bootstrap service: POST /bootstrap/v1/resolve answers an endpoint with the signed list of
 * access points for its application (docs/protocol.md section 9).
 *
 * Hot path: the node set is a snapshot refreshed on a timer (refresh()), the application comes from
 * the directory's memory, and the signed answer is cached per (application, protocol version) with
 * the node-set version it was made for. A request therefore does an Avro decode, two Map lookups and
 * a write; RSA runs only when the node set changed or the cached answer passed half its lifetime
 * (once per application per change, about 1 ms each).
 *
 * This node announces itself to the registry on every refresh (the heartbeat). drain() marks it
 * draining: lists made from then on leave it out, here at once and elsewhere at their next refresh.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { ERRORS, toLatchkeyError, type ErrorCode } from '../errors.js';
import { types, type AccessPoint, type AccessPointList, type BootstrapRequest } from '../protocol/schemas.js';
import type { ApplicationDirectory } from '../tenancy/applications.js';
import type { BootstrapKey } from './key.js';
import { accessPointId, type NodeInfo, type NodeRegistry } from './nodes.js';
import { loadStep, type LoadedStrategy } from './strategy.js';

export const BOOTSTRAP_PATH = '/bootstrap/v1/resolve';
/** Protocol versions this server speaks. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];
/** Largest BootstrapRequest body accepted (bytes). */
export const MAX_BOOTSTRAP_REQUEST_BYTES = 4096;
const MAX_CACHED_ANSWERS = 10_000;

export interface BootstrapReply {
  status: number;
  contentType: string;
  body: Buffer | string;
}

export interface BootstrapServiceOptions {
  registry: NodeRegistry;
  apps: ApplicationDirectory;
  key: BootstrapKey;
  strategy: LoadedStrategy;
  /** Lifetime of a signed list (ms). */
  listTtlMs: number;
  /** Heartbeat and snapshot refresh interval (ms). */
  refreshMs: number;
  /** This node as it should be announced now (sessions change). */
  self: () => Omit<NodeInfo, 'heartbeatAt' | 'draining'>;
  log: Logger;
  now?: () => number;
}

interface Snapshot {
  /** Hash of everything in the nodes that shows in a list. */
  version: string;
  /** Live, non-draining nodes. */
  nodes: NodeInfo[];
}

interface CachedAnswer {
  version: string;
  issuedAt: number;
  reply: BootstrapReply;
}

export interface BootstrapCounters {
  resolved: number;
  signed: number;
  refused: Map<string, number>;
}

function errorReply(code: ErrorCode, detail?: string): BootstrapReply {
  return { status: ERRORS[code].http, contentType: 'application/json', body: JSON.stringify({ code, message: detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message }) };
}

export class BootstrapService {
  private snapshot: Snapshot = { version: '', nodes: [] };
  private readonly answers = new Map<string, CachedAnswer>();
  private readonly decoded = new Map<string, { appToken: string; version: number; key: string | null }>();
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  private readonly now: () => number;
  readonly counters: BootstrapCounters = { resolved: 0, signed: 0, refused: new Map() };

  constructor(private readonly o: BootstrapServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  get selfId(): string {
    return this.o.self().id;
  }

  /** This node as announced now. */
  self(): Omit<NodeInfo, 'heartbeatAt' | 'draining'> {
    return this.o.self();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Announce this node and take a first snapshot; then every refreshMs. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.o.log.warn({ err }, 'node registry unavailable; bootstrap keeps its last node list'));
    }, this.o.refreshMs);
    this.timer.unref();
  }

  /** Heartbeat, then re-read the node set. */
  async refresh(): Promise<void> {
    const me: NodeInfo = { ...this.o.self(), draining: this.draining, heartbeatAt: this.now() };
    await this.o.registry.announce(me);
    const all = await this.o.registry.list(this.now());
    // Our own entry as we know it now (the registry may lag behind a drain()).
    const nodes = all.map((n) => (n.id === me.id ? me : n)).filter((n) => !n.draining);
    const fingerprint = nodes.map((n) => [n.id, n.url, n.serverKeyId, n.serverPublicKey, n.priority, n.weight, n.protocolVersions.join('.'), loadStep(n)]);
    this.snapshot = { version: crypto.createHash('sha256').update(JSON.stringify(fingerprint)).digest('base64url').slice(0, 16), nodes };
  }

  /** Stop listing this node (graceful shutdown); lists made from now on leave it out. */
  async drain(): Promise<void> {
    this.draining = true;
    this.snapshot = { ...this.snapshot, nodes: this.snapshot.nodes.filter((n) => n.id !== this.selfId), version: `${this.snapshot.version}-d` };
    try {
      await this.refresh();
    } catch (err) {
      this.o.log.warn({ err }, 'could not announce draining to the node registry; other nodes drop this one when its heartbeat expires');
    }
  }

  /** Where to send this node's endpoints when it drains: an access point of another live node, or null. */
  redirectTarget(appId: string): AccessPoint | null {
    const others = this.snapshot.nodes.filter((n) => n.id !== this.selfId);
    if (others.length === 0) return null;
    const points = this.accessPoints(others, appId);
    const best = Math.min(...points.map((p) => p.priority));
    const candidates = points.filter((p) => p.priority === best);
    const total = candidates.reduce((s, p) => s + p.weight, 0);
    let r = Math.random() * total;
    for (const p of candidates) {
      r -= p.weight;
      if (r < 0) return p;
    }
    return candidates[0] ?? null;
  }

  /** Remove this node from the registry (end of a clean shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.o.registry.withdraw(this.selfId).catch(() => undefined);
  }

  private refuse(code: ErrorCode, detail?: string): BootstrapReply {
    this.counters.refused.set(code, (this.counters.refused.get(code) ?? 0) + 1);
    return errorReply(code, detail);
  }

  /**
   * One request body -> the reply. Synchronous whenever the application is in the directory's
   * memory. The body must not be kept: it may be a view of a transport buffer (gateway.ts).
   */
  resolve(body: Buffer): BootstrapReply | Promise<BootstrapReply> {
    // Endpoints of one application send the same bytes: remember what they decoded to and skip
    // the Avro decode and version choice (only well-formed requests are remembered; bounded).
    const raw = body.length <= 512 ? body.toString('latin1') : null;
    const seen = raw === null ? undefined : this.decoded.get(raw);
    if (seen) {
      const app = this.o.apps.peek(seen.appToken);
      if (app !== undefined) {
        // The hottest path: the same request bytes, a fresh cached answer.
        if (app !== null && seen.key !== null) {
          const hit = this.answers.get(seen.key);
          if (hit && hit.version === this.snapshot.version && this.now() < hit.issuedAt + this.o.listTtlMs / 2) {
            this.counters.resolved++;
            return hit.reply;
          }
        }
        const r = this.answer(seen.appToken, app, seen.version);
        if (app !== null) seen.key = `${app.id}\n${seen.version}`;
        return r;
      }
    }
    let req: BootstrapRequest;
    try {
      req = types.bootstrapRequest.fromBuffer(body) as BootstrapRequest;
    } catch {
      return this.refuse('LK_BOOTSTRAP_MALFORMED');
    }
    const version = Math.max(-1, ...req.protocolVersions.filter((v) => SUPPORTED_PROTOCOL_VERSIONS.includes(v)));
    if (version < 0) return this.refuse('LK_BOOTSTRAP_NO_COMMON_VERSION', `server speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`);
    if (raw !== null) {
      if (this.decoded.size >= MAX_CACHED_ANSWERS) this.decoded.clear();
      this.decoded.set(raw, { appToken: req.appToken, version, key: null });
    }
    const known = this.o.apps.peek(req.appToken);
    if (known !== undefined) return this.answer(req.appToken, known, version);
    return this.o.apps.byAppToken(req.appToken).then(
      (app) => this.answer(req.appToken, app, version),
      (err: unknown) => {
        this.o.log.warn({ err }, 'bootstrap: application lookup failed');
        return this.refuse(toLatchkeyError(err).code === 'LK_SERVER_UNAVAILABLE' ? 'LK_SERVER_UNAVAILABLE' : 'LK_INTERNAL');
      },
    );
  }

  private answer(appToken: string, app: { id: string } | null, version: number): BootstrapReply {
    if (!app) return this.refuse('LK_HS_UNKNOWN_APPLICATION');
    const snap = this.snapshot;
    const key = `${app.id}\n${version}`;
    const now = this.now();
    const hit = this.answers.get(key);
    if (hit && hit.version === snap.version && now < hit.issuedAt + this.o.listTtlMs / 2) {
      this.counters.resolved++;
      return hit.reply;
    }
    const nodes = snap.nodes.filter((n) => n.protocolVersions.includes(version));
    if (nodes.length === 0) return this.refuse('LK_BOOTSTRAP_NO_ACCESS_POINTS');
    let points: AccessPoint[];
    try {
      points = this.accessPoints(nodes, app.id);
    } catch (err) {
      this.o.log.error({ err }, 'bootstrap strategy failed');
      return this.refuse('LK_INTERNAL', (err as Error).message);
    }
    const list: AccessPointList = {
      appTokenHash: crypto.createHash('sha256').update(appToken, 'utf8').digest(),
      protocolVersion: version,
      issuedAt: now,
      expiresAt: now + this.o.listTtlMs,
      nodeSetVersion: snap.version,
      accessPoints: points,
    };
    const listBytes = types.accessPointList.toBuffer(list);
    const bodyBytes = types.bootstrapResponse.toBuffer({ list: listBytes, bootstrapKeyId: this.o.key.id, signature: this.o.key.sign(listBytes) });
    this.counters.signed++;
    if (this.answers.size >= MAX_CACHED_ANSWERS) this.answers.clear();
    const reply: BootstrapReply = { status: 200, contentType: 'application/octet-stream', body: bodyBytes };
    this.answers.set(key, { version: snap.version, issuedAt: now, reply });
    this.counters.resolved++;
    return reply;
  }

  private accessPoints(nodes: NodeInfo[], appId: string): AccessPoint[] {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    return this.o.strategy.place(nodes, { appId }).map((p) => {
      const n = byId.get(p.nodeId)!;
      return {
        id: accessPointId(n.id),
        url: n.url,
        serverKeyId: n.serverKeyId,
        serverPublicKey: Buffer.from(n.serverPublicKey, 'base64'),
        priority: p.priority,
        weight: p.weight,
        load: loadStep(n),
      };
    });
  }
}

