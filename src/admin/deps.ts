/**
 * What the admin routes are given (server.ts builds it), and the live-session views they answer
 * with. Apart from the routes so that every route file can name it without importing routes.ts.
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import type { Revocation } from '../control/revocation.js';
import type { SessionControl } from '../control/session-control.js';
import type { CredentialsGate } from '../credentials/credentials.js';
import type { KeyRing } from '../crypto/keyring.js';
import type { OwnershipService } from '../ownership/ownership.js';
import type { CustomVerifierTypes } from '../ownership/verifiers/registry.js';
import type { BanList } from '../protection/bans.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Store } from '../store/store.js';
import type { ApplicationDirectory } from '../tenancy/applications.js';

/** A live session as the admin API lists it. */
export interface LiveSessionView {
  sessionId: string;
  keyHash: string | null;
  establishedAt: number | null;
  lastSeen: number;
  keepAliveSec: number;
  /** The gateway process holding it (a multi-process node only). */
  process?: number;
}

export interface LiveSessions {
  /** For each key hash of `appId`: does it hold a live session on this node? */
  online(appId: string, keyHashes: string[]): Promise<boolean[]>;
  list(appId: string): Promise<LiveSessionView[]>;
}

/** The live sessions of one process's registry. */
export function localLiveSessions(registry: SessionRegistry): LiveSessions {
  return {
    online: async (appId, keyHashes) => keyHashes.map((k) => !!registry.byEndpointKey(appId, k)),
    list: async (appId) => {
      const items: LiveSessionView[] = [];
      for (const s of registry.sessions()) {
        if (s.state !== 'ESTABLISHED' || s.app?.id !== appId) continue;
        items.push({ sessionId: s.id, keyHash: s.keyHash, establishedAt: s.establishedAt, lastSeen: s.lastSeen, keepAliveSec: s.keepAliveMs / 1000 });
      }
      return items;
    },
  };
}

export interface AdminDeps {
  store: Store;
  apps: ApplicationDirectory;
  credentials: CredentialsGate;
  revocation: Revocation;
  control: SessionControl;
  /** The ban list of this process (store-backed; protection/bans.ts). */
  bans: BanList;
  /** Readiness of the backing services: 'ok' or why not, per service (server.ts). */
  readiness: () => Promise<Record<'store' | 'cache' | 'bus', string>>;
  /** Live sessions of the whole node (every process of a multi-process node; server.ts). */
  liveSessions: LiveSessions;
  /** Where the endpoint's live session is in the cluster (cluster directory; this node alone without Redis). */
  locate: (appId: string, keyHash: string) => Promise<{ node: string; process: number | null; sessionId: string; establishedAt: number } | null>;
  keyRing: KeyRing;
  bus: Bus;
  ownership: OwnershipService;
  /** This node in the bootstrap node registry, and its drain (server.ts). */
  node: { info: () => Record<string, unknown>; drain: () => Promise<number> };
  /** Custom owner verifier types configured in ownerVerifierPlugins (checked at start-up). */
  customVerifiers: CustomVerifierTypes;
  credentialsServices: () => string[];
  log: Logger;
  openapi: () => unknown;
}

