/**
 * Credentials service (Kaa's CredentialsService) and the cached gate the handshake goes through.
 *
 * Each application names its service: 'trustful' (default: any endpoint may connect; its
 * credentials are recorded IN_USE at first connect so revocation still works, which Kaa's trustful
 * service could not do), 'internal' (only credentials provisioned beforehand), or the name of a
 * custom plugin from the `credentialsPlugins` configuration (plugin.ts).
 *
 * Status semantics (Kaa): AVAILABLE -> IN_USE (bound to exactly one endpoint at first connect) ->
 * REVOKED (terminal). IN_USE by another endpoint or REVOKED -> REFUSE_VERIFICATION_FAILED.
 */
import type { Cache } from '../cache/cache.js';
import { LatchkeyError, type ErrorCode } from '../errors.js';
import type { Application, BindResult, CredentialsRecord, CredentialStatus, Store } from '../store/store.js';

/** Kaa's CredentialsService interface; custom plugins implement exactly this. */
export interface CredentialsService {
  /** Provision credentials (AVAILABLE). */
  provideCredentials(appId: string, credentialsId: string, publicKey: Buffer | null): Promise<CredentialsRecord>;
  /** Current record, or null when the service does not know the credentials. */
  lookupCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null>;
  /** Atomically bind to an endpoint; see Store.bindCredentials for the outcomes. */
  markCredentialsInUse(appId: string, credentialsId: string, endpointId: string, publicKey: Buffer): Promise<BindResult>;
  /** Move to REVOKED (terminal); null when unknown. */
  markCredentialsRevoked(appId: string, credentialsId: string): Promise<CredentialsRecord | null>;
}

export const CREDENTIALS_SERVICE_METHODS = ['provideCredentials', 'lookupCredentials', 'markCredentialsInUse', 'markCredentialsRevoked'] as const;

/** 'trustful' and 'internal': both keep credentials in the store; they differ in unknown keys. */
export class StoreCredentialsService implements CredentialsService {
  constructor(
    private readonly store: Store,
    /** trustful: unknown credentials are created IN_USE at first connect. */
    readonly acceptUnknown: boolean,
  ) {}
  provideCredentials(appId: string, credentialsId: string, publicKey: Buffer | null): Promise<CredentialsRecord> {
    return this.store.provisionCredentials(appId, credentialsId, publicKey);
  }
  lookupCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return this.store.getCredentials(appId, credentialsId);
  }
  markCredentialsInUse(appId: string, credentialsId: string, endpointId: string, publicKey: Buffer): Promise<BindResult> {
    return this.store.bindCredentials(appId, credentialsId, endpointId, this.acceptUnknown ? publicKey : undefined);
  }
  markCredentialsRevoked(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return this.store.revokeCredentials(appId, credentialsId);
  }
}

/** What the handshake needs to know about credentials; this is what the cache holds. */
export interface CredentialsView {
  status: CredentialStatus;
  endpointId: string | null;
  publicKey: Buffer | null;
}

/** Decide a handshake from the credentials view. Returns the refusal code or null to go on. */
export function refusalFor(view: CredentialsView | null, endpointId: string, acceptUnknown: boolean): ErrorCode | null {
  if (!view) return acceptUnknown ? null : 'LK_CRED_UNKNOWN';
  if (view.status === 'REVOKED') return 'LK_CRED_REVOKED';
  if (view.status === 'IN_USE' && view.endpointId !== endpointId) return 'LK_CRED_IN_USE';
  return null;
}

export function bindRefusal(res: BindResult): ErrorCode | null {
  if (res.ok) return null;
  return res.reason === 'REVOKED' ? 'LK_CRED_REVOKED' : res.reason === 'IN_USE' ? 'LK_CRED_IN_USE' : 'LK_CRED_UNKNOWN';
}

interface CachedView {
  s: CredentialStatus | 'NONE';
  e: string | null;
  k: string | null;
}

export interface CredentialsGateOptions {
  ttlMs: number;
  negativeTtlMs: number;
  /**
   * The store is local (embedded LMDB, shared by every process of this node) and the cache is not
   * (IPC to the node primary, or Redis): credentials of the store-backed services are read from the
   * store, which answers in microseconds, and never cached. A cached lookup there cost a round trip
   * (two on a miss) per handshake, and in a storm on 14 processes those round trips were what the
   * primary could not keep up with (docs/performance.md, bench/sessions). Plugin-backed services
   * keep the cache.
   */
  storeDirect?: boolean;
  onCacheError?: (err: unknown) => void;
}

/**
 * Credential status lookups through the cache interface. Every change made through the gate
 * (bind, revoke, provide) writes the cache at once; changes made behind latchkey's back (another
 * process editing the store directly) show after at most ttlMs, unknown results after negativeTtlMs.
 * A cache failure counts as a miss: the store answers, nothing is refused because Redis is down.
 */
/** Most parsed credentials cache entries kept (CredentialsGate.parse; ~0.5-1 KB each). */
const PARSED_MAX = 10_000;

export class CredentialsGate {
  constructor(
    private readonly services: ReadonlyMap<string, CredentialsService>,
    private readonly cache: Cache,
    private readonly opts: CredentialsGateOptions,
  ) {}

  service(app: Application): CredentialsService {
    const svc = this.services.get(app.credentialsService);
    if (!svc) throw new LatchkeyError('LK_SERVER_UNAVAILABLE', `credentials service ${JSON.stringify(app.credentialsService)} is not configured`);
    return svc;
  }

  acceptsUnknown(app: Application): boolean {
    const svc = this.service(app);
    return svc instanceof StoreCredentialsService && svc.acceptUnknown;
  }

  private key(appId: string, credentialsId: string): string {
    return `cred:${appId}:${credentialsId}`;
  }

  private async cacheGet(key: string): Promise<string | null> {
    try {
      return await this.cache.get(key);
    } catch (err) {
      this.opts.onCacheError?.(err);
      return null;
    }
  }

  private async cachePut(appId: string, credentialsId: string, rec: CredentialsRecord | null): Promise<void> {
    const ttl = rec ? this.opts.ttlMs : this.opts.negativeTtlMs;
    if (ttl <= 0) return;
    const v: CachedView = rec
      ? { s: rec.status, e: rec.endpointId, k: rec.publicKey ? rec.publicKey.toString('base64') : null }
      : { s: 'NONE', e: null, k: null };
    try {
      await this.cache.set(this.key(appId, credentialsId), JSON.stringify(v), ttl);
    } catch (err) {
      this.opts.onCacheError?.(err);
    }
  }

  async invalidate(appId: string, credentialsId: string): Promise<void> {
    try {
      await this.invalidateOrThrow(appId, credentialsId);
    } catch (err) {
      this.opts.onCacheError?.(err);
    }
  }

  /** Drop the cached status; throws (LK_CACHE_UNAVAILABLE) when the cache did not confirm it. */
  async invalidateOrThrow(appId: string, credentialsId: string): Promise<void> {
    await this.cache.delete(this.key(appId, credentialsId));
  }

  /**
   * Parsed cache entries by their exact text. A handshake of a returning endpoint finds the same
   * cached string again; parsing it (JSON + base64 of a 294-byte key) and the garbage that leaves
   * were a measurable share of the event loop's per-handshake work in bench/handshake. Bounded at
   * PARSED_MAX entries, the oldest dropped first (one at a time: clearing the whole memo when full
   * threw away every returning endpoint's entry at once, at each 10,000th new key of a storm).
   */
  private readonly parsed = new Map<string, CredentialsView | null>();

  private parse(hit: string): CredentialsView | null | undefined {
    const memo = this.parsed.get(hit);
    if (memo !== undefined || this.parsed.has(hit)) return memo;
    let view: CredentialsView | null;
    try {
      const v = JSON.parse(hit) as CachedView;
      view = v.s === 'NONE' ? null : { status: v.s, endpointId: v.e, publicKey: v.k ? Buffer.from(v.k, 'base64') : null };
    } catch {
      return undefined; // a corrupt entry is a miss
    }
    if (this.parsed.size >= PARSED_MAX) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.set(hit, view);
    return view;
  }

  /** True when `svc` is read from the local store directly (storeDirect), never through the cache. */
  private direct(svc: CredentialsService): boolean {
    return this.opts.storeDirect === true && svc instanceof StoreCredentialsService;
  }

  async lookup(app: Application, credentialsId: string): Promise<CredentialsView | null> {
    const svc = this.service(app);
    if (this.direct(svc)) {
      let rec: CredentialsRecord | null;
      try {
        rec = await svc.lookupCredentials(app.id, credentialsId);
      } catch (err) {
        throw new LatchkeyError('LK_SERVER_UNAVAILABLE', `credentials lookup: ${(err as Error).message}`, { cause: err });
      }
      return rec ? { status: rec.status, endpointId: rec.endpointId, publicKey: rec.publicKey } : null;
    }
    const hit = await this.cacheGet(this.key(app.id, credentialsId));
    if (hit) {
      const view = this.parse(hit);
      if (view !== undefined) return view;
    }
    let rec: CredentialsRecord | null;
    try {
      rec = await this.service(app).lookupCredentials(app.id, credentialsId);
    } catch (err) {
      throw err instanceof LatchkeyError && err.code === 'LK_SERVER_UNAVAILABLE' ? err : new LatchkeyError('LK_SERVER_UNAVAILABLE', `credentials lookup: ${(err as Error).message}`, { cause: err });
    }
    await this.cachePut(app.id, credentialsId, rec);
    return rec ? { status: rec.status, endpointId: rec.endpointId, publicKey: rec.publicKey } : null;
  }

  async bind(app: Application, credentialsId: string, endpointId: string, publicKey: Buffer): Promise<BindResult> {
    const svc = this.service(app);
    let res: BindResult;
    try {
      res = await svc.markCredentialsInUse(app.id, credentialsId, endpointId, publicKey);
    } catch (err) {
      throw new LatchkeyError('LK_SERVER_UNAVAILABLE', `credentials bind: ${(err as Error).message}`, { cause: err });
    }
    if (!this.direct(svc)) await this.cachePut(app.id, credentialsId, res.record);
    return res;
  }

  async provide(app: Application, credentialsId: string, publicKey: Buffer | null): Promise<CredentialsRecord> {
    const svc = this.service(app);
    const rec = await svc.provideCredentials(app.id, credentialsId, publicKey);
    if (!this.direct(svc)) await this.cachePut(app.id, credentialsId, rec);
    return rec;
  }

  async revoke(app: Application, credentialsId: string): Promise<CredentialsRecord | null> {
    const rec = await this.service(app).markCredentialsRevoked(app.id, credentialsId);
    await this.invalidate(app.id, credentialsId);
    return rec;
  }
}
