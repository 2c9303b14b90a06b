/**
 * Endpoint ownership (Kaa's owner access token flow and endpoint access token flow), with Kaa's
 * weak spots fixed:
 *
 * - attachUser(externalId, accessToken[, verifierToken]): the application's verifier (named, or the
 *   default) checks the token; success attaches the endpoint to that owner of the tenant, moving it
 *   atomically from any previous owner (store.attachEndpointToOwner).
 * - Endpoint access tokens: an endpoint publishes one in its profile sync (stored as SHA-256 with an
 *   expiry; a new one replaces the old at once). An attached endpoint presenting it attaches the
 *   publisher to its own owner, only if the publisher is unowned or already has that owner.
 * - Detach by key hash: by the endpoint itself or by another endpoint of the same owner.
 * - Notifications carry what their field names say (owner external id, key hashes), unlike Kaa's
 *   attach notification. They reach a connected endpoint at once (through the bus, whichever node
 *   holds its session) and an offline one at its next connect (durable queue in the store).
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { Cache } from '../cache/cache.js';
import { emptySyncResponse, type SyncRequest, type SyncResponse, type UserAttachErrorCode } from '../protocol/schemas.js';
import type { Application, Store } from '../store/store.js';
import { MAX_ID_BYTES, validId } from '../store/common/values.js';
import { LatchkeyError } from '../errors.js';
import { NotificationOutbox } from './notifications.js';
import { createVerifier, type OwnerVerifier } from './verifiers/registry.js';

/** Endpoint access tokens live this long unless rotated (Kaa had no expiry). */
export const ACCESS_TOKEN_TTL_MS = 24 * 3600_000; // 24 h
export { MAX_PENDING_NOTIFICATIONS } from './notifications.js';

export type AttachUserResult = { ok: true } | { ok: false; code: UserAttachErrorCode; reason: string };

export function tokenHash(token: string): Buffer {
  return crypto.createHash('sha256').update(token, 'utf8').digest();
}

/** This node as ownership sees it: its id and its live sessions (server.ts wires them in). */
export interface OwnershipNode {
  /** This node's id (bus messages it sent come back to it and are skipped). */
  readonly id: string;
  /** Re-file the endpoint's live session on this node, if it has one, under its new owner (events/relay.ts). */
  ownerChanged(appId: string, keyHash: string, owner: string | null): void;
  /** The endpoint has queued notifications: its live session on this node, if any, delivers them. */
  deliverPending(appId: string, keyHash: string): void;
  /** Publish a message about one endpoint to the node holding its session (control/routing.ts); absent: broadcast. */
  tell?(appId: string, keyHash: string, msg: BusMessage): Promise<unknown>;
}

export class OwnershipService {
  /** Verifier instances by appId/verifierToken and the configuration they were built from. */
  private readonly verifiers = new Map<string, { config: string; type: string; verifier: Promise<OwnerVerifier> }>();
  private unsubscribe: (() => Promise<void>) | null = null;
  /** Every push to an endpoint goes through it, from the store's queue to the session (notifications.ts). */
  readonly outbox: NotificationOutbox;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly log: Logger,
    cache: Cache,
    private readonly node: OwnershipNode,
    private readonly customVerifierModules: Record<string, string> = {},
  ) {
    this.outbox = new NotificationOutbox(store, cache, log, (appId, keyHash) => this.tell(appId, keyHash, { type: 'endpoint.notify', appId, keyHash }));
  }

  /**
   * Act on the ownership messages of the bus ('sessions' topic) for this node's live sessions:
   * endpoint.notify from any node (this one's too: notify() does not deliver locally), and
   * endpoint.owner from the other nodes (ownerChanged() re-filed the session here already).
   */
  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe('sessions', (msg) => {
      if (msg.type === 'endpoint.notify') this.node.deliverPending(msg.appId, msg.keyHash);
      else if (msg.type === 'endpoint.owner' && msg.origin !== this.node.id) this.node.ownerChanged(msg.appId, msg.keyHash, msg.owner);
    });
  }

  /**
   * The endpoint's owner changed: this node re-files its session now, the others when the bus
   * message arrives, so events stop crossing at once after a detach or move.
   */
  async ownerChanged(appId: string, keyHash: string, owner: string | null): Promise<void> {
    this.node.ownerChanged(appId, keyHash, owner);
    await this.tell(appId, keyHash, { type: 'endpoint.owner', origin: this.node.id, appId, keyHash, owner });
  }

  private async tell(appId: string, keyHash: string, msg: BusMessage): Promise<void> {
    if (this.node.tell) await this.node.tell(appId, keyHash, msg);
    else await this.bus.publish('sessions', msg);
  }

  private async verifierFor(app: Application, verifierToken: string | null): Promise<OwnerVerifier | null> {
    const token = verifierToken ?? (await this.store.getDefaultVerifier(app.id));
    if (!token) return null;
    const rec = await this.store.getVerifier(app.id, token);
    if (!rec) return null;
    const key = `${app.id}/${token}`;
    const cached = this.verifiers.get(key);
    if (cached && cached.config === rec.jsonConfiguration && cached.type === rec.pluginTypeName) return cached.verifier;
    if (cached) void cached.verifier.then((v) => v.close(), () => undefined);
    const verifier = createVerifier(rec.pluginTypeName, rec.jsonConfiguration, { log: this.log, customModules: this.customVerifierModules });
    this.verifiers.set(key, { config: rec.jsonConfiguration, type: rec.pluginTypeName, verifier });
    verifier.catch(() => this.verifiers.delete(key));
    return verifier;
  }

  /** Owner access token flow. */
  async attachUser(app: Application, keyHash: string, externalId: string, accessToken: string, verifierToken: string | null): Promise<AttachUserResult> {
    // An owner id the store cannot hold is the endpoint's mistake, answered before any verifier
    // call (found by npm run fuzz: "" reached the store and came back as LK_INTERNAL).
    if (!validId(externalId)) return { ok: false, code: 'OTHER', reason: `userExternalId must be 1-${MAX_ID_BYTES} bytes` };
    let verifier: OwnerVerifier | null;
    try {
      verifier = await this.verifierFor(app, verifierToken);
    } catch (err) {
      this.log.warn({ err, appId: app.id }, 'owner verifier cannot be created');
      return { ok: false, code: 'INTERNAL_ERROR', reason: 'verifier configuration is not usable' };
    }
    if (!verifier) return { ok: false, code: 'NO_VERIFIER_CONFIGURED', reason: verifierToken ? 'unknown verifier token' : 'the application has no default verifier' };
    const result = await verifier.verify(externalId, accessToken);
    if (!result.ok) return result;
    const { previousOwner } = await this.store.attachEndpointToOwner(app.tenantId, externalId, app.id, keyHash);
    if (previousOwner !== null && previousOwner !== externalId) this.log.info({ appId: app.id, keyHash, from: previousOwner, to: externalId }, 'endpoint moved to another owner');
    if (previousOwner !== externalId) await this.ownerChanged(app.id, keyHash, externalId);
    return { ok: true };
  }

  /**
   * The endpoint publishes (or rotates) its access token. False when another endpoint of the tenant
   * holds the same token (unexpired): the endpoint's request was wrong, not the server, so it is
   * logged at debug only (an endpoint repeating it would otherwise fill the error log at will) and
   * answered as a sync result (handleUserSync).
   */
  async setAccessToken(app: Application, keyHash: string, token: string): Promise<boolean> {
    try {
      await this.store.setEndpointAccessToken(app.id, keyHash, tokenHash(token), Date.now() + ACCESS_TOKEN_TTL_MS);
      return true;
    } catch (err) {
      if (!(err instanceof LatchkeyError) || err.code !== 'LK_CONFLICT') throw err;
      this.log.debug({ appId: app.id, keyHash }, 'endpoint access token refused: another endpoint of the tenant holds it');
      return false;
    }
  }

  /**
   * Endpoint access token flow: the requester (attached) attaches the token's publisher to its owner.
   * Returns the target key hash, or null when refused (requester unowned, unknown/expired token,
   * target owned by someone else).
   */
  async attachEndpoint(app: Application, requesterKeyHash: string, token: string): Promise<string | null> {
    const owner = await this.store.getEndpointOwner(app.id, requesterKeyHash);
    if (!owner) return null;
    const target = await this.store.findEndpointByAccessToken(app.tenantId, tokenHash(token), Date.now());
    if (!target || (target.appId === app.id && target.keyHash === requesterKeyHash)) return null;
    const res = await this.store.attachEndpointIfUnownedOrSameOwner(app.tenantId, owner.ownerExternalId, target.appId, target.keyHash);
    if (!res.ok) return null;
    if (res.previousOwner !== owner.ownerExternalId) await this.ownerChanged(target.appId, target.keyHash, owner.ownerExternalId);
    const notice = emptySyncResponse(-1);
    notice.userSyncResponse = {
      userAttachResponse: null,
      userAttachNotification: { userExternalId: owner.ownerExternalId, endpointKeyHash: requesterKeyHash },
      userDetachNotification: null,
      endpointAttachResponses: null,
      endpointDetachResponses: null,
    };
    await this.notify(target.appId, target.keyHash, notice);
    return target.keyHash;
  }

  /** Detach `targetKeyHash` (of this application): allowed to the endpoint itself or to one of the same owner. */
  async detachEndpoint(app: Application, requesterKeyHash: string, targetKeyHash: string): Promise<boolean> {
    if (requesterKeyHash !== targetKeyHash) {
      const [mine, theirs] = await Promise.all([this.store.getEndpointOwner(app.id, requesterKeyHash), this.store.getEndpointOwner(app.id, targetKeyHash)]);
      if (!mine || !theirs || mine.ownerExternalId !== theirs.ownerExternalId) return false;
    }
    const previous = await this.store.detachEndpoint(app.id, targetKeyHash);
    if (previous === null) return false;
    await this.ownerChanged(app.id, targetKeyHash, null);
    if (requesterKeyHash !== targetKeyHash) {
      const notice = emptySyncResponse(-1);
      notice.userSyncResponse = {
        userAttachResponse: null,
        userAttachNotification: null,
        userDetachNotification: { endpointKeyHash: requesterKeyHash },
        endpointAttachResponses: null,
        endpointDetachResponses: null,
      };
      await this.notify(app.id, targetKeyHash, notice);
    }
    return true;
  }

  /** A server push to the endpoint, through the outbox (notifications.ts): queued durably, then announced. */
  notify(appId: string, keyHash: string, res: SyncResponse): Promise<void> {
    return this.outbox.send(appId, keyHash, res);
  }

  async close(): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = null;
    await unsubscribe?.();
    const all = [...this.verifiers.values()];
    this.verifiers.clear();
    await Promise.allSettled(all.map(async (v) => (await v.verifier).close()));
  }
}


/**
 * The user-sync part of one SyncRequest: owner attach, endpoint attach/detach requests, and the
 * endpoint access token published in the profile sync. Fills `res.userSyncResponse`.
 *
 * An access token another endpoint of the tenant holds is refused: the SyncResponse is FAILURE with
 * errorCode LK_CONFLICT (the SDK's setEndpointAccessToken rejects with that code); the profile sync
 * before it stands and the user-sync requests of the same SyncRequest are still answered.
 */
export async function handleUserSync(ownership: OwnershipService, app: Application, keyHash: string, req: SyncRequest, res: SyncResponse): Promise<void> {
  const token = req.profileSyncRequest?.endpointAccessToken;
  if (token && !(await ownership.setAccessToken(app, keyHash, token))) {
    res.status = 'FAILURE';
    res.errorCode = 'LK_CONFLICT';
  }
  const u = req.userSyncRequest;
  if (!u) return;
  const out: NonNullable<SyncResponse['userSyncResponse']> = {
    userAttachResponse: null,
    userAttachNotification: null,
    userDetachNotification: null,
    endpointAttachResponses: null,
    endpointDetachResponses: null,
  };
  if (u.userAttachRequest) {
    const a = u.userAttachRequest;
    const r = await ownership.attachUser(app, keyHash, a.userExternalId, a.userAccessToken, a.userVerifierId);
    out.userAttachResponse = r.ok ? { result: 'SUCCESS', errorCode: null, errorReason: null } : { result: 'FAILURE', errorCode: r.code, errorReason: r.reason };
  }
  if (u.endpointAttachRequests) {
    out.endpointAttachResponses = [];
    for (const a of u.endpointAttachRequests) {
      const target = await ownership.attachEndpoint(app, keyHash, a.endpointAccessToken);
      out.endpointAttachResponses.push({ requestId: a.requestId, endpointKeyHash: target, result: target ? 'SUCCESS' : 'FAILURE' });
    }
  }
  if (u.endpointDetachRequests) {
    out.endpointDetachResponses = [];
    for (const d of u.endpointDetachRequests) {
      const ok = await ownership.detachEndpoint(app, keyHash, d.endpointKeyHash);
      out.endpointDetachResponses.push({ requestId: d.requestId, result: ok ? 'SUCCESS' : 'FAILURE' });
    }
  }
  res.userSyncResponse = out;
}
